"""The agent's route table: what each app is routed to, and what it keeps from the last one."""

from paas.domain.dyno import DynoSpec, DynoStatus
from paas.domain.models import App, AppState, DesiredState
from paas.reconcile.routes import route_table

DOMAIN = "paas.localhost"


def _state(*apps: tuple[str, tuple[str, ...]]) -> DesiredState:
    return DesiredState(
        tuple(AppState(App(f"id-{n}", n, "debian-13", "2026"), None, domains=d) for n, d in apps)
    )


def _up(app: str, name: str, port: int, host: str = "10.0.0.2") -> DynoStatus:
    spec = DynoSpec(f"{app}.{name}.v1.ab12cd34", app, name, "web", 1, 0, "x", "/app", port)
    spec = DynoSpec(**{**spec.__dict__, "host": host})
    return DynoStatus(spec, "up", 1.0, None, False, 123)


def test_unchanged_apps_keep_their_routes_and_a_changed_one_is_made_again() -> None:
    state = _state(("aa", ()), ("bb", ("www.bb.example",)))
    first, _ = route_table(state, [_up("aa", "web.1", 5000)], (), DOMAIN)
    known = {route.app: route for route in first}
    statuses = [_up("aa", "web.1", 5000), _up("bb", "web.1", 5001)]
    second, refused = route_table(state, statuses, (), DOMAIN, known)
    assert second[0] is first[0] and second[1] is not first[1] and refused == {}
    assert [s.port for s in second[1].servers] == [5001]
    # A server that moved is a new route, not the remembered one.
    moved, _ = route_table(state, [_up("aa", "web.1", 5009)], (), DOMAIN, known)
    assert moved[0] is not first[0] and moved[0].servers[0].port == 5009


def test_a_remembered_app_whose_domain_turned_bad_is_refused_not_served_from_memory() -> None:
    good, _ = route_table(_state(("aa", ())), [], (), DOMAIN)
    known = {route.app: route for route in good}
    routes, refused = route_table(_state(("aa", ("bad domain",))), [], (), DOMAIN, known)
    assert routes == () and "bad domain" in refused["aa"]


def test_a_server_the_model_refuses_is_said_and_the_others_still_serve() -> None:
    statuses = [_up("aa", "web.1", 5000), _up("aa", "web.2", 5001, host="not a host")]
    routes, refused = route_table(_state(("aa", ())), statuses, (), DOMAIN)
    assert [s.name for s in routes[0].servers] == ["web.1-ab12cd34"] and "aa" in refused
