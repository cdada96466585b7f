"""The route model: which hostnames reach which app, and which servers serve each app.

Pure values. Invariant: a RouteTable, AppRoute, Server or RouterSettings that exists is
valid — every constructor checks its fields and raises RouterError with one line naming
the bad field — so the renderer never has to distrust what it is given, and nothing that
reaches the HAProxy config can break out of its line.
"""

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paas_router import names
from paas_router.errors import RouterError

# HAProxy accepts more in a server name, but these are the characters that are safe in
# every runtime API command ("set server app_x/NAME ...") without quoting.
_SERVER_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_SERVER_NAME_MAX = 64
_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


def haproxy_server_name(name: str) -> str:
    """``name`` with every character HAProxy or its runtime API might choke on made ``_``."""
    return _SERVER_NAME_UNSAFE.sub("_", name)


def _check_host(host: str) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if names.hostname_problem(host) is not None:
            raise RouterError(
                f"server host {host!r} is neither an IP address nor a lowercase DNS name"
            ) from None


def _check_port(port: object, what: str) -> None:
    # bool is an int subclass; "port": true in JSON is a mistake, not port 1.
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise RouterError(f"{what} must be an integer in 1..65535, got {port!r}")


@dataclass(frozen=True)
class Server:
    """One process that serves an app's HTTP traffic (a web dyno)."""

    name: str
    host: str
    port: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not 1 <= len(self.name) <= _SERVER_NAME_MAX:
            raise RouterError(
                f"server name must be 1..{_SERVER_NAME_MAX} characters, got {self.name!r}"
            )
        if not isinstance(self.host, str):
            raise RouterError(f"server host must be a string, got {self.host!r}")
        _check_host(self.host)
        _check_port(self.port, f"port of server {self.name!r}")

    @property
    def haproxy_name(self) -> str:
        """The name this server has in the HAProxy config and runtime API."""
        return haproxy_server_name(self.name)


@dataclass(frozen=True)
class AppRoute:
    """An app, the hostnames that reach it, and the servers that answer for it."""

    app: str
    hostnames: tuple[str, ...]
    servers: tuple[Server, ...]

    def __post_init__(self) -> None:
        problem = names.app_name_problem(self.app)
        if problem is not None:
            raise RouterError(problem)
        for host in self.hostnames:
            problem = names.hostname_problem(host)
            if problem is not None:
                raise RouterError(f"{problem} (of app {self.app})")
        if len(set(self.hostnames)) != len(self.hostnames):
            raise RouterError(f"app {self.app} lists a hostname twice")
        server_names = [s.haproxy_name for s in self.servers]
        if len(set(server_names)) != len(server_names):
            raise RouterError(
                f"app {self.app} has two servers with the same name (after making them "
                "safe for HAProxy)"
            )


@dataclass(frozen=True)
class Rejected:
    """An app the router left out of the table, and the one line saying why."""

    app: str
    reason: str


@dataclass(frozen=True)
class RouteTable:
    """Every app the router knows, stamped with the control plane's generation number;
    ``rejected`` lists the apps of the document that were left out (not served)."""

    generation: int
    apps: tuple[AppRoute, ...]
    rejected: tuple[Rejected, ...] = ()

    def __post_init__(self) -> None:
        if (
            not isinstance(self.generation, int)
            or isinstance(self.generation, bool)
            or self.generation < 0
        ):
            raise RouterError(f"generation must be a non-negative integer, got {self.generation!r}")
        claims = _Claims()
        for route in self.apps:
            problem = claims.conflict(route)
            if problem is not None:
                raise RouterError(problem)
            claims.add(route)


class _Claims:
    """The app names and hostnames of the routes accepted so far (linear in their number,
    where comparing each route with every earlier one was quadratic: 1,000 apps)."""

    def __init__(self) -> None:
        self.apps: set[str] = set()
        self.owner: dict[str, str] = {}  # hostname -> app

    def conflict(self, route: AppRoute) -> str | None:
        """Why ``route`` cannot join (its name or a hostname is taken), or None."""
        if route.app in self.apps:
            return f"app {route.app} appears twice in the route table"
        for host in route.hostnames:
            if host in self.owner:
                return f"hostname {host} is claimed by both {self.owner[host]} and {route.app}"
        return None

    def add(self, route: AppRoute) -> None:
        self.apps.add(route.app)
        self.owner.update(dict.fromkeys(route.hostnames, route.app))


@dataclass(frozen=True, kw_only=True)
class RouterSettings:
    """How the router listens and where it keeps its state; read once at start-up."""

    http_port: int
    run_dir: Path
    bind_address: str = "*"
    maxconn: int = 4096
    # Old workers still finishing long requests after a reload are killed after this long,
    # so a stream of reloads cannot pile up processes forever.
    hard_stop_after_s: int = 30
    # Connections one client address may hold open at once; one more is refused, so a
    # single client cannot take every connection slot (maxconn) from the others.
    client_maxconn: int = 256
    # When set (the router runs as root), HAProxy's workers drop to this account, whose
    # primary group has the same name, inside an empty chroot; the master stays root to
    # bind, reload and own the sockets.
    worker_user: str | None = None

    def __post_init__(self) -> None:
        _check_port(self.http_port, "http_port")
        if self.bind_address != "*":
            try:
                ipaddress.ip_address(self.bind_address)
            except ValueError:
                raise RouterError(
                    f"bind_address must be '*' or an IP address, got {self.bind_address!r}"
                ) from None
        if not self.run_dir.is_absolute():
            raise RouterError(f"run_dir must be an absolute path, got {self.run_dir}")
        if not 1 <= self.maxconn <= 1_000_000:
            raise RouterError(f"maxconn must be in 1..1000000, got {self.maxconn}")
        if not 1 <= self.client_maxconn <= self.maxconn:
            raise RouterError(
                f"client_maxconn must be in 1..maxconn ({self.maxconn}), got {self.client_maxconn}"
            )
        if self.worker_user is not None and not _USER_NAME.fullmatch(self.worker_user):
            raise RouterError(f"worker_user {self.worker_user!r} is not a plain account name")
        if not 1 <= self.hard_stop_after_s <= 86_400:
            raise RouterError(
                f"hard_stop_after_s must be in 1..86400, got {self.hard_stop_after_s}"
            )


def _field(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in obj:
        raise RouterError(f"{where}: missing {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise RouterError(f"{where}.{key} must be {kind.__name__}, got {value!r}")
    return value


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RouterError(f"{where} must be an object, got {type(value).__name__}")
    return value


def _server_from_json(value: object, where: str) -> Server:
    obj = _mapping(value, where)
    name = _field(obj, "name", str, where)
    host = _field(obj, "host", str, where)
    port = _field(obj, "port", int, where)
    try:
        return Server(name=name, host=host, port=port)
    except RouterError as err:
        raise RouterError(f"{where}: {err}") from None


def _app_from_json(value: object, where: str) -> AppRoute:
    obj = _mapping(value, where)
    app = _field(obj, "app", str, where)
    hostnames = _field(obj, "hostnames", list, where)
    for i, host in enumerate(hostnames):
        if not isinstance(host, str):
            raise RouterError(f"{where}.hostnames[{i}] must be str, got {host!r}")
    servers = tuple(
        _server_from_json(s, f"{where}.servers[{i}]")
        for i, s in enumerate(_field(obj, "servers", list, where))
    )
    try:
        # Hostnames are case-insensitive; the router matches the lowercased Host header.
        return AppRoute(app=app, hostnames=tuple(h.lower() for h in hostnames), servers=servers)
    except RouterError as err:
        raise RouterError(f"{where}: {err}") from None


def parse_routes(data: object) -> RouteTable:
    """Parse the routes.json document, leaving out each app that is not valid or that
    conflicts with an app before it (listed in ``rejected``), so one bad app never keeps
    the others from being routed. A document that is not a route table at all (no
    generation, no list of apps) raises RouterError. Unknown keys are ignored so newer
    writers still work."""
    return RouteParser().parse(data)


class RouteParser:
    """``parse_routes`` with a memory of the document before: an app whose JSON is equal
    to what it was there keeps the AppRoute built from it then, checked then. A route
    change touches one app of a thousand; checking every name and hostname again was most
    of the router's work per change. Every table is still checked whole for conflicts."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[object, AppRoute]] = {}  # app -> (its JSON, route)

    def parse(self, data: object) -> RouteTable:
        obj = _mapping(data, "routes")
        generation = _field(obj, "generation", int, "routes")
        accepted: list[AppRoute] = []
        claims = _Claims()
        rejected: list[Rejected] = []
        known: dict[str, tuple[object, AppRoute]] = {}
        for i, value in enumerate(_field(obj, "apps", list, "routes")):
            where = f"routes.apps[{i}]"
            try:
                route = self._route(value, where)
            except RouterError as err:
                rejected.append(Rejected(_app_label(value, where), str(err)))
                continue
            problem = claims.conflict(route)
            if problem is not None:
                rejected.append(Rejected(route.app, f"{where}: {problem}"))
                continue
            accepted.append(route)
            claims.add(route)
            known[route.app] = (value, route)
        self._known = known
        return RouteTable(generation=generation, apps=tuple(accepted), rejected=tuple(rejected))

    def _route(self, value: object, where: str) -> AppRoute:
        name = value.get("app") if isinstance(value, Mapping) else None
        before = self._known.get(name) if isinstance(name, str) else None
        if before is not None and before[0] == value:
            return before[1]
        return _app_from_json(value, where)


def _app_label(value: object, where: str) -> str:
    """What to call a rejected app: its name when it has a string one, else its place."""
    if isinstance(value, Mapping) and isinstance(value.get("app"), str):
        return str(value["app"])
    return where


def route_table_from_json(data: object) -> RouteTable:
    """Parse the routes.json document strictly: any bad app raises RouterError."""
    table = parse_routes(data)
    if table.rejected:
        raise RouterError(table.rejected[0].reason)
    return table


def route_table_to_json(table: RouteTable) -> dict[str, Any]:
    """The routes.json document for ``table``; route_table_from_json() reads it back equal."""
    return {
        "generation": table.generation,
        "apps": [
            {
                "app": route.app,
                "hostnames": list(route.hostnames),
                "servers": [
                    {"name": s.name, "host": s.host, "port": s.port} for s in route.servers
                ],
            }
            for route in table.apps
        ],
    }
