"""Fuzzing the API's inputs: every input is accepted and routable, or refused with a 4xx
JSON error; and afterwards the router still applies a deploy of another app at once.

Hypothesis drives the real Flask application (on a real store) with app names, custom
domains, config keys and values, formation updates, and Procfile texts (parsed by
procfile.parse, as a push does). What the API accepted is then published by the agent's
own route-table code and must pass the router's model checks, every app of it; a real
router with a real HAProxy then serves that table, and a new app's deploy is routed
within its usual time. Bounded: a fixed number of examples, no deadline per example
(the whole test takes seconds).
"""

from __future__ import annotations

import http.client
import http.server
import json
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from paas.api import create_app
from paas.domain import procfile, validation
from paas.domain.dyno import DynoSpec, DynoStatus
from paas.domain.errors import InvalidParams
from paas.domain.settings import Settings
from paas.reconcile import routes
from paas.release import releases
from paas.state.logs import LogStore
from paas.state.store import Store
from paas_router import haproxy, model, service

TOKEN = "fuzz-token"
HAPROXY = Path("/usr/sbin/haproxy")
EXAMPLES = 500  # each runs 1-4 operations: over 1,000 inputs in all

# Near-misses of every rule, so the fuzzer spends its time at the edges.
TRICKY = [
    "evil\n", "a\r\n", "ab-", "a--b", "-ab", "Ab", "a" * 30, "a" * 31, "a.b.-c", "a..b",
    "x.paas.localhost", "paas.localhost", "PAAS.LOCALHOST", "\u212a.com", "a\x00b", "é.com",
    "a b.com", "a#b.com", "a;b", "web\n", "../x", "FOO\n", "PORT", "PAAS_X", "__X", "",
    "1abc", "www.example.com", "0.0.0.0", "a" * 63 + ".com", "a" * 64 + ".com",
]  # fmt: skip
names = st.one_of(
    st.sampled_from(TRICKY),
    st.from_regex(r"[a-z][a-z0-9-]{0,31}[\n]?", fullmatch=True),
    st.text(max_size=40),
)
hostnames = st.one_of(
    st.sampled_from(TRICKY),
    st.from_regex(r"([a-zA-Z0-9-]{1,12}\.){1,3}[a-z0-9-]{1,8}[\n ]?", fullmatch=True),
    st.builds(lambda n: f"{n}.paas.localhost", st.from_regex(r"[a-z]{2,8}", fullmatch=True)),
    st.text(max_size=40),
)
keys = st.one_of(
    st.sampled_from(TRICKY), st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}\n?", fullmatch=True)
)
values = st.one_of(st.text(max_size=50), st.none(), st.integers(), st.just("a\x00b"))
quantities = st.one_of(
    st.integers(-3, 3), st.just(101), st.booleans(), st.text(max_size=3), st.floats(), st.none()
)
types = st.one_of(st.sampled_from(["web", "worker", "release", "clock", *TRICKY]), st.text())
procfiles = st.lists(
    st.tuples(st.one_of(types, st.from_regex(r"[A-Za-z0-9_-]{1,70}", fullmatch=True)), st.text()),
    max_size=4,
).map(lambda lines: "\n".join(f"{t}: {c}" for t, c in lines))
any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)

operations = st.one_of(
    st.tuples(st.just("create"), names),
    st.tuples(st.just("domain"), hostnames),
    st.tuples(st.just("config"), st.dictionaries(keys, values, min_size=1, max_size=3)),
    st.tuples(
        st.just("scale"),
        st.lists(st.fixed_dictionaries({"type": types, "quantity": quantities}), max_size=3),
    ),
    st.tuples(st.just("procfile"), procfiles),
    st.tuples(st.just("raw"), any_json),
)


class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"late app"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fz", dir="/tmp"))  # short: HAProxy's sockets
    yield path
    shutil.rmtree(path, ignore_errors=True)


def check_answer(response: TestResponse) -> bool:
    """True when accepted; a refusal must be a 4xx with the JSON error shape."""
    status = response.status_code
    body = response.get_json(silent=True)
    assert status < 500, (status, body)
    if status < 300:
        return True
    assert 400 <= status < 500 and isinstance(body, dict), (status, body)
    assert set(body) == {"id", "message"} and "\n" not in body["message"], body
    return False


def apply(client: FlaskClient, operation: tuple[str, object], created: list[str]) -> None:
    kind, value = operation
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    target = created[-1] if created else "base"
    if kind == "procfile":
        try:
            parsed = procfile.parse(str(value))
        except InvalidParams as error:
            assert "\n" not in error.message
            return
        for name in parsed:  # what a release of it starts: dynos named after each type
            validation.dyno_id(f"{target}.{validation.process_type(name)}.1.v1.ab12cd34")
        return
    path, method, body = {
        "create": ("/apps", "POST", {"name": value}),
        "domain": (f"/apps/{target}/domains", "POST", {"hostname": value}),
        "config": (f"/apps/{target}/config-vars", "PATCH", value),
        "scale": ("/apps/base/formation", "PATCH", {"updates": value}),
        "raw": ("/apps", "POST", value),
    }[kind]
    response = client.open(path, method=method, data=json.dumps(body), headers=headers)
    if check_answer(response) and kind in ("create", "raw"):
        created.append(response.get_json()["name"])


def serve_echo() -> tuple[http.server.ThreadingHTTPServer, threading.Thread]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    return server, thread


def wait(predicate: Callable[[], object], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
        time.sleep(0.02)
    return time.monotonic() - start


def host_answers(port: int, host: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/", headers={"Host": host})
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


@pytest.mark.skipif(not HAPROXY.exists(), reason="HAProxy is not installed")
def test_fuzzed_input_is_accepted_and_routable_or_refused_and_never_freezes_routing(
    home: Path,
) -> None:
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    http_port = port.getsockname()[1]
    port.close()
    paas = Settings(home=home, domain="paas.localhost", containers=False, http_port=http_port)
    flask_app = create_app(paas)
    client = flask_app.test_client()
    store, logs = Store(paas.db_path), LogStore(paas.logs_db_path)
    store.add_token(TOKEN, "admin")
    base = store.create_app("base", "paas-host", domain=paas.domain)
    releases.deploy(store, logs, base, releases.Build("sha256:a", {"web": "w", "worker": "x"}), "c")
    created: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(operations, min_size=1, max_size=4))
    def fuzz(batch: list[tuple[str, object]]) -> None:
        for operation in batch:
            apply(client, operation, created)

    started = time.monotonic()
    fuzz()
    fuzz_seconds = time.monotonic() - started

    # Everything the API accepted, as the agent publishes it, passes the router's checks.
    publisher = routes.RoutePublisher(paas, logs)

    def publish(statuses: list[DynoStatus]) -> None:
        """What the agent's tick does with the store's snapshot and the running dynos."""
        table, refused = routes.route_table(store.desired_state(), statuses, (), paas.domain)
        assert refused == {}
        publisher.publish(table, refused)

    publish([])
    published = json.loads(paas.routes_path.read_text())
    table = model.route_table_from_json(published)  # strict: raises on any bad app
    assert len(table.apps) == len(store.apps())

    # A real router serves that table, and then a new app's deploy at once.
    router_settings = model.RouterSettings(
        http_port=http_port, bind_address="127.0.0.1", run_dir=paas.router_dir
    )
    proxy = haproxy.HAProxy(paas.router_dir, binary=HAPROXY)
    router = service.RouterService(paas.routes_path, router_settings, proxy)
    stop = threading.Event()
    loop = threading.Thread(target=router.run, args=(stop,), kwargs={"interval": 0.05})
    echo, echo_thread = serve_echo()
    loop.start()
    try:
        wait(lambda: publisher.applied_generation() == publisher.generation, 15, "first table")
        assert json.loads((paas.router_dir / "applied.json").read_text())["rejected"] == []
        response = client.post(
            "/apps", json={"name": "late"}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code == 201
        spec = DynoSpec(
            id="late.web.1.v1.ab12cd34", app="late", name="web.1", type="web", release=1,
            generation=0, command="serve", app_dir="/", port=echo.server_address[1],
        )  # fmt: skip
        publish([DynoStatus(spec, "up", time.time(), None, False, 1)])
        took = wait(lambda: host_answers(http_port, "late.paas.localhost"), 5, "late routed")
        assert took < 3.0, f"routing the new app took {took:.1f}s"
    finally:
        stop.set()
        loop.join(timeout=10)
        proxy.stop(timeout=5)
        echo.shutdown()
        echo.server_close()
        echo_thread.join(timeout=5)
    assert fuzz_seconds < 50, f"the fuzzing alone took {fuzz_seconds:.0f}s"
