"""The router against hostile or broken input, with a real HAProxy: one bad app is left out
and the rest served; values are escaped for HAProxy whatever they hold; clients cannot
forge X-Forwarded-For or take every connection; the worker drops root into a chroot."""

import dataclasses
import http.client
import json
import os
import pwd
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import routerkit

from paas.isolation import users
from paas_router import errors, haproxy, layout, model, names, render, service


def _app(name: str, port: int | None, hostnames: list[str] | None = None) -> dict[str, object]:
    return {
        "app": name,
        "hostnames": hostnames if hostnames is not None else [f"{name}.paas.localhost"],
        "servers": [] if port is None else [{"name": "web.1", "host": "127.0.0.1", "port": port}],
    }


@contextmanager
def running_router(
    settings: model.RouterSettings, proxy: haproxy.HAProxy, logged: list[str]
) -> Iterator[Callable[[int, list[dict[str, object]]], dict[str, object]]]:
    """A router loop on ``settings``; yields publish(generation, apps) -> applied.json."""
    routes = settings.run_dir / "routes.json"
    applied = settings.run_dir / "applied.json"
    svc = service.RouterService(routes, settings, proxy, log=logged.append)
    stop = threading.Event()
    loop = threading.Thread(target=svc.run, args=(stop,), kwargs={"interval": 0.05})

    def publish(generation: int, apps: list[dict[str, object]]) -> dict[str, object]:
        routes.write_text(json.dumps({"generation": generation, "apps": apps}))

        def done() -> bool:
            return applied.exists() and json.loads(applied.read_text())["generation"] == generation

        routerkit.wait_until(done, timeout=10, what=f"generation {generation} applied")
        document: dict[str, object] = json.loads(applied.read_text())
        return document

    loop.start()
    try:
        yield publish
    finally:
        stop.set()
        loop.join(timeout=10)


@routerkit.requires_haproxy
def test_one_bad_app_is_left_out_and_every_other_app_is_served(
    haproxy: haproxy.HAProxy,
    settings: model.RouterSettings,
    backends: Callable[[str], routerkit.Backend],
) -> None:
    good, other, late = backends("good"), backends("other"), backends("late")
    logged: list[str] = []
    with running_router(settings, haproxy, logged) as publish:
        applied = publish(
            1,
            [
                _app("evil\n", good.port),  # the trailing newline the old API let in
                _app("good", good.port),
                _app("thief", other.port, ["good.paas.localhost"]),  # another app's hostname
                _app("other", other.port, ["other.paas.localhost", "a.b.-c"]),
                _app("other2", other.port),
            ],
        )
        assert isinstance(applied["rejected"], list)
        rejected = {r["app"]: r["reason"] for r in applied["rejected"]}
        assert set(rejected) == {"evil\n", "thief", "other"}
        assert "claimed by both good and thief" in rejected["thief"]
        assert "a.b.-c" in rejected["other"]
        assert routerkit.get(settings.http_port, "good.paas.localhost").json()["server"] == "good"
        assert routerkit.get(settings.http_port, "other2.paas.localhost").status == 200
        # The next deploy of another app is routed, while the bad ones are still there.
        publish(2, [_app("evil\n", good.port), _app("good", good.port), _app("late", late.port)])
        assert routerkit.get(settings.http_port, "late.paas.localhost").json()["server"] == "late"
    left_out = [line for line in logged if line.startswith("left out")]
    assert len(left_out) == 3 and all("\n" not in line for line in left_out)


def _forged_table(app: str, server_name: str) -> model.RouteTable:
    """A table holding values the model would refuse, built past its checks: what the
    renderer must still write safely."""
    route = model.AppRoute("aa", ("aa.paas.localhost",), (model.Server("web.1", "127.0.0.1", 1),))
    server = route.servers[0]
    object.__setattr__(server, "name", server_name)
    object.__setattr__(route, "app", app)
    return model.RouteTable(generation=1, apps=(route,))


@pytest.mark.parametrize(
    "evil", ["a\n    bind *:1\n#", 'x" string "y', "a b", "a#b", "$HOME", "é\x00\t\\"]
)
def test_every_value_is_escaped_so_the_config_keeps_its_structure(
    settings: model.RouterSettings, evil: str
) -> None:
    plain = render.render(_forged_table("aa", "web.1"), settings)
    forged = render.render(_forged_table(evil, evil), settings)
    assert len(forged.splitlines()) == len(plain.splitlines())
    assert [line.split()[0] for line in forged.splitlines() if line.strip()] == [
        line.split()[0] for line in plain.splitlines() if line.strip()
    ]


@routerkit.requires_haproxy
@pytest.mark.parametrize("evil", ["x\" \\ #$HOME'\n\té", "a b", "#", "\\x41"])
def test_an_escaped_value_reads_back_as_itself_in_haproxy(
    settings: model.RouterSettings, haproxy: haproxy.HAProxy, evil: str
) -> None:
    # What HAProxy hands back for an escaped value must be exactly the value's bytes, in a
    # quoted string and as a bare word alike.
    port = settings.http_port
    config = (
        f"global\n    stats socket {settings.run_dir / layout.ADMIN_SOCKET_FILE} mode 600\n"
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n"
        "    timeout server 5s\n"
        f"frontend http\n    bind 127.0.0.1:{port}\n"
        "    http-request return status 200 content-type text/plain"
        f' hdr x-word {render.config_word(evil)} string "[{render.config_word(evil)}]"\n'
    )
    haproxy.apply(config, "")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        body = response.read()
        word = response.getheader("x-word")
    finally:
        conn.close()
    assert body == f"[{evil}]".encode()
    if "\n" not in evil:  # a header cannot carry a newline, whatever HAProxy is told
        assert word is not None and word.encode("latin-1") == evil.encode()


def test_the_host_map_refuses_what_it_cannot_escape(settings: model.RouterSettings) -> None:
    with pytest.raises(errors.RouterError, match="host map"):
        render.render_hosts_map(_forged_table("evil\n", "web.1"))


def test_config_word_round_trip_characters() -> None:
    assert render.config_word("web.1-ab12") == "web.1-ab12"
    assert render.config_word("a b#c") == "a\\ b\\#c"
    assert render.config_word("\n") == "\\x0a"
    assert render.config_word(render.SERVER_OPTIONS) == render.SERVER_OPTIONS


@routerkit.requires_haproxy
def test_a_client_cannot_forge_forwarded_headers(
    haproxy: haproxy.HAProxy,
    settings: model.RouterSettings,
    backends: Callable[[str], routerkit.Backend],
) -> None:
    backend = backends("b")
    with running_router(settings, haproxy, []) as publish:
        publish(1, [_app("aa", backend.port)])
        forged = {
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Port": "443",
        }
        seen = routerkit.get(settings.http_port, "aa.paas.localhost", headers=forged).json()
    headers = seen["headers"]
    assert isinstance(headers, dict)
    assert isinstance(seen["header_values"], list)
    forwarded_for = [v for k, v in seen["header_values"] if k == "x-forwarded-for"]
    assert forwarded_for == ["127.0.0.1"]
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-port"] == str(settings.http_port)
    assert len(str(headers["x-request-id"])) >= 20


def _connect_from(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((address, 0))
        sock.settimeout(5)
        sock.connect(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def _tracked_connections(proxy: haproxy.HAProxy, address: str) -> int:
    """conn_cur of ``address`` in the frontend's stick table (0 when not in it)."""
    for line in proxy.runtime_command("show table http").splitlines():
        if f" key=::ffff:{address} " in line:
            return int(line.rpartition("conn_cur=")[2].split()[0])
    return 0


def _answered(address: str, port: int) -> bool:
    """Whether a GET from ``address`` on a new connection gets an HTTP answer (False: the
    connection was refused, closed or reset)."""
    try:
        with _connect_from(address, port) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: aa.paas.localhost\r\nConnection: close\r\n\r\n")
            return sock.recv(12).startswith(b"HTTP/")
    except OSError:
        return False


@routerkit.requires_haproxy
def test_one_client_address_cannot_hold_more_than_its_connection_limit(
    haproxy: haproxy.HAProxy,
    settings: model.RouterSettings,
    backends: Callable[[str], routerkit.Backend],
) -> None:
    backend = backends("b")
    limited = dataclasses.replace(settings, client_maxconn=5)
    with running_router(limited, haproxy, []) as publish:
        publish(1, [_app("aa", backend.port)])
        held = [_connect_from("127.0.0.2", limited.http_port) for _ in range(5)]
        try:
            routerkit.wait_until(
                lambda: _tracked_connections(haproxy, "127.0.0.2") == 5,
                what="the held connections to be tracked",
            )
            assert not _answered("127.0.0.2", limited.http_port)
            # Another client address is not affected by that client's connections.
            assert _answered("127.0.0.1", limited.http_port)
            held.pop().close()  # a limit, not a ban: below it, the client is served again
            routerkit.wait_until(
                lambda: _answered("127.0.0.2", limited.http_port),
                what="a connection below the limit to be served",
            )
        finally:
            for sock in held:
                sock.close()


@routerkit.requires_haproxy
@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_the_worker_drops_to_its_own_user_in_a_chroot(
    haproxy: haproxy.HAProxy,
    settings: model.RouterSettings,
    backends: Callable[[str], routerkit.Backend],
) -> None:
    users.ensure_user(users.ROUTER_USER)
    dropped = dataclasses.replace(settings, worker_user=users.ROUTER_USER)
    a1, a2, b1 = backends("a1"), backends("a2"), backends("b1")
    with running_router(dropped, haproxy, []) as publish:
        publish(1, [_app("aa", a1.port)])
        # A runtime change (a server added through the admin socket) and a reload (a new
        # app: the master re-reads the config and the map) both still work.
        two = [
            {"name": n, "host": "127.0.0.1", "port": p}
            for n, p in (("web.1", a1.port), ("web.2", a2.port))
        ]
        publish(2, [{**_app("aa", None), "servers": two}])
        publish(3, [{**_app("aa", None), "servers": two}, _app("bb", b1.port)])
        assert routerkit.get(dropped.http_port, "bb.paas.localhost").json()["server"] == "b1"
        seen = {
            routerkit.get(dropped.http_port, "aa.paas.localhost").json()["server"] for _ in range(4)
        }
        assert seen == {"a1", "a2"}
        (worker,) = haproxy.status().workers
        master = haproxy.master_pid()
    status = Path(f"/proc/{worker}/status").read_text()
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    assert int(uid) != 0 and int(uid) == pwd.getpwnam(users.ROUTER_USER).pw_uid
    assert os.readlink(f"/proc/{worker}/root") == str(dropped.run_dir / layout.CHROOT_DIR)
    assert master is not None and os.readlink(f"/proc/{master}/root") == "/"


def test_the_router_and_the_api_share_the_name_rules() -> None:
    from paas.domain import validation

    assert vars(validation)["names"] is names
    assert vars(model)["names"] is names
