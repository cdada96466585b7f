"""The router's one error type.

Every expected failure (a bad route, a config HAProxy rejects, a process that will not
start or stop) is a RouterError whose message is a single line a person can act on; the
entry point that catches it prints that line and keeps the last good config serving.
"""


class RouterError(Exception):
    """An expected router failure; ``str(err)`` is one line meant for a person."""
