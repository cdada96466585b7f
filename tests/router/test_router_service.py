"""The router loop: a fake HAProxy for the decisions, a real one end to end."""

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import routerkit

from paas_router import haproxy, model, service
from paas_router.errors import RouterError


class FakeProxy:
    """Records applies; can be told to reject the next ones or to be 'not running'."""

    def __init__(self) -> None:
        self.applied: list[tuple[str, str]] = []
        self.files: tuple[str, str] | None = None
        self.alive = False
        self.reject: str | None = None

    def running(self) -> bool:
        return self.alive

    def installed(self) -> tuple[str, str] | None:
        return self.files

    def apply(self, text: str, hosts_map_text: str) -> None:
        if self.reject:
            raise RouterError(self.reject)
        self.applied.append((text, hosts_map_text))
        self.files = (text, hosts_map_text)
        self.alive = True


def _routes(generation: int, *apps: tuple[str, int]) -> dict[str, object]:
    return {
        "generation": generation,
        "apps": [
            {
                "app": name,
                "hostnames": [f"{name}.paas.localhost"],
                "servers": [{"name": "web.1", "host": "127.0.0.1", "port": port}],
            }
            for name, port in apps
        ],
    }


@pytest.fixture
def rig(
    settings: model.RouterSettings,
) -> tuple[service.RouterService, FakeProxy, Path, list[str]]:
    routes = settings.run_dir / "routes.json"
    proxy = FakeProxy()
    logged: list[str] = []
    return service.RouterService(routes, settings, proxy, log=logged.append), proxy, routes, logged


def _applied_generation(settings: model.RouterSettings) -> object:
    return json.loads((settings.run_dir / "applied.json").read_text())["generation"]


Rig = tuple[service.RouterService, FakeProxy, Path, list[str]]


def test_missing_routes_file_serves_the_empty_table(
    rig: Rig, settings: model.RouterSettings
) -> None:
    svc, proxy, _, logged = rig
    assert svc.tick() is True
    assert "backend app_" not in proxy.applied[0][0]
    assert _applied_generation(settings) == 0
    assert logged == []


def test_applies_only_when_the_rendered_text_changes(
    rig: Rig, settings: model.RouterSettings
) -> None:
    svc, proxy, routes, _ = rig
    routes.write_text(json.dumps(_routes(1, ("aa", 5000))))
    assert svc.tick() is True
    assert svc.tick() is False
    # A new generation with the same routes: no reload, but applied.json moves on.
    routes.write_text(json.dumps(_routes(2, ("aa", 5000))))
    assert svc.tick() is False
    assert _applied_generation(settings) == 2
    routes.write_text(json.dumps(_routes(3, ("aa", 5001))))
    assert svc.tick() is True
    assert len(proxy.applied) == 2
    assert _applied_generation(settings) == 3


def test_reapplies_when_haproxy_is_not_running(rig: Rig) -> None:
    svc, proxy, routes, _ = rig
    routes.write_text(json.dumps(_routes(1, ("aa", 5000))))
    svc.tick()
    proxy.alive = False
    assert svc.tick() is True
    assert len(proxy.applied) == 2


def test_bad_routes_keep_the_old_config_and_log_once(
    rig: Rig, settings: model.RouterSettings
) -> None:
    svc, proxy, routes, logged = rig
    routes.write_text(json.dumps(_routes(1, ("aa", 5000))))
    svc.tick()
    routes.write_text(json.dumps(_routes(2, ("aa", 0))))
    assert svc.tick() is False
    assert svc.tick() is False
    assert len(logged) == 1 and "1..65535" in logged[0] and "\n" not in logged[0]
    routes.write_text("{not json")
    svc.tick()
    assert len(logged) == 2 and "not valid JSON" in logged[1]
    assert len(proxy.applied) == 1
    assert _applied_generation(settings) == 1


def test_a_rejected_config_is_logged_and_not_recorded(
    rig: Rig, settings: model.RouterSettings
) -> None:
    svc, proxy, routes, logged = rig
    routes.write_text(json.dumps(_routes(1, ("aa", 5000))))
    svc.tick()
    proxy.reject = "haproxy rejected the config: [ALERT] something"
    routes.write_text(json.dumps(_routes(2, ("aa", 5001))))
    assert svc.tick() is False
    assert logged == ["keeping the current config: haproxy rejected the config: [ALERT] something"]
    assert _applied_generation(settings) == 1


@pytest.mark.integration
@routerkit.requires_haproxy
def test_router_loop_with_real_haproxy(
    haproxy: haproxy.HAProxy,
    settings: model.RouterSettings,
    backends: Callable[[str], routerkit.Backend],
) -> None:
    a1 = backends("a1")
    routes = settings.run_dir / "routes.json"
    logged: list[str] = []
    svc = service.RouterService(routes, settings, haproxy, log=logged.append)
    stop = threading.Event()
    loop = threading.Thread(target=svc.run, args=(stop,), kwargs={"interval": 0.05})
    loop.start()
    try:
        routerkit.wait_until(lambda: (settings.run_dir / "applied.json").exists(), what="start")
        assert routerkit.get(settings.http_port, "aa.paas.localhost").status == 404

        routes.write_text(json.dumps(_routes(5, ("aa", a1.port))))
        routerkit.wait_until(lambda: _applied_generation(settings) == 5, what="generation 5")
        reply = routerkit.get(settings.http_port, "aa.paas.localhost")
        assert reply.status == 200 and reply.json()["server"] == "a1"

        master = haproxy.master_pid()
        routes.write_text("garbage")
        routerkit.wait_until(lambda: len(logged) == 1, what="the bad routes to be logged")
        assert routerkit.get(settings.http_port, "aa.paas.localhost").status == 200
        assert haproxy.master_pid() == master
    finally:
        stop.set()
        loop.join(timeout=15)
    assert not loop.is_alive()
    # The loop leaves HAProxy serving; a new router adopts it without reloading.
    fresh = service.RouterService(routes, settings, haproxy, log=logged.append)
    routes.write_text(json.dumps(_routes(5, ("aa", a1.port))))
    workers = haproxy.status().workers
    assert fresh.tick() is False
    assert haproxy.status().workers == workers
