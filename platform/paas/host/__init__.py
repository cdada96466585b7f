"""The host's plumbing every effectful layer shares: running a command to its end (procs,
the one place a failing command becomes a PaasError) and small JSON files written
atomically.

May import: paas.domain.
"""
