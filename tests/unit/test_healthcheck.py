import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from paas.domain import healthcheck
from paas.domain.errors import BuildFailed, InvalidParams
from paas.domain.healthcheck import HealthCheck
from paas.push import app_files
from paas.reconcile.probe import passes


def app_json(*checks: object) -> str:
    return json.dumps({"name": "demo", "healthchecks": {"web": list(checks)}})


def write(app_dir: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (app_dir / name).write_text(text)
    return app_dir


# -- loading ---------------------------------------------------------------------------


def test_no_files_means_the_default_port_check(tmp_path: Path) -> None:
    assert app_files.load(tmp_path) is None


def test_app_json_defaults_are_dokkus() -> None:
    check = healthcheck.from_app_json(app_json({"type": "startup", "path": "/health"}))
    assert check == HealthCheck(
        path="/health", content=None, timeout=5, attempts=3, wait=5, initial_delay=0
    )


def test_app_json_overrides_and_ignores_unknown_fields() -> None:
    entry = {
        "type": "startup",
        "name": "web check",
        "description": "ignored",
        "path": "/health/ready?full=1",
        "content": "ok",
        "timeout": 2,
        "attempts": 10,
        "wait": 0,
        "initialDelay": 7,
        "port": 5000,
        "httpHeaders": [{"name": "X-Forwarded-Proto", "value": "https"}],
        "onFailure": {"url": "https://example.com"},
        "future": [1, 2],
    }
    assert healthcheck.from_app_json(app_json(entry)) == HealthCheck(
        path="/health/ready?full=1",
        content="ok",
        timeout=2,
        attempts=10,
        wait=0,
        initial_delay=7,
        headers=(("X-Forwarded-Proto", "https"),),
    )


def test_a_check_without_type_is_a_startup_check() -> None:
    check = healthcheck.from_app_json(app_json({"path": "/up"}))
    assert check is not None and check.path == "/up"


@pytest.mark.parametrize(
    "checks",
    [
        [],
        [{"type": "liveness", "path": "/live"}, {"type": "readiness", "path": "/ready"}],
        [{"type": "startup", "uptime": 10}, {"type": "startup", "listening": True}],
        [{"type": "startup", "path": "/warn", "warn": True}],
        [{"type": "liveness", "command": ["/app/check"]}],
    ],
)
def test_checks_that_do_not_gate_a_deploy_give_none(checks: list[object]) -> None:
    assert healthcheck.from_app_json(app_json(*checks)) is None


def test_only_the_startup_check_counts() -> None:
    text = app_json(
        {"type": "liveness", "path": "/live"},
        {"type": "startup", "path": "/ready", "content": "yes"},
        {"type": "startup", "uptime": 10},
    )
    assert healthcheck.from_app_json(text) == HealthCheck(path="/ready", content="yes")


def test_app_json_without_web_checks_gives_none() -> None:
    assert healthcheck.from_app_json('{"name": "x"}') is None
    assert healthcheck.from_app_json('{"healthchecks": {"worker": []}}') is None


def test_checks_file_defaults_and_settings() -> None:
    assert healthcheck.from_checks_file("/about  Our Amazing Team\n") == HealthCheck(
        path="/about", content="Our Amazing Team", timeout=5, attempts=3, wait=5
    )
    text = (
        "# zero-downtime checks\n"
        "WAIT=30     # wait between attempts\n"
        "\n"
        "/check.txt\tsimple_check # trailing comment\n"
        "TIMEOUT=60\n"
        "ATTEMPTS=10\n"
        "ATTEMPTS=6\n"
    )
    assert healthcheck.from_checks_file(text) == HealthCheck(
        path="/check.txt", content="simple_check", timeout=60, attempts=6, wait=30
    )


@pytest.mark.parametrize(
    ("line", "path", "content", "headers"),
    [
        ("/", "/", None, ()),
        ("/ C# and F#", "/", "C# and F#", ()),
        (
            "//admin.example.com  Admin Dashboard",
            "/",
            "Admin Dashboard",
            (("Host", "admin.example.com"),),
        ),
        ("//static.example.com/logo.png", "/logo.png", None, (("Host", "static.example.com"),)),
        ("http://example.com:8080/up ok", "/up", "ok", (("Host", "example.com:8080"),)),
    ],
)
def test_checks_file_targets(
    line: str, path: str, content: str | None, headers: tuple[tuple[str, str], ...]
) -> None:
    assert healthcheck.from_checks_file(line) == HealthCheck(
        path=path, content=content, headers=headers
    )


def test_checks_file_without_check_line_gives_none() -> None:
    assert healthcheck.from_checks_file("# nothing\nWAIT=3\n\n") is None


def test_load_reads_checks_file(tmp_path: Path) -> None:
    write(tmp_path, {"CHECKS": "ATTEMPTS=2\n/health ok\n"})
    assert app_files.load(tmp_path) == HealthCheck(path="/health", content="ok", attempts=2)


def test_load_prefers_app_json_with_web_checks(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"app.json": app_json({"type": "startup", "path": "/json"}), "CHECKS": "/checks\n"},
    )
    assert app_files.load(tmp_path) == HealthCheck(path="/json")


def test_load_uses_checks_when_app_json_declares_no_web_checks(tmp_path: Path) -> None:
    write(tmp_path, {"app.json": '{"scripts": {}}', "CHECKS": "/checks\n"})
    assert app_files.load(tmp_path) == HealthCheck(path="/checks")


def test_app_json_web_checks_win_even_when_none_gates(tmp_path: Path) -> None:
    write(tmp_path, {"app.json": app_json(), "CHECKS": "/checks\n"})
    assert app_files.load(tmp_path) is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"type": "startup", "path": "/", "attempts": "x"},
            "app.json: healthchecks.web[0].attempts must be an integer from 1 to 100, got 'x'",
        ),
        (
            {"path": "/", "timeout": 0},
            "app.json: healthchecks.web[0].timeout must be an integer from 1 to 60 (seconds),"
            " got 0",
        ),
        (
            {"path": "/", "wait": 2.5},
            "app.json: healthchecks.web[0].wait must be an integer from 0 to 60 (seconds), got 2.5",
        ),
        (
            {"path": "/", "initialDelay": True},
            "app.json: healthchecks.web[0].initialDelay must be an integer from 0 to 300"
            " (seconds), got True",
        ),
        (
            {"path": "health"},
            "app.json: healthchecks.web[0].path must start with \"/\", got 'health'",
        ),
        (
            {"path": "/a b"},
            "app.json: healthchecks.web[0].path must be printable ASCII without blanks"
            " (percent-encode the others), got '/a b'",
        ),
        (
            {"type": "ready", "path": "/"},
            "app.json: healthchecks.web[0].type must be one of startup, readiness, liveness,"
            " got 'ready'",
        ),
        (
            {"path": "/", "content": 200},
            "app.json: healthchecks.web[0].content must be a string, got 200",
        ),
        (
            {"type": "startup", "command": ["/app/check"]},
            "app.json: healthchecks.web[0]: command checks are not supported; check an HTTP"
            ' path instead (e.g. "path": "/health")',
        ),
        (
            {"path": "/", "uptime": 10},
            "app.json: healthchecks.web[0]: a check has either a path or uptime, not both",
        ),
        (
            {"path": "/", "scheme": "https"},
            "app.json: healthchecks.web[0].scheme: dynos are probed over plain HTTP behind"
            ' the router; use "http"',
        ),
        (
            {"path": "/", "httpHeaders": [{"name": "Bad Name", "value": "x"}]},
            "app.json: healthchecks.web[0].httpHeaders[0] has an invalid header name 'Bad Name'",
        ),
        (
            "/health",
            "app.json: healthchecks.web[0] must be an object, got '/health'",
        ),
    ],
)
def test_bad_app_json_entries_are_named(entry: object, message: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        healthcheck.from_app_json(app_json(entry))
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"healthchecks": {"web": [}',
            "app.json: not valid JSON (line 1, column 27: Expecting value); fix it or remove"
            " the file",
        ),
        ("[]", "app.json: must be a JSON object, got []"),
        ("[" * 100_000, "app.json: nested too deeply to be read"),
        (
            '{"healthchecks": []}',
            "app.json: healthchecks must be an object of process types to lists of checks,"
            ' like {"web": [...]}, got []',
        ),
        (
            '{"healthchecks": {"web": {"path": "/"}}}',
            "app.json: healthchecks.web must be a list of checks, got {'path': '/'}",
        ),
        (
            app_json({"path": "/a"}, {"type": "liveness", "path": "/b"}, {"path": "/c"}),
            "app.json: healthchecks.web has 2 startup checks with a path (web[0], web[2]);"
            " only one is supported: keep the one that shows the app is ready",
        ),
    ],
)
def test_bad_app_json_documents_are_named(text: str, message: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        healthcheck.from_app_json(text)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ATTEMPTS=x\n/", "CHECKS line 1: ATTEMPTS must be an integer from 1 to 100, got 'x'"),
        (
            "\nTIMEOUT=90",
            "CHECKS line 2: TIMEOUT must be an integer from 1 to 60 (seconds), got '90'",
        ),
        ("WAIT=-1", "CHECKS line 1: WAIT must be an integer from 0 to 60 (seconds), got '-1'"),
        ("TIMOUT=10", "CHECKS line 1: unknown setting 'TIMOUT'; use WAIT=, TIMEOUT= or ATTEMPTS="),
        (
            "about Our Team",
            "CHECKS line 1: a check is `/PATH [EXPECTED CONTENT]`; the path must start with"
            " \"/\", got 'about'",
        ),
        (
            "/ ok\n/stylesheets/index.css .body",
            "CHECKS line 2: a second check ('/stylesheets/index.css') after line 1; only one"
            " check is supported: keep the one that shows the app is ready",
        ),
        (
            "https://admin.example.com/ ok",
            "CHECKS line 1: dynos are probed over plain HTTP behind the router; write"
            " '//admin.example.com/' instead of 'https://admin.example.com/'",
        ),
        ("//bad_host!/x", "CHECKS line 1: 'bad_host!' is not a host name, in '//bad_host!/x'"),
    ],
)
def test_bad_checks_files_are_named(text: str, message: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        healthcheck.from_checks_file(text)
    assert caught.value.message == message


def test_load_names_files_it_cannot_take(tmp_path: Path) -> None:
    (tmp_path / "app.json").write_bytes(b'{"name": "\xff"}')
    with pytest.raises(InvalidParams, match=r"^app.json: is not UTF-8 text \(byte 10\)"):
        app_files.load(tmp_path)


def test_load_refuses_links_out_of_the_app(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("root:x:0:0\n")
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "CHECKS").symlink_to(secret)
    with pytest.raises(BuildFailed) as caught:
        app_files.load(app_dir)
    assert caught.value.message == "CHECKS: is a symbolic link; commit it as a regular file"


# -- data ------------------------------------------------------------------------------


def test_json_round_trip() -> None:
    check = HealthCheck(
        path="/h?x=1",
        content="é ok",
        timeout=2,
        attempts=4,
        wait=0,
        initial_delay=3,
        headers=(("Host", "example.com"),),
    )
    assert HealthCheck.from_json(check.to_json()) == check
    assert HealthCheck.from_json(HealthCheck().to_json()) == HealthCheck()


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"path": "/"}',
        HealthCheck().to_json().replace('"timeout": 5', '"timeout": 0'),
        HealthCheck().to_json().replace('"path": "/"', '"path": "x"'),
        HealthCheck().to_json().replace('"headers": []', '"headers": [["a"]]'),
    ],
)
def test_from_json_refuses_what_is_not_a_check(text: str) -> None:
    with pytest.raises(ValueError):
        HealthCheck.from_json(text)


@pytest.mark.parametrize(
    ("check", "seconds"),
    [
        (HealthCheck(), 3 * 5 + 2 * 5),
        (HealthCheck(timeout=2, attempts=1, wait=30, initial_delay=4), 4 + 2),
        (HealthCheck(timeout=60, attempts=10, wait=0, initial_delay=0), 600),
    ],
)
def test_deadline_is_dokkus_last_accepted_moment(check: HealthCheck, seconds: float) -> None:
    assert healthcheck.deadline_seconds(check) == seconds


# -- the probe -------------------------------------------------------------------------


class Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close joins every handler
    release: threading.Event


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        with contextlib.suppress(OSError):  # the probe gave up and closed the connection
            self.answer()

    def answer(self) -> None:
        if self.path == "/ok":
            self.reply(200, b"<html>hello, ready world</html>")
        elif self.path == "/error":
            self.reply(500, b"ready")
        elif self.path == "/redirect":
            self.reply(302, b"", [("Location", "https://example.com/")])
        elif self.path == "/echo-host":
            self.reply(200, f"host={self.headers['Host']}".encode())
        elif self.path == "/big":
            self.reply(200, b"x" * 70_000 + b"needle")
        elif self.path == "/slow":
            self.server.release.wait(5)
            self.reply(200, b"ready")
        elif self.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                if self.server.release.wait(0.1):
                    return
                self.wfile.write(b"x")
                self.wfile.flush()
        else:
            self.reply(404, b"not found")

    def reply(self, status: int, body: bytes, headers: list[tuple[str, str]] = []) -> None:  # noqa: B006
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.release = threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield "127.0.0.1", httpd.server_address[1]
    finally:
        httpd.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def probe(server: tuple[str, int], check: HealthCheck, **kwargs: str) -> bool:
    return passes(check, server[0], server[1], **kwargs)


def test_passes_with_the_right_content(server: tuple[str, int]) -> None:
    assert probe(server, HealthCheck(path="/ok", content="ready world"))
    assert probe(server, HealthCheck(path="/ok"))


def test_fails_with_the_wrong_content(server: tuple[str, int]) -> None:
    assert not probe(server, HealthCheck(path="/ok", content="goodbye"))


def test_only_reads_the_start_of_a_body(server: tuple[str, int]) -> None:
    assert probe(server, HealthCheck(path="/big", content="xxx"))
    assert not probe(server, HealthCheck(path="/big", content="needle"))


@pytest.mark.parametrize("path", ["/error", "/missing"])
def test_fails_on_an_error_status(server: tuple[str, int], path: str) -> None:
    assert not probe(server, HealthCheck(path=path))
    assert not probe(server, HealthCheck(path=path, content="ready"))


def test_a_redirect_is_an_answer(server: tuple[str, int]) -> None:
    assert probe(server, HealthCheck(path="/redirect"))
    assert not probe(server, HealthCheck(path="/redirect", content="ready"))


def test_host_header(server: tuple[str, int]) -> None:
    assert probe(server, HealthCheck(path="/echo-host", content="host=localhost"))
    assert probe(
        server,
        HealthCheck(path="/echo-host", content="host=app.example.com"),
        host_header="app.example.com",
    )
    own = HealthCheck(
        path="/echo-host", content="host=admin.example", headers=(("Host", "admin.example"),)
    )
    assert probe(server, own, host_header="app.example.com")


def test_fails_on_a_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert not passes(HealthCheck(), "127.0.0.1", port)


@pytest.mark.parametrize("path", ["/slow", "/trickle"])
def test_gives_up_after_the_timeout(server: tuple[str, int], path: str) -> None:
    started = time.monotonic()
    assert not probe(server, HealthCheck(path=path, content="ready", timeout=1))
    assert 0.9 <= time.monotonic() - started < 1.5
