"""The pure core of runtime changes: table diff, the commands it becomes, drain steps."""

from pathlib import Path

import pytest

from paas_router import drain, model, plan, render, runtime
from paas_router.errors import RouterError

S1 = model.Server("web.1-aa", "127.0.0.1", 5001)
S2 = model.Server("web.2-bb", "127.0.0.1", 5002)
S3 = model.Server("web.3-cc", "::1", 5003)


def _table(*apps: model.AppRoute) -> model.RouteTable:
    return model.RouteTable(1, apps)


def _app(
    name: str, servers: tuple[model.Server, ...] = (), hosts: tuple[str, ...] = ()
) -> model.AppRoute:
    return model.AppRoute(name, hosts or (f"{name}.paas.localhost",), servers)


def _ops(*operations: plan.Operation) -> plan.Plan:
    return plan.Plan(operations=operations)


def _reload(*reasons: str) -> plan.Plan:
    return plan.Plan(reload_reasons=reasons)


# (what changes, live table, wanted table, the plan)
CASES: list[tuple[str, model.RouteTable, model.RouteTable, plan.Plan]] = [
    ("nothing", _table(_app("aa", (S1,))), _table(_app("aa", (S1,))), _ops()),
    (
        "scale up from zero",
        _table(_app("aa")),
        _table(_app("aa", (S1, S2))),
        _ops(plan.AddServer("aa", S1), plan.AddServer("aa", S2)),
    ),
    (
        "redeploy: new before old",
        _table(_app("aa", (S1,))),
        _table(_app("aa", (S2,))),
        _ops(plan.AddServer("aa", S2), plan.RemoveServer("aa", "web.1-aa")),
    ),
    (
        "scale to zero",
        _table(_app("aa", (S1, S2))),
        _table(_app("aa")),
        _ops(plan.RemoveServer("aa", "web.1-aa"), plan.RemoveServer("aa", "web.2-bb")),
    ),
    (
        "servers of two apps",
        _table(_app("aa", (S1,)), _app("bb", (S1,))),
        _table(_app("aa", (S1, S3)), _app("bb")),
        _ops(plan.AddServer("aa", S3), plan.RemoveServer("bb", "web.1-aa")),
    ),
    (
        "hostnames added, moved and removed between existing apps",
        _table(_app("aa", hosts=("a.x", "old.x")), _app("bb", hosts=("b.x",))),
        _table(_app("aa", hosts=("a.x", "new.x")), _app("bb", hosts=("b.x", "old.x"))),
        _ops(plan.MapHost("new.x", "aa", new=True), plan.MapHost("old.x", "bb", new=False)),
    ),
    (
        "hostname dropped",
        _table(_app("aa", hosts=("a.x", "www.x"))),
        _table(_app("aa", hosts=("a.x",))),
        _ops(plan.UnmapHost("www.x", "aa")),
    ),
    (
        "servers before hostnames before removals",
        _table(_app("aa", (S1,), hosts=("a.x",))),
        _table(_app("aa", (S2,), hosts=("a.x", "b.x"))),
        _ops(
            plan.AddServer("aa", S2),
            plan.MapHost("b.x", "aa", new=True),
            plan.RemoveServer("aa", "web.1-aa"),
        ),
    ),
    ("new app", _table(_app("aa")), _table(_app("aa"), _app("bb", (S1,))), _reload("new app bb")),
    ("removed app", _table(_app("aa"), _app("bb")), _table(_app("bb")), _reload("removed app aa")),
    (
        "an app renamed is one new and one removed",
        _table(_app("aa", (S1,))),
        _table(_app("cc", (S1,))),
        _reload("new app cc", "removed app aa"),
    ),
    (
        "same server name, other port",
        _table(_app("aa", (S1,))),
        _table(_app("aa", (model.Server("web.1-aa", "127.0.0.1", 6001),))),
        _reload("server web.1-aa of app aa changed address"),
    ),
]


@pytest.mark.parametrize(
    ("live", "wanted", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_diff(live: model.RouteTable, wanted: model.RouteTable, expected: plan.Plan) -> None:
    assert plan.diff(live, wanted) == expected


def test_a_server_back_while_being_removed_needs_a_reload() -> None:
    live, wanted = _table(_app("aa")), _table(_app("aa", (S1,)))
    assert plan.diff(live, wanted, retiring={("aa", "web.1-aa")}).reload_reasons == (
        "server web.1-aa of app aa is back while being removed",
    )
    assert plan.diff(live, wanted, retiring={("bb", "web.1-aa")}).operations == (
        plan.AddServer("aa", S1),
    )


def test_server_names_are_the_haproxy_ones() -> None:
    odd = model.Server("web 1", "127.0.0.1", 5001)
    result = plan.diff(_table(_app("aa", (odd,))), _table(_app("aa")))
    assert result.operations == (plan.RemoveServer("aa", "web_1"),)


def test_commands_are_what_haproxy_26_accepts() -> None:
    assert [c.text for c in plan.commands(plan.AddServer("aa", S3))] == [
        "add server app_aa/web.3-cc ipv6@::1:5003 check inter 500 fall 2 rise 1",
        "enable health app_aa/web.3-cc",
        "enable server app_aa/web.3-cc",
    ]
    assert plan.commands(plan.RemoveServer("aa", "web.1-aa")) == (
        runtime.Command("set server app_aa/web.1-aa state drain"),
    )
    assert [c.text for c in plan.commands(plan.MapHost("a.x", "aa", new=True))] == [
        "add map hosts.map a.x app_aa"
    ]
    assert [c.text for c in plan.commands(plan.MapHost("a.x", "bb", new=False))] == [
        "set map hosts.map a.x app_bb"
    ]
    assert [c.text for c in plan.commands(plan.UnmapHost("a.x", "aa"))] == ["del map hosts.map a.x"]
    assert runtime.delete_server("aa", "web.1-aa").text == "del server app_aa/web.1-aa"


def test_answers_decide_success() -> None:
    add = runtime.add_server("aa", S1)[0]
    assert add.succeeded("New server registered.\n")
    assert not add.succeeded("Already exists a server with the same name in backend.\n")
    enable = runtime.set_state("aa", "web.1-aa", "maint")
    assert enable.succeeded("\n") and enable.succeeded("")
    assert not enable.succeeded("No such server.\n\n")
    busy = "Server still has connections attached to it, cannot remove it.\n"
    assert runtime.still_connected(busy) and not runtime.still_connected("Server deleted.")
    assert runtime.no_such_server("No such server.\n")


def test_add_server_carries_exactly_the_rendered_server_line() -> None:
    # Dynamic servers inherit no default-server in 2.6: every option must be on the line.
    settings = model.RouterSettings(http_port=80, run_dir=Path("/tmp/x"))
    for server in (S1, S3):
        config = render.render(_table(_app("aa", (server,))), settings)
        line = next(ln.strip() for ln in config.splitlines() if ln.strip().startswith("server "))
        added = runtime.add_server("aa", server)[0].text
        assert added == "add server app_aa/" + line.removeprefix("server ")


def test_without_servers_keeps_everything_but_server_lines() -> None:
    settings = model.RouterSettings(http_port=80, run_dir=Path("/tmp/x"))
    none = render.render(_table(_app("aa")), settings)
    two = render.render(_table(_app("aa", (S1, S2))), settings)
    assert render.without_servers(two) == render.without_servers(none) == none
    other_app = render.render(_table(_app("bb")), settings)
    assert render.without_servers(other_app) != render.without_servers(none)


DRAINING = drain.Retiring("aa", "web.1", drain.Stage.DRAINING, since=100.0)
IN_MAINT = drain.Retiring("aa", "web.1", drain.Stage.MAINT, since=100.0)


@pytest.mark.parametrize(
    ("server", "sessions", "now", "step"),
    [
        (DRAINING, 3, 105.0, drain.Step.WAIT),
        (DRAINING, 0, 100.0, drain.Step.MAINT),
        (DRAINING, 3, 110.0, drain.Step.MAINT_LATE),
        (DRAINING, None, 101.0, drain.Step.FORGET),
        (IN_MAINT, 2, 101.0, drain.Step.DELETE),
        (IN_MAINT, 0, 200.0, drain.Step.DELETE),
        (IN_MAINT, None, 101.0, drain.Step.FORGET),
    ],
)
def test_drain_steps(
    server: drain.Retiring, sessions: int | None, now: float, step: drain.Step
) -> None:
    assert drain.next_step(server, sessions, now, limit=10.0) is step


def test_parse_server_sessions() -> None:
    text = (
        "# pxname,svname,qcur,qmax,scur,smax,slim,stot\n"
        "app_aa,web.1-x,0,0,2,2,,4\n"
        "app_aa,web.2-y,0,0,0,1,,9\n"
        "app_bb,web.1-z,0,0,,0,,0\n"
        "\n"
    )
    assert runtime.parse_server_sessions(text) == {
        ("app_aa", "web.1-x"): 2,
        ("app_aa", "web.2-y"): 0,
        ("app_bb", "web.1-z"): 0,
    }
    assert runtime.parse_server_sessions("# pxname,svname,scur\n") == {}
    with pytest.raises(RouterError, match="unexpected answer"):
        runtime.parse_server_sessions("Unknown command.\n")
