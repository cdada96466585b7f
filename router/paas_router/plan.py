"""What a route change takes: a list of runtime operations, or a reload.

Pure: the table the running HAProxy serves and the wanted one in, a Plan out. Invariant:
a plan either has reload reasons and no operations, or only operations the runtime API
can carry out on the backends the running config already has — a server added to or
removed from an existing app, a hostname routed to, moved between or removed from
existing apps. A new or removed app, a server whose address changed, or a server coming
back while it is still being removed needs a reload.
"""

from collections.abc import Collection
from dataclasses import dataclass

from paas_router import runtime
from paas_router.model import RouteTable, Server


@dataclass(frozen=True)
class AddServer:
    app: str
    server: Server


@dataclass(frozen=True)
class RemoveServer:
    """Start draining ``name`` (its HAProxy name); ``drain`` takes it from there."""

    app: str
    name: str


@dataclass(frozen=True)
class MapHost:
    """Route ``host`` to ``app``; ``new`` when no app had it before."""

    host: str
    app: str
    new: bool


@dataclass(frozen=True)
class UnmapHost:
    host: str
    app: str


Operation = AddServer | RemoveServer | MapHost | UnmapHost


@dataclass(frozen=True)
class Plan:
    reload_reasons: tuple[str, ...] = ()
    operations: tuple[Operation, ...] = ()


def diff(live: RouteTable, wanted: RouteTable, retiring: Collection[tuple[str, str]] = ()) -> Plan:
    """How to go from ``live`` to ``wanted``; ``retiring`` holds the (app, server name) of
    servers the running HAProxy still has while they are being removed.

    Operations come in the order that keeps requests succeeding: new servers first, then
    hostnames, then removals, so an app never has fewer servers than it needs meanwhile.
    """
    old_apps = {r.app: r for r in live.apps}
    new_apps = {r.app: r for r in wanted.apps}
    reasons = [f"new app {app}" for app in sorted(new_apps.keys() - old_apps.keys())]
    reasons += [f"removed app {app}" for app in sorted(old_apps.keys() - new_apps.keys())]
    # Only apps whose route changed can need an operation (a route change touches one
    # app of a thousand). A hostname that moved changed both the apps it moved between.
    changed = [
        app for app in sorted(new_apps.keys() & old_apps.keys()) if old_apps[app] != new_apps[app]
    ]
    adds: list[Operation] = []
    removes: list[Operation] = []
    for app in changed:
        before = {s.haproxy_name: s for s in old_apps[app].servers}
        after = {s.haproxy_name: s for s in new_apps[app].servers}
        for name, server in sorted(after.items()):
            old = before.get(name)
            if old is not None:
                if (old.host, old.port) != (server.host, server.port):
                    reasons.append(f"server {name} of app {app} changed address")
            elif (app, name) in retiring:
                reasons.append(f"server {name} of app {app} is back while being removed")
            else:
                adds.append(AddServer(app, server))
        removes += [RemoveServer(app, name) for name in sorted(before.keys() - after.keys())]
    if reasons:
        return Plan(reload_reasons=tuple(reasons))
    # An unchanged app keeps its hostnames, which no other app of either table can have.
    old_owner = {h: app for app in changed for h in old_apps[app].hostnames}
    new_owner = {h: app for app in changed for h in new_apps[app].hostnames}
    hosts: list[Operation] = [
        MapHost(host, app, new=host not in old_owner)
        for host, app in sorted(new_owner.items())
        if old_owner.get(host) != app
    ]
    hosts += [
        UnmapHost(host, old_owner[host]) for host in sorted(old_owner.keys() - new_owner.keys())
    ]
    return Plan(operations=tuple(adds + hosts + removes))


def commands(op: Operation) -> tuple[runtime.Command, ...]:
    """The runtime API commands that carry out ``op``."""
    match op:
        case AddServer(app, server):
            return runtime.add_server(app, server)
        case RemoveServer(app, name):
            return (runtime.set_state(app, name, "drain"),)
        case MapHost(host, app, new):
            return (runtime.map_host(host, app, new=new),)
        case UnmapHost(host, _):
            return (runtime.unmap_host(host),)


def describe(op: Operation) -> str:
    """One log line saying what ``op`` did."""
    match op:
        case AddServer(app, server):
            return f"added {server.name} to app {app}"
        case RemoveServer(app, name):
            return f"draining {name} of app {app}"
        case MapHost(host, app, new):
            return f"routed {host} to app {app}" if new else f"moved {host} to app {app}"
        case UnmapHost(host, app):
            return f"stopped routing {host} to app {app}"
