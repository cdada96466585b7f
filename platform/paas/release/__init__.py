"""Releases: creating vN from a build, a config change or a rollback (one transaction), and
following a release until it is rolled out or failed (what a push waits for).

May import: paas.dynos and everything below it.
"""
