"""The `paas` command line: argv to HTTP calls to the API, answers to the terminal, and the
user's credentials. It talks to the platform through the API only.

May import: paas.domain (errors) only, never the store, agent or runtime.
"""
