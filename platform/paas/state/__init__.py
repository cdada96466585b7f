"""The platform's state: SQLite (WAL) for apps, config, releases, formation, builds, tokens
and the auth-failure counts, and the per-app log store. Every change is one transaction;
rows leave as frozen paas.domain values.

May import: paas.domain, paas.host.
"""
