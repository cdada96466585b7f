"""A real HAProxy driven through paas_router: routing, headers, reloads, adoption, stop."""

import itertools
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import routerkit

from paas_router import haproxy, model, render
from paas_router.errors import RouterError

pytestmark = [pytest.mark.integration, routerkit.requires_haproxy]

StartBackend = Callable[[str], routerkit.Backend]


def _servers(*backends: routerkit.Backend) -> tuple[model.Server, ...]:
    return tuple(model.Server(f"web.{b.server_id}", "127.0.0.1", b.port) for b in backends)


def _apply(proxy: haproxy.HAProxy, settings: model.RouterSettings, *apps: model.AppRoute) -> None:
    table = model.RouteTable(1, apps)
    proxy.apply(render.render(table, settings), render.render_hosts_map(table))


def _driver(run_dir: Path) -> haproxy.HAProxy:
    return haproxy.HAProxy(run_dir, binary=routerkit.HAPROXY_BINARY)


def _server_id(settings: model.RouterSettings, host: str) -> str:
    reply = routerkit.get(settings.http_port, host)
    assert reply.status == 200, reply.body
    return str(reply.json()["server"])


def test_routes_by_host_round_robin_404_and_503(
    haproxy: haproxy.HAProxy, settings: model.RouterSettings, backends: StartBackend
) -> None:
    a1, a2, b1 = backends("a1"), backends("a2"), backends("b1")
    _apply(
        haproxy,
        settings,
        model.AppRoute("aa", ("a.paas.localhost",), _servers(a1, a2)),
        model.AppRoute("bb", ("b.paas.localhost",), _servers(b1)),
        model.AppRoute("idle", ("idle.paas.localhost",), ()),
    )
    assert haproxy.running()

    seen = [_server_id(settings, "a.paas.localhost") for _ in range(6)]
    assert sorted(seen) == ["a1", "a1", "a1", "a2", "a2", "a2"]
    assert all(x != y for x, y in itertools.pairwise(seen)), seen

    assert _server_id(settings, f"b.paas.localhost:{settings.http_port}") == "b1"
    assert _server_id(settings, "B.Paas.Localhost") == "b1"

    unknown = routerkit.get(settings.http_port, "nobody.paas.localhost")
    assert unknown.status == 404
    assert b"nobody.paas.localhost" in unknown.body

    idle = routerkit.get(settings.http_port, "idle.paas.localhost")
    assert idle.status == 503
    assert b"No web dyno of app idle is up and answering right now: scale" in idle.body


def test_forwarded_headers(
    haproxy: haproxy.HAProxy, settings: model.RouterSettings, backends: StartBackend
) -> None:
    a1 = backends("a1")
    _apply(haproxy, settings, model.AppRoute("aa", ("a.paas.localhost",), _servers(a1)))

    client_id = "0b2a6a4e-5c1f-4f5e-9a43-6f1d2c3b4a59"
    kept = routerkit.get(
        settings.http_port, "a.paas.localhost", headers={"X-Request-Id": client_id}
    )
    headers = kept.json()["headers"]
    assert isinstance(headers, dict)
    assert headers["x-request-id"] == client_id
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-port"] == str(settings.http_port)
    assert headers["via"] == "1.1 paas-router"
    assert re.fullmatch(r"t=\d{13}", headers["x-request-start"]), headers["x-request-start"]

    for sent in [None, "too-short", "x" * 201, "has spaces in it, twenty+ chars"]:
        extra = {} if sent is None else {"X-Request-Id": sent}
        reply = routerkit.get(settings.http_port, "a.paas.localhost", headers=extra)
        fresh = reply.json()["headers"]
        assert isinstance(fresh, dict)
        assert re.fullmatch(r"[0-9a-f-]{36}", fresh["x-request-id"]), (sent, fresh)


def test_reload_through_master_socket_adds_a_server(
    haproxy: haproxy.HAProxy, settings: model.RouterSettings, backends: StartBackend
) -> None:
    a1, a2 = backends("a1"), backends("a2")
    _apply(haproxy, settings, model.AppRoute("aa", ("a.paas.localhost",), _servers(a1)))
    master = haproxy.master_pid()
    before = haproxy.status()
    assert master is not None and before.master_pid == master and len(before.workers) == 1

    _apply(haproxy, settings, model.AppRoute("aa", ("a.paas.localhost",), _servers(a1, a2)))
    after = haproxy.status()
    assert haproxy.master_pid() == master
    assert after.reloads == before.reloads + 1
    assert set(after.workers).isdisjoint(before.workers)
    assert {_server_id(settings, "a.paas.localhost") for _ in range(4)} == {"a1", "a2"}
    assert "app_aa" in haproxy.runtime_command("show backend")


def test_rejected_config_keeps_the_old_one_serving(
    haproxy: haproxy.HAProxy, settings: model.RouterSettings, backends: StartBackend
) -> None:
    a1 = backends("a1")
    _apply(haproxy, settings, model.AppRoute("aa", ("a.paas.localhost",), _servers(a1)))
    installed = haproxy.installed()
    workers = haproxy.status().workers

    with pytest.raises(RouterError, match="haproxy rejected the config"):
        haproxy.apply("global\n    bogus-directive\n", "")
    assert haproxy.installed() == installed
    assert haproxy.status().workers == workers
    assert _server_id(settings, "a.paas.localhost") == "a1"


def test_no_failures_while_reloading(
    haproxy: haproxy.HAProxy, settings: model.RouterSettings, backends: StartBackend
) -> None:
    pool = [backends(f"a{i}") for i in range(6)]
    _apply(haproxy, settings, model.AppRoute("aa", ("a.paas.localhost",), _servers(pool[0])))

    with routerkit.Load(settings.http_port, "a.paas.localhost") as load:
        master = haproxy.master_pid()
        for n in range(2, 7):
            _apply(
                haproxy,
                settings,
                model.AppRoute("aa", ("a.paas.localhost",), _servers(*pool[:n])),
            )
        load.wait_for(20)
    assert haproxy.master_pid() == master
    assert load.failures == []
    assert sum(load.counts.values()) >= 300, load.counts


def test_second_driver_adopts_the_running_master(
    haproxy: haproxy.HAProxy, settings: model.RouterSettings, backends: StartBackend, run_dir: Path
) -> None:
    a1, a2 = backends("a1"), backends("a2")
    _apply(haproxy, settings, model.AppRoute("aa", ("a.paas.localhost",), _servers(a1)))
    master = haproxy.master_pid()

    other = _driver(run_dir)
    assert other.master_pid() == master
    _apply(other, settings, model.AppRoute("aa", ("a.paas.localhost",), _servers(a1, a2)))
    assert other.master_pid() == master == haproxy.master_pid()
    assert len(other.status().workers) == 1


def test_a_stale_pidfile_is_not_adopted(run_dir: Path) -> None:
    # Our own pid is alive but is not haproxy: a recycled pid must not count.
    (run_dir / "haproxy.pid").write_text(f"{os.getpid()}\n")
    proxy = _driver(run_dir)
    assert proxy.master_pid() is None
    assert not proxy.running()
    proxy.stop()
    assert not (run_dir / "haproxy.pid").exists()


def test_stop_leaves_no_process(
    haproxy: haproxy.HAProxy, settings: model.RouterSettings, backends: StartBackend
) -> None:
    a1 = backends("a1")
    _apply(haproxy, settings, model.AppRoute("aa", ("a.paas.localhost",), _servers(a1)))
    _apply(haproxy, settings, model.AppRoute("aa", ("a.paas.localhost", "x.example"), _servers(a1)))
    status = haproxy.status()
    pids = {status.master_pid, *status.workers, *status.old_workers}

    haproxy.stop(timeout=5)
    assert not haproxy.running()
    assert [p for p in pids if routerkit.process_alive(p)] == []
    with pytest.raises(OSError):
        routerkit.get(settings.http_port, "a.paas.localhost")


def test_run_dir_too_long_for_a_socket_is_refused() -> None:
    with pytest.raises(RouterError, match="too long for a unix socket"):
        haproxy.HAProxy(Path("/tmp/" + "d" * 100))


def test_a_port_in_use_fails_start_and_reload_cleanly(
    haproxy: haproxy.HAProxy, settings: model.RouterSettings, backends: StartBackend
) -> None:
    a1 = backends("a1")
    busy = backends("busy")  # its port is taken by the echo server
    taken = model.RouterSettings(
        http_port=busy.port, bind_address="127.0.0.1", run_dir=settings.run_dir
    )
    route = model.AppRoute("aa", ("a.paas.localhost",), _servers(a1))
    with pytest.raises(RouterError, match="haproxy failed to start"):
        _apply(haproxy, taken, route)
    assert not haproxy.running()

    _apply(haproxy, settings, route)
    installed = haproxy.installed()
    workers = haproxy.status().workers
    with pytest.raises(RouterError, match="could not load the new config on reload"):
        _apply(haproxy, taken, route)
    # The good config is back on disk and the old worker still serves.
    assert haproxy.installed() == installed
    assert haproxy.status().workers == workers
    assert _server_id(settings, "a.paas.localhost") == "a1"
