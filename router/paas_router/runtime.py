"""The runtime API's language: the commands the router sends HAProxy, and how to read its
answers.

Pure: values in, text out. Invariants:
- A command names a backend, a server and the host map exactly as the rendered config
  does (``render.backend_name``, ``Server.haproxy_name``, the map's path as written in the
  config), and a server is added with exactly its rendered line's address and options; so
  a runtime change and the config on disk always describe the same thing.
- A command has succeeded only when HAProxy gives the answer it gives on success
  (``Command.ok``); any other answer is a failure, which the caller turns into a reload.

What HAProxy 2.6 does, as measured: ``add server`` creates the server in maintenance with
its health check off, hence ``enable health`` then ``enable server`` (the server is UP at
once; a failing check takes it down later). ``del server`` needs the server in maint and
without connections. ``set``/``enable``/``add map``/``set map``/``del map`` answer nothing
on success.
"""

import csv
from dataclasses import dataclass

from paas_router import layout, render
from paas_router.errors import RouterError
from paas_router.model import Server

# HAProxy names a map file by the path the config gives it ("show map" lists it so); the
# config names hosts.map relative to its directory.
HOSTS_MAP = layout.HOSTS_MAP_FILE
SHOW_SERVER_STATS = "show stat -1 4 -1"  # every proxy, servers only, every server

_ADDED = "New server registered."
_DELETED = "Server deleted."
_STILL_CONNECTED = "still has connections"
_NO_SUCH_SERVER = "No such server."


@dataclass(frozen=True)
class Command:
    """One runtime API command and HAProxy's answer to it on success (stripped)."""

    text: str
    ok: str = ""

    def succeeded(self, answer: str) -> bool:
        return answer.strip() == self.ok


def _target(app: str, name: str) -> str:
    return f"{render.backend_name(app)}/{name}"


def add_server(app: str, server: Server) -> tuple[Command, ...]:
    """Add ``server`` to ``app``'s backend and let it take requests."""
    target = _target(app, server.haproxy_name)
    return (
        Command(
            f"add server {target} {render.server_address(server)} {render.SERVER_OPTIONS}",
            _ADDED,
        ),
        # Dynamic servers start in maint with the check off; the check first, so the server
        # is never enabled without one.
        Command(f"enable health {target}"),
        Command(f"enable server {target}"),
    )


def set_state(app: str, name: str, state: str) -> Command:
    """``ready``, ``drain`` (no new requests, current ones go on) or ``maint`` (none)."""
    return Command(f"set server {_target(app, name)} state {state}")


def delete_server(app: str, name: str) -> Command:
    return Command(f"del server {_target(app, name)}", _DELETED)


def still_connected(answer: str) -> bool:
    """Whether a ``del server`` was refused only because requests are still running."""
    return _STILL_CONNECTED in answer


def no_such_server(answer: str) -> bool:
    return answer.strip() == _NO_SUCH_SERVER


def map_host(host: str, app: str, *, new: bool) -> Command:
    """Route ``host`` to ``app``: ``add map`` for a new host (it would otherwise be added
    twice), ``set map`` for one routed elsewhere until now."""
    verb = "add" if new else "set"
    return Command(f"{verb} map {HOSTS_MAP} {host} {render.backend_name(app)}")


def unmap_host(host: str) -> Command:
    return Command(f"del map {HOSTS_MAP} {host}")


def parse_server_sessions(text: str) -> dict[tuple[str, str], int]:
    """Current sessions (``scur``) by (backend, server) from the ``show stat`` CSV.

    Raises RouterError when the answer is not that CSV (an error message instead).
    """
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise RouterError(f"unexpected answer to {SHOW_SERVER_STATS!r}: {text.strip()[:200]!r}")
    sessions: dict[tuple[str, str], int] = {}
    for row in csv.DictReader(lines[1:], fieldnames=lines[0][2:].split(",")):
        server = row.get("svname")
        if not server or server in ("FRONTEND", "BACKEND"):
            continue
        try:
            sessions[(row["pxname"], server)] = int(row.get("scur") or 0)
        except ValueError:
            raise RouterError(f"unexpected scur in 'show stat': {row.get('scur')!r}") from None
    return sessions
