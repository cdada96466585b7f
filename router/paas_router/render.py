"""Render the whole HAProxy config, and the host map it reads, from a route table.

Pure: values in, text out. Invariants:
- The output depends only on the table's routes and the settings — apps, servers and
  hostnames are sorted, there are no timestamps, and the generation number is left out — so
  equal routes give byte-equal files.
- An app's backend renders the same whatever its number of servers; only its ``server``
  lines vary. So two configs whose ``without_servers()`` text is equal differ only in what
  the runtime API can change (servers and map entries), and anything else needs a reload.
- A server is added at runtime with exactly the options of its rendered line
  (``SERVER_OPTIONS``): dynamic servers inherit no ``default-server`` in HAProxy 2.6.
- Every value the template prints is escaped for HAProxy's config parser (``config_word``),
  so no value — whatever the model let through — can end a line, a word or a quoted
  string, start a comment or expand a variable. Only text the router writes itself and
  marks ``Verbatim`` is printed as it is. The host map has no escaping at all, so every
  key and value written there is checked against the name rules instead.
"""

import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import jinja2

from paas_router import layout, names
from paas_router.errors import RouterError
from paas_router.model import AppRoute, RouterSettings, RouteTable, Server


class Verbatim(str):
    """Config text the router writes itself, several words on purpose: not escaped."""


UNKNOWN_HOST_BACKEND = "paas_unknown_host"
# What every server line carries after its address, in the config and in "add server".
SERVER_OPTIONS = Verbatim("check inter 500 fall 2 rise 1")

# Characters that mean nothing special to HAProxy's parser, in or out of quotes.
_PLAIN = re.compile(r"[A-Za-z0-9_.:/@*+=,-]+")
# The characters HAProxy unescapes after a backslash as themselves; every other one is
# written as \xNN bytes (a backslash before any other character would stay in the value).
_BACKSLASHED = frozenset(" \\\"'#$")


def config_word(value: object) -> str:
    """``value`` as text that HAProxy reads back as exactly that one word (or part of a
    quoted string)."""
    if isinstance(value, Verbatim):
        return str(value)
    text = str(value)
    if _PLAIN.fullmatch(text):
        return text
    out = []
    for char in text:
        if _PLAIN.fullmatch(char):
            out.append(char)
        elif char in _BACKSLASHED:
            out.append("\\" + char)
        else:
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8"))
    return "".join(out)


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("paas_router", "templates"),
    # The output is an HAProxy config, not HTML: values are escaped for HAProxy instead,
    # by ``finalize``, which sees every value the template prints.
    autoescape=False,
    finalize=config_word,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def backend_name(app: str) -> str:
    """The HAProxy backend serving ``app`` (also its name in the runtime API)."""
    return f"app_{app}"


def server_address(server: Server) -> str:
    """The address HAProxy is given for ``server``, in the config and the runtime API."""
    return _address(server.host, server.port)


def _address(host: str, port: int) -> str:
    # "::1:8080" would be ambiguous to a reader; the ipv6@ prefix says what it is.
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"ipv6@{host}:{port}"
    except ValueError:
        pass
    return f"{host}:{port}"


def _bind(settings: RouterSettings) -> str:
    if settings.bind_address == "*":
        return f"*:{settings.http_port}"
    return _address(settings.bind_address, settings.http_port)


def _server(server: Server) -> dict[str, str]:
    return {"name": server.haproxy_name, "address": server_address(server)}


def _app(route: AppRoute) -> dict[str, Any]:
    servers = sorted(route.servers, key=lambda s: s.haproxy_name)
    return {
        "name": route.app,
        "backend": backend_name(route.app),
        "servers": [_server(s) for s in servers],
    }


@dataclass(frozen=True)
class Rendered:
    """What one route table renders to."""

    config: str
    skeleton: str  # the config without its server lines: what only a reload changes
    hosts_map: str


@dataclass
class _AppText:
    route: AppRoute
    backend: str
    skeleton: str

    @functools.cached_property
    def map_lines(self) -> tuple[str, ...]:
        return tuple(_map_line(host, self.route.app) for host in self.route.hostnames)


class Renderer:
    """Renders route tables for one settings, remembering each app's text with the route it
    was rendered from: a route change renders the one app that changed, not a thousand
    backends. The memory holds only the last table's apps, so it never grows."""

    def __init__(self, settings: RouterSettings) -> None:
        head = _ENV.get_template("haproxy.cfg.j2").render(
            maxconn=settings.maxconn,
            client_maxconn=settings.client_maxconn,
            worker_user=settings.worker_user,
            chroot=str(settings.run_dir / layout.CHROOT_DIR),
            hard_stop_after_s=settings.hard_stop_after_s,
            admin_socket=str(settings.run_dir / layout.ADMIN_SOCKET_FILE),
            bind=_bind(settings),
            hosts_map=layout.HOSTS_MAP_FILE,
            unknown_backend=UNKNOWN_HOST_BACKEND,
        )
        self._head = head
        self._head_skeleton = without_servers(head)
        self._apps: dict[str, _AppText] = {}  # app -> its text, as of the last table

    def _text(self, route: AppRoute) -> _AppText:
        before = self._apps.get(route.app)
        if before is not None and (before.route is route or before.route == route):
            return before
        return _app_text(route)

    def render(self, table: RouteTable) -> Rendered:
        parts = self._parts(table)
        lines = sorted(line for part in parts for line in part.map_lines)
        return Rendered(
            config=self._head + "".join(p.backend for p in parts),
            skeleton=self._head_skeleton + "".join(p.skeleton for p in parts),
            hosts_map=_MAP_HEADER + "".join(f"{line}\n" for line in lines),
        )

    def config(self, table: RouteTable) -> str:
        return self._head + "".join(p.backend for p in self._parts(table))

    def _parts(self, table: RouteTable) -> list[_AppText]:
        parts = [self._text(route) for route in sorted(table.apps, key=lambda r: r.app)]
        self._apps = {part.route.app: part for part in parts}
        return parts


def _app_text(route: AppRoute) -> _AppText:
    backend = _ENV.get_template("backend.cfg.j2").render(
        app=_app(route), server_options=SERVER_OPTIONS
    )
    return _AppText(route, backend, without_servers(backend))


def render(table: RouteTable, settings: RouterSettings) -> str:
    """The complete haproxy.cfg serving ``table``."""
    return Renderer(settings).config(table)


_MAP_HEADER = "# Generated by paas-router: lowercase hostname -> backend.\n"


def render_hosts_map(table: RouteTable) -> str:
    """The hosts.map file: one ``hostname backend`` line per hostname, sorted by hostname."""
    lines = sorted(_map_line(host, route.app) for route in table.apps for host in route.hostnames)
    return _MAP_HEADER + "".join(f"{line}\n" for line in lines)


def _map_line(host: str, app: str) -> str:
    # A map line is "key value" up to the newline, with no escaping: only names that pass
    # the rules (no space, newline or '#') may be written there.
    problem = names.hostname_problem(host) or names.app_name_problem(app)
    if problem is not None:
        raise RouterError(f"refusing to write the host map: {problem}")
    return f"{host} {backend_name(app)}"


def without_servers(config: str) -> str:
    """``config`` without its ``server`` lines: the part only a reload can change."""
    return "".join(
        line for line in config.splitlines(keepends=True) if not line.lstrip().startswith("server ")
    )
