"""The router loop: a fake HAProxy for the decisions, a real one end to end."""

import json
import threading
from collections.abc import Callable

import pytest
import routerkit
from fakeproxy import FakeHAProxy

from paas_router import drain, haproxy, model, render, service

Server = tuple[str, int]  # (name, port)


def _routes(generation: int, *apps: tuple[str, list[Server]] | tuple[str, int]) -> str:
    """routes.json for ``apps``: (app, port) for one server web.1, or (app, [(name, port)])."""
    doc = {
        "generation": generation,
        "apps": [
            {
                "app": name,
                "hostnames": [f"{name}.paas.localhost"],
                "servers": [
                    {"name": n, "host": "127.0.0.1", "port": p}
                    for n, p in (servers if isinstance(servers, list) else [("web.1", servers)])
                ],
            }
            for name, servers in apps
        ],
    }
    return json.dumps(doc)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Rig:
    """A RouterService on a fake HAProxy, a fake clock and a list of log lines."""

    def __init__(self, settings: model.RouterSettings) -> None:
        self.settings = settings
        self.routes = settings.run_dir / "routes.json"
        self.proxy = FakeHAProxy()
        self.logged: list[str] = []
        self.clock = Clock()
        self.svc = self.new_service()

    def new_service(self) -> service.RouterService:
        return service.RouterService(
            self.routes, self.settings, self.proxy, log=self.logged.append, clock=self.clock
        )

    def publish(self, text: str) -> bool:
        """Write routes.json and tick once; True when HAProxy was started or reloaded."""
        self.routes.write_text(text)
        return self.svc.tick()

    def applied(self) -> object:
        return json.loads((self.settings.run_dir / "applied.json").read_text())["generation"]

    def new_commands(self) -> list[str]:
        done = list(self.proxy.commands)
        self.proxy.commands.clear()
        return done


@pytest.fixture
def rig(settings: model.RouterSettings) -> Rig:
    return Rig(settings)


def test_missing_routes_file_serves_the_empty_table(rig: Rig) -> None:
    assert rig.svc.tick() is True
    assert "backend app_" not in rig.proxy.applied[0][0]
    assert rig.applied() == 0
    assert rig.logged == ["started haproxy"]


def test_applies_only_when_the_routes_change(rig: Rig) -> None:
    assert rig.publish(_routes(1, ("aa", 5000))) is True
    assert rig.svc.tick() is False
    # A new generation with the same routes: nothing to do, but applied.json moves on.
    assert rig.publish(_routes(2, ("aa", 5000))) is False
    assert rig.applied() == 2
    assert rig.proxy.commands == [] and rig.proxy.installs == []
    # The same server name at another address cannot be changed at runtime.
    assert rig.publish(_routes(3, ("aa", 5001))) is True
    assert rig.proxy.reloads() == 2
    assert rig.applied() == 3
    assert rig.logged[-1] == "reloaded: server web.1 of app aa changed address"


def test_an_idle_tick_neither_renders_nor_touches_haproxy(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.publish(_routes(1, ("aa", 5000), ("bb", 5001)))
    rig.publish(_routes(2, ("aa", [("web.1", 5000), ("web.2", 5002)]), ("bb", 5001)))
    installs, commands = len(rig.proxy.installs), len(rig.proxy.commands)

    def no_render(*_: object) -> None:
        raise AssertionError("an idle tick rendered the config")

    monkeypatch.setattr(render.Renderer, "render", no_render)
    assert [rig.svc.tick() for _ in range(3)] == [False] * 3
    assert (len(rig.proxy.installs), len(rig.proxy.commands)) == (installs, commands)
    assert rig.applied() == 2


def test_reapplies_when_haproxy_is_not_running(rig: Rig) -> None:
    rig.publish(_routes(1, ("aa", 5000)))
    rig.proxy.alive = False
    assert rig.svc.tick() is True
    assert rig.proxy.reloads() == 2
    assert rig.logged == ["started haproxy", "started haproxy"]


def test_one_bad_app_is_left_out_logged_once_and_the_rest_is_served(rig: Rig) -> None:
    rig.publish(_routes(1, ("aa", 5000), ("bb", 5001)))
    rig.logged.clear()
    assert rig.publish(_routes(2, ("aa", 0), ("bb", 5002))) is True  # aa leaves: a reload
    assert rig.svc.tick() is False
    (left_out,) = [line for line in rig.logged if line.startswith("left out")]
    assert "app 'aa'" in left_out and "1..65535" in left_out and "\n" not in left_out
    config = rig.proxy.applied[-1][0]
    assert "backend app_aa" not in config and "127.0.0.1:5002" in config
    applied = json.loads((rig.settings.run_dir / "applied.json").read_text())
    assert applied["generation"] == 2
    assert [r["app"] for r in applied["rejected"]] == ["aa"]


def test_a_document_that_is_no_route_table_keeps_the_old_config_and_logs_once(
    rig: Rig,
) -> None:
    rig.publish(_routes(1, ("aa", 5000)))
    rig.logged.clear()
    assert rig.publish('{"apps": []}') is False
    assert rig.svc.tick() is False
    assert len(rig.logged) == 1 and "missing 'generation'" in rig.logged[0]
    rig.publish("{not json")
    assert len(rig.logged) == 2 and "not valid JSON" in rig.logged[1]
    assert rig.proxy.reloads() == 1
    assert rig.applied() == 1


def test_a_rejected_config_is_logged_and_not_recorded(rig: Rig) -> None:
    rig.publish(_routes(1, ("aa", 5000)))
    rig.proxy.reject = "haproxy rejected the config: [ALERT] something"
    assert rig.publish(_routes(2, ("aa", 5001))) is False
    assert rig.logged[-1] == (
        "keeping the current config: haproxy rejected the config: [ALERT] something"
    )
    assert rig.applied() == 1


def test_a_failed_write_on_the_runtime_path_sends_no_command(rig: Rig) -> None:
    rig.publish(_routes(1, ("aa", 5000)))
    rig.proxy.unwritable = True
    assert rig.publish(_routes(2, ("aa", [("web.1", 5000), ("web.2", 5002)]))) is False
    assert rig.logged[-1].startswith("keeping the current config: ")
    assert rig.proxy.commands == []
    assert rig.applied() == 1


def test_an_added_server_goes_in_at_runtime_and_on_disk(rig: Rig) -> None:
    rig.publish(_routes(1, ("aa", 5000)))
    assert rig.publish(_routes(2, ("aa", [("web.1", 5000), ("web.2-ab12", 5002)]))) is False
    assert rig.new_commands() == [
        "add server app_aa/web.2-ab12 127.0.0.1:5002 check inter 500 fall 2 rise 1",
        "enable health app_aa/web.2-ab12",
        "enable server app_aa/web.2-ab12",
    ]
    assert rig.proxy.reloads() == 1
    assert rig.proxy.ready("app_aa") == {"web.1", "web.2-ab12"}
    config, _ = rig.proxy.files or ("", "")
    assert "server web.2-ab12 127.0.0.1:5002 check inter 500 fall 2 rise 1" in config
    assert rig.applied() == 2
    assert rig.logged[-1] == "added web.2-ab12 to app aa"


def test_an_idle_removed_server_is_drained_and_deleted_in_one_tick(rig: Rig) -> None:
    rig.publish(_routes(1, ("aa", [("web.1", 5000), ("web.2", 5002)])))
    assert rig.publish(_routes(2, ("aa", [("web.2", 5002)]))) is False
    assert rig.new_commands() == [
        "set server app_aa/web.1 state drain",
        "show stat -1 4 -1",
        "set server app_aa/web.1 state maint",
        "del server app_aa/web.1",
    ]
    assert ("app_aa", "web.1") not in rig.proxy.servers
    assert "server web.1 " not in (rig.proxy.files or ("", ""))[0]
    assert rig.applied() == 2
    assert rig.logged[-1] == "drained and removed web.1 from app aa (0.0s)"
    assert rig.svc.retiring() == []


def test_a_busy_removed_server_is_reported_only_once_it_is_in_maint(rig: Rig) -> None:
    rig.publish(_routes(1, ("aa", [("web.1", 5000), ("web.2", 5002)])))
    rig.proxy.server("app_aa", "web.1").sessions = 1
    rig.publish(_routes(2, ("aa", [("web.2", 5002)])))
    assert rig.proxy.server("app_aa", "web.1").state == "drain"
    assert rig.applied() == 1
    rig.clock.now += 3
    assert rig.svc.tick() is False
    assert rig.applied() == 1
    # Later changes still go in meanwhile, but are reported only with the drain done.
    rig.publish(_routes(3, ("aa", [("web.2", 5002), ("web.3", 5003)])))
    assert rig.proxy.ready("app_aa") == {"web.2", "web.3"}
    assert rig.applied() == 1
    rig.proxy.server("app_aa", "web.1").sessions = 0
    rig.clock.now += 1
    rig.svc.tick()
    assert ("app_aa", "web.1") not in rig.proxy.servers
    assert rig.applied() == 3
    assert rig.logged[-1] == "drained and removed web.1 from app aa (4.0s)"
    assert rig.proxy.reloads() == 1


def test_the_drain_limit_puts_a_busy_server_in_maint_and_delete_waits(rig: Rig) -> None:
    rig.publish(_routes(1, ("aa", [("web.1", 5000), ("web.2", 5002)])))
    rig.proxy.server("app_aa", "web.1").sessions = 2
    rig.publish(_routes(2, ("aa", [("web.2", 5002)])))
    rig.clock.now += 9.9
    rig.svc.tick()
    assert rig.proxy.server("app_aa", "web.1").state == "drain"
    rig.clock.now += 0.1
    rig.new_commands()
    rig.svc.tick()
    assert rig.new_commands() == [
        "show stat -1 4 -1",
        "set server app_aa/web.1 state maint",
        "del server app_aa/web.1",
    ]
    assert rig.applied() == 2
    assert "still had 2 requests after 10s of draining" in rig.logged[-1]
    assert [(r.name, r.stage) for r in rig.svc.retiring()] == [("web.1", drain.Stage.MAINT)]
    rig.svc.tick()  # HAProxy still says it has connections: retried, not a failure
    assert rig.proxy.reloads() == 1
    rig.proxy.server("app_aa", "web.1").sessions = 0
    rig.svc.tick()
    assert ("app_aa", "web.1") not in rig.proxy.servers
    assert rig.svc.retiring() == []
    assert rig.proxy.reloads() == 1


def test_hostnames_of_existing_apps_change_in_the_map_at_runtime(rig: Rig) -> None:
    doc = json.loads(_routes(1, ("aa", 5000), ("bb", 5001)))
    rig.publish(json.dumps(doc))
    doc["generation"] = 2
    doc["apps"][0]["hostnames"] += ["www.example.com", "shop.example.com"]
    assert rig.publish(json.dumps(doc)) is False
    assert rig.new_commands() == [
        "add map hosts.map shop.example.com app_aa",
        "add map hosts.map www.example.com app_aa",
    ]
    doc["generation"] = 3
    doc["apps"][0]["hostnames"].remove("shop.example.com")
    doc["apps"][0]["hostnames"].remove("www.example.com")
    doc["apps"][1]["hostnames"].append("www.example.com")
    assert rig.publish(json.dumps(doc)) is False
    assert rig.new_commands() == [
        "set map hosts.map www.example.com app_bb",
        "del map hosts.map shop.example.com",
    ]
    assert rig.proxy.hosts == {
        "aa.paas.localhost": "app_aa",
        "bb.paas.localhost": "app_bb",
        "www.example.com": "app_bb",
    }
    assert rig.proxy.files is not None
    assert rig.proxy.files[1] == render.render_hosts_map(
        service.read_routes(rig.routes)  # the map on disk says the same
    )
    assert rig.proxy.reloads() == 1
    assert rig.applied() == 3
    assert rig.logged[-4:] == [
        "routed shop.example.com to app aa",
        "routed www.example.com to app aa",
        "moved www.example.com to app bb",
        "stopped routing shop.example.com to app aa",
    ]


def test_a_new_or_removed_app_reloads(rig: Rig) -> None:
    rig.publish(_routes(1, ("aa", 5000)))
    assert rig.publish(_routes(2, ("aa", 5000), ("bb", 5001))) is True
    assert rig.logged[-1] == "reloaded: new app bb"
    assert rig.publish(_routes(3, ("bb", 5001))) is True
    assert rig.logged[-1] == "reloaded: removed app aa"
    assert rig.proxy.commands == []
    assert rig.applied() == 3


def test_a_failing_command_falls_back_to_a_reload(rig: Rig) -> None:
    rig.publish(_routes(1, ("aa", 5000)))
    rig.proxy.fail = "enable server"
    assert rig.publish(_routes(2, ("aa", [("web.1", 5000), ("web.2", 5002)]))) is True
    assert rig.logged[-1] == (
        "reloaded: runtime command 'enable server app_aa/web.2' failed: Unexpected error."
    )
    assert rig.proxy.ready("app_aa") == {"web.1", "web.2"}
    assert rig.applied() == 2


def test_a_reload_while_draining_ends_the_drain(rig: Rig) -> None:
    rig.publish(_routes(1, ("aa", [("web.1", 5000), ("web.2", 5002)])))
    rig.proxy.server("app_aa", "web.1").sessions = 1
    rig.publish(_routes(2, ("aa", [("web.2", 5002)])))
    assert rig.applied() == 1
    # The new worker does not have web.1 at all; the old one finishes its requests.
    assert rig.publish(_routes(3, ("aa", [("web.2", 5002)]), ("bb", 5001))) is True
    assert rig.svc.retiring() == []
    assert rig.applied() == 3


def test_a_server_back_while_it_is_being_removed_reloads(rig: Rig) -> None:
    rig.publish(_routes(1, ("aa", [("web.1", 5000), ("web.2", 5002)])))
    rig.proxy.server("app_aa", "web.1").sessions = 1
    rig.publish(_routes(2, ("aa", [("web.2", 5002)])))
    assert rig.publish(_routes(3, ("aa", [("web.1", 5000), ("web.2", 5002)]))) is True
    assert rig.logged[-1] == "reloaded: server web.1 of app aa is back while being removed"
    assert rig.proxy.ready("app_aa") == {"web.1", "web.2"}


def test_a_restarted_router_reloads_once_to_learn_what_is_served(rig: Rig) -> None:
    rig.publish(_routes(1, ("aa", [("web.1", 5000), ("web.2", 5002)])))
    rig.proxy.server("app_aa", "web.1").sessions = 1
    rig.publish(_routes(2, ("aa", [("web.2", 5002)])))
    # kill -9 of the router: a new one knows nothing of the drain under way.
    rig.svc = rig.new_service()
    assert rig.svc.tick() is True
    assert rig.logged[-1] == "reloaded: syncing with the running haproxy"
    assert rig.proxy.ready("app_aa") == {"web.2"}
    assert rig.applied() == 2
    assert rig.svc.tick() is False


@pytest.mark.integration
@routerkit.requires_haproxy
def test_router_loop_with_real_haproxy(
    haproxy: haproxy.HAProxy,
    settings: model.RouterSettings,
    backends: Callable[[str], routerkit.Backend],
) -> None:
    a1 = backends("a1")
    routes = settings.run_dir / "routes.json"
    applied = settings.run_dir / "applied.json"
    logged: list[str] = []
    svc = service.RouterService(routes, settings, haproxy, log=logged.append)
    stop = threading.Event()
    loop = threading.Thread(target=svc.run, args=(stop,), kwargs={"interval": 0.05})
    loop.start()
    try:
        routerkit.wait_until(applied.exists, what="start")
        assert routerkit.get(settings.http_port, "aa.paas.localhost").status == 404

        routes.write_text(_routes(5, ("aa", a1.port)))
        routerkit.wait_until(
            lambda: json.loads(applied.read_text())["generation"] == 5, what="generation 5"
        )
        reply = routerkit.get(settings.http_port, "aa.paas.localhost")
        assert reply.status == 200 and reply.json()["server"] == "a1"

        master = haproxy.master_pid()
        routes.write_text("garbage")
        routerkit.wait_until(
            lambda: any("keeping the current routes" in line for line in logged),
            what="the bad routes to be logged",
        )
        assert routerkit.get(settings.http_port, "aa.paas.localhost").status == 200
        assert haproxy.master_pid() == master
    finally:
        stop.set()
        loop.join(timeout=15)
    assert not loop.is_alive()
    # The loop leaves HAProxy serving; a new router adopts it, with one reload to learn
    # what the worker serves, and none after that.
    fresh = service.RouterService(routes, settings, haproxy, log=logged.append)
    routes.write_text(_routes(5, ("aa", a1.port)))
    assert fresh.tick() is True
    assert haproxy.master_pid() == master
    workers = haproxy.status().workers
    assert fresh.tick() is False
    assert haproxy.status().workers == workers
    assert routerkit.get(settings.http_port, "aa.paas.localhost").json()["server"] == "a1"


@pytest.mark.parametrize("damage", ["directory", "not utf-8"])
def test_an_unreadable_route_table_keeps_the_current_routes(
    haproxy: haproxy.HAProxy,
    settings: model.RouterSettings,
    backends: Callable[[str], routerkit.Backend],
    damage: str,
) -> None:
    a1 = backends("a1")
    routes = settings.run_dir / "routes.json"
    logged: list[str] = []
    svc = service.RouterService(routes, settings, haproxy, log=logged.append)
    routes.write_text(_routes(1, ("aa", a1.port)))
    svc.tick()
    routes.unlink()
    if damage == "directory":
        routes.mkdir()
    else:
        routes.write_bytes(b'{"generation": 2, "apps": [\xff]}')
    svc.tick()  # raised before: an OSError or UnicodeDecodeError ended `paas router`
    assert any("keeping the current routes" in line for line in logged)
    assert routerkit.get(settings.http_port, "aa.paas.localhost").status == 200
