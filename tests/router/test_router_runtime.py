"""Server and hostname changes through the runtime API of a real HAProxy, without reloads.

Each test drives a RouterService by calling tick() itself, waits on applied.json like the
control plane does, and checks what HAProxy serves, what it reports (show proc, show
servers state, show map) and what is on disk.
"""

import itertools
import json
import threading
import time
from collections.abc import Callable

import pytest
import routerkit

from paas_router import haproxy, model, runtime, service

pytestmark = [pytest.mark.integration, routerkit.requires_haproxy]

StartBackend = Callable[[str], routerkit.Backend]


def _server(b: routerkit.Backend) -> model.Server:
    return model.Server(f"web.{b.server_id}", "127.0.0.1", b.port)


def _app(name: str, *servers: routerkit.Backend, hosts: tuple[str, ...] = ()) -> model.AppRoute:
    return model.AppRoute(name, hosts or (f"{name}.paas.localhost",), tuple(map(_server, servers)))


class Router:
    """A RouterService on the real HAProxy; the test ticks it, through ``converge``."""

    def __init__(
        self, proxy: haproxy.HAProxy, settings: model.RouterSettings, drain_limit_s: float = 10.0
    ) -> None:
        self.proxy = proxy
        self.settings = settings
        self.routes = settings.run_dir / "routes.json"
        self.logged: list[str] = []
        self.generation = 0
        self.drain_limit_s = drain_limit_s
        self.svc = self.restart()

    def restart(self) -> service.RouterService:
        """A new router process: it knows nothing of the previous one's state."""
        self.svc = service.RouterService(
            self.routes,
            self.settings,
            self.proxy,
            log=self.logged.append,
            drain_limit_s=self.drain_limit_s,
        )
        return self.svc

    def publish(self, *apps: model.AppRoute) -> int:
        self.generation += 1
        table = model.RouteTable(self.generation, apps)
        self.routes.write_text(json.dumps(model.route_table_to_json(table)))
        return self.generation

    def applied(self) -> int:
        path = self.settings.run_dir / "applied.json"
        if not path.exists():
            return -1
        value: int = json.loads(path.read_text())["generation"]
        return value

    def converge(self, timeout: float = 10.0) -> None:
        """Tick until applied.json names the last generation published."""

        def done() -> bool:
            self.svc.tick()
            return self.applied() == self.generation

        routerkit.wait_until(done, timeout, what=f"generation {self.generation} applied")

    def publish_and_converge(self, *apps: model.AppRoute) -> None:
        self.publish(*apps)
        self.converge()

    def admin_states(self, backend: str) -> dict[str, int]:
        """Server name → srv_admin_state (0 ready, 1 maint, 8 drain) from show servers state."""
        text = self.proxy.runtime_command(f"show servers state {backend}")
        states: dict[str, int] = {}
        for line in text.splitlines()[2:]:
            fields = line.split()
            if len(fields) > 6:
                states[fields[3]] = int(fields[6])
        return states

    def sessions(self, backend: str, name: str) -> int | None:
        text = self.proxy.runtime_command(runtime.SHOW_SERVER_STATS)
        return runtime.parse_server_sessions(text).get((backend, name))

    def config(self) -> str:
        return (self.settings.run_dir / "haproxy.cfg").read_text()

    def hosts_map(self) -> str:
        return (self.settings.run_dir / "hosts.map").read_text()


@pytest.fixture
def router(haproxy: haproxy.HAProxy, settings: model.RouterSettings) -> Router:
    return Router(haproxy, settings)


def _ids(settings: model.RouterSettings, host: str, n: int) -> set[str]:
    seen = set()
    for _ in range(n):
        reply = routerkit.get(settings.http_port, host)
        assert reply.status == 200, reply.body
        seen.add(str(reply.json()["server"]))
    return seen


class SlowRequest:
    """A GET that the backend answers after ``seconds``, sent in a thread of its own."""

    def __init__(self, port: int, host: str, seconds: float) -> None:
        self.reply: routerkit.Reply | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(port, host, seconds))
        self.started = time.monotonic()
        self._thread.start()

    def _run(self, port: int, host: str, seconds: float) -> None:
        try:
            self.reply = routerkit.get(port, host, f"/slow/{seconds}")
        except BaseException as err:  # handed to the test thread
            self.error = err

    def pending(self) -> bool:
        return self._thread.is_alive()

    def result(self) -> routerkit.Reply:
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "the slow request never ended"
        if self.error is not None:
            raise self.error
        assert self.reply is not None
        return self.reply


def test_servers_come_and_go_at_runtime_without_a_reload(
    router: Router, settings: model.RouterSettings, backends: StartBackend
) -> None:
    a1, a2 = backends("a1"), backends("a2")
    router.publish_and_converge(_app("aa", a1))
    before = router.proxy.status()

    router.publish_and_converge(_app("aa", a1, a2))
    assert _ids(settings, "aa.paas.localhost", 4) == {"a1", "a2"}
    assert f"server web.a2 127.0.0.1:{a2.port} check inter 500 fall 2 rise 1" in router.config()
    assert "added web.a2 to app aa" in router.logged

    router.publish_and_converge(_app("aa", a2))
    assert _ids(settings, "aa.paas.localhost", 4) == {"a2"}
    assert router.admin_states("app_aa") == {"web.a2": 0}
    assert "web.a1" not in router.config()
    assert any(line.startswith("drained and removed web.a1 from app aa") for line in router.logged)

    # Down to no server and back: the 503 comes from the same backend, no reload either way.
    router.publish_and_converge(_app("aa"))
    idle = routerkit.get(settings.http_port, "aa.paas.localhost")
    assert idle.status == 503
    assert b"No web dyno of app aa is up and answering right now" in idle.body
    router.publish_and_converge(_app("aa", a1))
    assert _ids(settings, "aa.paas.localhost", 2) == {"a1"}

    after = router.proxy.status()
    assert (after.reloads, after.workers) == (before.reloads, before.workers)
    assert not any(line.startswith("reloaded") for line in router.logged)


def test_hostnames_of_an_existing_app_change_without_a_reload(
    router: Router, settings: model.RouterSettings, backends: StartBackend
) -> None:
    a1, b1 = backends("a1"), backends("b1")
    router.publish_and_converge(_app("aa", a1), _app("bb", b1))
    before = router.proxy.status()

    router.publish_and_converge(
        _app("aa", a1, hosts=("aa.paas.localhost", "www.example.com")), _app("bb", b1)
    )
    assert _ids(settings, "www.example.com", 2) == {"a1"}
    assert "www.example.com app_aa" in router.hosts_map()

    router.publish_and_converge(
        _app("aa", a1), _app("bb", b1, hosts=("bb.paas.localhost", "www.example.com"))
    )
    assert _ids(settings, "WWW.example.com:80", 2) == {"b1"}
    assert "www.example.com app_bb" in router.proxy.runtime_command("show map hosts.map")

    router.publish_and_converge(_app("aa", a1), _app("bb", b1))
    assert routerkit.get(settings.http_port, "www.example.com").status == 404
    assert "www.example.com" not in router.hosts_map()

    after = router.proxy.status()
    assert (after.reloads, after.workers) == (before.reloads, before.workers)


def test_a_new_or_removed_app_reloads(
    router: Router, settings: model.RouterSettings, backends: StartBackend
) -> None:
    a1, b1 = backends("a1"), backends("b1")
    router.publish_and_converge(_app("aa", a1))
    before = router.proxy.status()

    router.publish_and_converge(_app("aa", a1), _app("bb", b1))
    assert router.proxy.status().reloads == before.reloads + 1
    assert router.logged[-1] == "reloaded: new app bb"
    assert _ids(settings, "bb.paas.localhost", 2) == {"b1"}

    router.publish_and_converge(_app("bb", b1))
    assert router.proxy.status().reloads == before.reloads + 2
    assert router.logged[-1] == "reloaded: removed app aa"
    assert routerkit.get(settings.http_port, "aa.paas.localhost").status == 404


def _slow_request_on_s1(
    router: Router, settings: model.RouterSettings, backends: StartBackend, seconds: float
) -> tuple[SlowRequest, routerkit.Backend, int]:
    """App aa served by backend s1 alone, with one request of `seconds` in flight on it.
    Returns that request, backend a1 (started, not routed yet) and HAProxy's reload count."""
    s1, a1 = backends("s1"), backends("a1")
    router.publish_and_converge(_app("aa", s1))
    reloads = router.proxy.status().reloads
    slow = SlowRequest(settings.http_port, "aa.paas.localhost", seconds)
    routerkit.wait_until(lambda: router.sessions("app_aa", "web.s1") == 1, what="slow request")
    return slow, a1, reloads


def test_a_removed_server_finishes_its_slow_request_first(
    router: Router, settings: model.RouterSettings, backends: StartBackend
) -> None:
    slow, a1, reloads = _slow_request_on_s1(router, settings, backends, 1.5)

    generation = router.publish(_app("aa", a1))
    router.svc.tick()
    # Draining: new requests go to a1, the slow one goes on, the generation is not served yet.
    assert router.admin_states("app_aa") == {"web.s1": 8, "web.a1": 0}
    assert _ids(settings, "aa.paas.localhost", 3) == {"a1"}
    # Not served while the slow request (1.5 s) runs; served once it has ended.
    while time.monotonic() < slow.started + 1.2:
        router.svc.tick()
        assert router.applied() == generation - 1
        time.sleep(0.02)  # the poll interval of this loop
    router.converge()
    assert time.monotonic() >= slow.started + 1.5

    reply = slow.result()
    assert reply.status == 200 and reply.json()["server"] == "s1"
    assert router.admin_states("app_aa") == {"web.a1": 0}
    assert router.proxy.status().reloads == reloads


def test_the_drain_limit_reports_the_generation_while_a_long_request_goes_on(
    haproxy: haproxy.HAProxy, settings: model.RouterSettings, backends: StartBackend
) -> None:
    router = Router(haproxy, settings, drain_limit_s=0.3)
    slow, a1, reloads = _slow_request_on_s1(router, settings, backends, 2.0)

    router.publish_and_converge(_app("aa", a1))
    # Reported after the limit, the request still running: s1 takes no new request (maint).
    assert slow.pending()
    assert router.admin_states("app_aa")["web.s1"] & 1
    assert "still had 1 requests after 0.3s of draining" in router.logged[-1]

    reply = slow.result()
    assert reply.status == 200 and reply.json()["server"] == "s1"  # maint cuts nothing
    routerkit.wait_until(
        lambda: router.svc.tick() is False and "web.s1" not in router.admin_states("app_aa"),
        what="s1 deleted once its request ended",
    )
    assert router.proxy.status().reloads == reloads


def test_no_failed_request_across_add_and_remove_cycles(
    router: Router, settings: model.RouterSettings, backends: StartBackend
) -> None:
    pool = [backends(f"b{i}") for i in range(6)]
    router.publish_and_converge(_app("aa", pool[0]))
    before = router.proxy.status()
    with routerkit.Load(settings.http_port, "aa.paas.localhost") as load:
        for old, new in itertools.pairwise(pool):
            router.publish_and_converge(_app("aa", old, new))
            load.wait_for(10)
            router.publish_and_converge(_app("aa", new))
            # As the control plane does: the old dyno stops once the router says so.
            old.stop()
            load.wait_for(10)
    after = router.proxy.status()
    assert load.failures == []
    assert sum(load.counts.values()) >= 200, load.counts
    assert (after.reloads, after.workers) == (before.reloads, before.workers)
    assert router.admin_states("app_aa") == {"web.b5": 0}


def test_a_router_killed_while_draining_converges_after_restart(
    router: Router, settings: model.RouterSettings, backends: StartBackend
) -> None:
    slow, a1, reloads = _slow_request_on_s1(router, settings, backends, 1.0)
    router.publish(_app("aa", a1))
    router.svc.tick()
    assert router.admin_states("app_aa")["web.s1"] == 8

    router.restart()  # kill -9: the drain under way is forgotten
    router.converge()
    assert router.logged[-1] == "reloaded: syncing with the running haproxy"
    assert router.proxy.status().reloads == reloads + 1
    assert router.admin_states("app_aa") == {"web.a1": 0}
    assert _ids(settings, "aa.paas.localhost", 2) == {"a1"}
    # The old worker finishes the request it holds.
    reply = slow.result()
    assert reply.status == 200 and reply.json()["server"] == "s1"


def test_a_failing_runtime_command_falls_back_to_one_reload(
    router: Router, settings: model.RouterSettings, backends: StartBackend
) -> None:
    a1, a2 = backends("a1"), backends("a2")
    router.publish_and_converge(_app("aa", a1))
    reloads = router.proxy.status().reloads
    # Someone got there first: "add server" now fails.
    answer = router.proxy.runtime_command(f"add server app_aa/web.a2 127.0.0.1:{a2.port}")
    assert answer.strip() == "New server registered."

    router.publish_and_converge(_app("aa", a1, a2))
    assert router.logged[-1].startswith("reloaded: runtime command 'add server app_aa/web.a2")
    assert "Already exists a server with the same name" in router.logged[-1]
    assert router.proxy.status().reloads == reloads + 1
    assert _ids(settings, "aa.paas.localhost", 4) == {"a1", "a2"}
