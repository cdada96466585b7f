"""The route table between the agent and the router, both ways.

To the router: routes.json, the router's own model (paas_router.model: RouteTable,
AppRoute, Server, written by route_table_to_json), so its schema exists once. Each app
answers at APP.DOMAIN and its custom domains, served by its up web dynos that are neither
draining nor asked to stop. A new table gets the next generation number, and only when
its apps changed.

From the router: applied.json in its run directory, written once HAProxy serves a route
generation: the generation, and the apps it left out of that table with the reason (a name
or hostname it refused). Read-only here, and forgiving: a missing or unreadable file is
generation 0, nothing left out (the router has not applied anything yet).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from paas.domain.dyno import DynoSpec, DynoStatus
from paas.domain.models import DesiredState
from paas.domain.settings import Settings
from paas.host import platform_log
from paas.host.jsonfile import read_json, write_json
from paas.state.logs import LogStore
from paas_router import layout
from paas_router.errors import RouterError
from paas_router.model import AppRoute, RouteTable, Server, parse_routes, route_table_to_json


def server_name(spec: DynoSpec) -> str:
    """The dyno's server in HAProxy: web.1-1a2b3c4d (its name and its id's random tail)."""
    return spec.name + "-" + spec.id.rsplit(".", 1)[-1]


def routed(status: DynoStatus, draining: Container[str]) -> bool:
    return (
        status.spec.type == "web"
        and status.state == "up"
        and status.spec.id not in draining
        and not status.stop_requested
    )


def route_table(
    state: DesiredState,
    statuses: Iterable[DynoStatus],
    draining: Container[str],
    domain: str,
    before: Mapping[str, AppRoute] | None = None,
) -> tuple[tuple[AppRoute, ...], dict[str, str]]:
    """Every app's route (pure), and the apps the router's model refuses, with why (none
    once the API has checked names and domains; said rather than breaking every app).
    An app whose hostnames and servers are those of its route in ``before`` keeps that
    route, checked when it was made: a tick changes one app's route of a thousand."""
    servers: dict[str, list[tuple[str, str, int]]] = {}
    for status in statuses:
        if routed(status, draining):
            spec = status.spec
            entry = (server_name(spec), spec.host, spec.port)
            servers.setdefault(spec.app, []).append(entry)  # type: ignore[arg-type]
    routes = []
    refused: dict[str, str] = {}
    for app_state in state.apps:
        name = app_state.app.name
        hostnames = (f"{name}.{domain}", *app_state.domains)
        wanted = tuple(sorted(servers.get(name, ())))
        known = (before or {}).get(name)
        if known is not None and known.hostnames == hostnames and _addresses(known) == wanted:
            routes.append(known)
            continue
        try:
            routes.append(AppRoute(name, hostnames, _servers(name, wanted, refused)))
        except RouterError as error:
            refused[name] = str(error)
    return tuple(routes), refused


def _addresses(route: AppRoute) -> tuple[tuple[str, str, int], ...]:
    return tuple((s.name, s.host, s.port) for s in route.servers)


def _servers(
    app: str, wanted: tuple[tuple[str, str, int], ...], refused: dict[str, str]
) -> tuple[Server, ...]:
    """The servers the model accepts; a refused one is said, and the others still serve."""
    accepted = []
    for name, host, port in wanted:
        try:
            accepted.append(Server(name, host, port))
        except RouterError as error:
            refused[app] = str(error)
    return tuple(accepted)


@dataclass(frozen=True)
class Applied:
    generation: int = 0
    rejected: dict[str, str] = field(default_factory=dict)  # app -> why it is not routed


def applied_path(settings: Settings) -> Path:
    return settings.router_dir / layout.APPLIED_FILE


def applied(settings: Settings) -> Applied:
    data = read_json(applied_path(settings)) or {}
    generation = data.get("generation", 0)
    rejected: dict[str, str] = {}
    entries = data.get("rejected")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            app, reason = entry.get("app"), entry.get("reason")
            if isinstance(app, str) and isinstance(reason, str):
                rejected[app] = reason
    return Applied(generation if isinstance(generation, int) else 0, rejected)


def rejection(settings: Settings, app: str) -> str | None:
    """Why the router does not route ``app`` right now, or None when it does."""
    return rejection_message(app, applied(settings).rejected)


def rejection_message(app: str, rejected: dict[str, str]) -> str | None:
    """What `paas ps` and `apps:info` say of an app the router refused (None: routed),
    from applied.json's rejections, which a listing of many apps reads once."""
    reason = rejected.get(app)
    return None if reason is None else f"the router does not route {app}: {reason}"


class RoutePublisher:
    """Writes routes.json for the router and reads back what it applied."""

    def __init__(self, settings: Settings, logs: LogStore) -> None:
        self.settings = settings
        self.path = settings.routes_path
        self.logs = logs
        # What routes.json holds: read once, then kept as written (the agent is its one
        # writer while it runs), not read and parsed again every tick.
        published = read_json(self.path) or {}
        generation = published.get("generation", 0)
        self.generation = generation if isinstance(generation, int) else 0
        self.published_apps = published.get("apps")
        self.routes: dict[str, AppRoute] = {}  # app -> its route, as last published
        self.refused: dict[str, str] = {}  # app -> the reason last said

    def applied_generation(self) -> int:
        return applied(self.settings).generation

    def publish(self, routes: tuple[AppRoute, ...], refused: dict[str, str]) -> None:
        """A new generation of routes.json when the apps' routes changed."""
        self.say_refused(refused)
        if tuple(self.routes.values()) == routes:
            return  # the same routes (mostly the very same objects): an idle tick
        document = route_table_to_json(RouteTable(self.generation + 1, routes))
        if self.published_apps != document["apps"]:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.path, document)
            self.generation += 1
            self.log_route_changes(self.published_apps, document["apps"])
            self.published_apps = document["apps"]
        # Only once written: a failed write is tried again on the next tick.
        self.routes = {route.app: route for route in routes}

    def say_refused(self, refused: dict[str, str]) -> None:
        """Once per app and reason, in the platform's log and the app's."""
        for app, reason in refused.items():
            if self.refused.get(app) != reason:
                platform_log.line(f"agent: {app} is not routed: {reason}")
                self.logs.event(app, "router", f"Not routed: {reason}")
        self.refused = dict(refused)

    def log_route_changes(self, before: object, after: object) -> None:
        """`paas[router]: Routing to web.1, web.2` whenever an app's routed dynos change."""

        def routed_names(apps: object) -> dict[str, list[str]]:
            if not isinstance(apps, list):
                return {}
            return {a["app"]: sorted(s["name"].split("-")[0] for s in a["servers"]) for a in apps}

        old, new = routed_names(before), routed_names(after)
        for app, dynos in new.items():
            if old.get(app) != dynos:
                target = ", ".join(dynos) if dynos else "no web dyno (requests get 503)"
                self.logs.event(app, "router", f"Routing to {target}")


def withdraw(settings: Settings, specs: list[DynoSpec]) -> None:
    """Takes these dynos' servers out of routes.json, in a new generation (`paas server
    --stop`: no table is left pointing to dynos that are gone)."""
    gone = {(s.app, server_name(s)) for s in specs}
    try:
        table = parse_routes(read_json(settings.routes_path))
    except RouterError:
        return  # no table the router could read: nothing routes to anything
    kept = tuple(
        AppRoute(r.app, r.hostnames, tuple(s for s in r.servers if (r.app, s.name) not in gone))
        for r in table.apps
    )
    if kept != table.apps:
        write_json(
            settings.routes_path, route_table_to_json(RouteTable(table.generation + 1, kept))
        )
