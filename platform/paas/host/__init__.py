"""The host's plumbing every effectful layer shares: running a command to its end (procs,
the one place a failing command becomes a PaasError), small JSON files written
atomically, and the real clock.

May import: paas.domain.
"""
