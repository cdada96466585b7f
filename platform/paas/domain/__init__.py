"""The platform's values and rules, pure: records (apps, releases, formation), dyno specs
and statuses, release statuses and their allowed moves, Procfile, names, sizes, health-check
parsing, buildpack sources, the reconcile plan and rollout verdicts, the desired-state
snapshot the agent reads, the clock's interface, and the operator's settings parsed from
the environment.

May import: the standard library's pure parts and paas_router's pure rules (names) only.
Never sqlite3, subprocess, socket, http, threading or flask (an import-linter contract):
every other layer builds on these values, and each rule here is tested without a host.
"""
