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

from paas_router.errors import RouterError

APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,29}$")
# One DNS label: letters, digits and inner hyphens, at most 63 characters.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
# HAProxy accepts more in a server name, but these are the characters that are safe in
# every runtime API command ("set server app_x/NAME ...") without quoting.
_SERVER_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_SERVER_NAME_MAX = 64


def haproxy_server_name(name: str) -> str:
    """``name`` with every character HAProxy or its runtime API might choke on made ``_``."""
    return _SERVER_NAME_UNSAFE.sub("_", name)


def _check_host(host: str) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not HOSTNAME.match(host):
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
        if not isinstance(self.app, str) or not APP_NAME.match(self.app):
            raise RouterError(
                f"app name {self.app!r} must be 2..30 characters of a-z, 0-9 and '-', "
                "starting with a letter"
            )
        for host in self.hostnames:
            if not isinstance(host, str) or not HOSTNAME.match(host):
                raise RouterError(
                    f"hostname {host!r} of app {self.app} is not a lowercase DNS name"
                )
        if len(set(self.hostnames)) != len(self.hostnames):
            raise RouterError(f"app {self.app} lists a hostname twice")
        names = [s.haproxy_name for s in self.servers]
        if len(set(names)) != len(names):
            raise RouterError(
                f"app {self.app} has two servers with the same name (after making them "
                "safe for HAProxy)"
            )


@dataclass(frozen=True)
class RouteTable:
    """Every app the router knows, stamped with the control plane's generation number."""

    generation: int
    apps: tuple[AppRoute, ...]

    def __post_init__(self) -> None:
        if (
            not isinstance(self.generation, int)
            or isinstance(self.generation, bool)
            or self.generation < 0
        ):
            raise RouterError(f"generation must be a non-negative integer, got {self.generation!r}")
        seen_apps: set[str] = set()
        owner: dict[str, str] = {}
        for route in self.apps:
            if route.app in seen_apps:
                raise RouterError(f"app {route.app} appears twice in the route table")
            seen_apps.add(route.app)
            for host in route.hostnames:
                if host in owner:
                    raise RouterError(
                        f"hostname {host} is claimed by both {owner[host]} and {route.app}"
                    )
                owner[host] = route.app


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


def route_table_from_json(data: object) -> RouteTable:
    """Parse the routes.json document; unknown keys are ignored so newer writers still work."""
    obj = _mapping(data, "routes")
    generation = _field(obj, "generation", int, "routes")
    apps = tuple(
        _app_from_json(a, f"routes.apps[{i}]")
        for i, a in enumerate(_field(obj, "apps", list, "routes"))
    )
    try:
        return RouteTable(generation=generation, apps=apps)
    except RouterError as err:
        raise RouterError(f"routes: {err}") from None


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
