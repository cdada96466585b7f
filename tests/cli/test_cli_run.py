"""`paas run:detached`, `ps:stop` and one-off dynos in `paas ps`, against the fake API; the
pure parts of `paas run` (its command line, its WebSocket frames). An attached `paas run`
needs a real dyno: tests/integration/test_run.py."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import threading
import time
from datetime import UTC, datetime

import pytest
from cli_fake_api import FakeApi, run

from paas.cli import commands as cli
from paas.cli import websocket
from paas.cli.run import SILENCE_SECONDS, attached, command_line, dyno_body

NOW = datetime(2026, 11, 28, 15, 18, 46, tzinfo=UTC)


def deployed(api: FakeApi) -> None:
    api.add_release({"web": "serve", "worker": "work"}, "succeeded")


def test_run_detached_prints_the_dyno_and_where_its_output_goes(logged_in: FakeApi) -> None:
    deployed(logged_in)
    result = run("run:detached", "-a", "demo", "-e", "A=1", "--", "rake", "db:migrate")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Running `rake db:migrate` on demo... done, run.1",
        "Run `paas logs -a demo --dyno run.1` to see its output.",
    ]
    sent = logged_in.sent("POST")[-1]
    assert sent.path == "/apps/demo/dynos"
    assert sent.body == {"command": "rake db:migrate", "env": {"A": "1"}}


def test_run_before_any_release_is_one_line_error(logged_in: FakeApi) -> None:
    result = run("run:detached", "-a", "demo", "--", "true")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: demo has no release") and result.stderr.count("\n") == 1


def test_a_bad_env_assignment_is_refused_before_anything_is_sent(logged_in: FakeApi) -> None:
    deployed(logged_in)
    result = run("run:detached", "-a", "demo", "-e", "NOEQUALS", "--", "true")
    assert result.exit_code == 1 and "is not KEY=VALUE" in result.stderr
    assert not logged_in.sent("POST")


def test_ps_stop_stops_a_one_off_or_a_formation_dyno(logged_in: FakeApi) -> None:
    deployed(logged_in)
    run("run:detached", "-a", "demo", "--", "sleep 60")
    stopped = run("ps:stop", "-a", "demo", "run.1")
    assert stopped.exit_code == 0 and stopped.stdout == "Stopping run.1 dyno on demo... done\n"
    replaced = run("ps:stop", "-a", "demo", "web.1")  # as Heroku: the formation starts another
    assert replaced.exit_code == 0 and replaced.stdout == "Stopping web.1 dyno on demo... done\n"
    refused = run("ps:stop", "-a", "demo", "clock.1")
    assert refused.exit_code == 1 and "no dyno or process type" in refused.stderr


def test_ps_groups_one_off_dynos_as_heroku_does(logged_in: FakeApi) -> None:
    logged_in.formation[:] = [
        {"type": "web", "quantity": 1, "size": "standard-1x", "command": "serve"}
    ]
    started = "2026-11-28T15:18:41+00:00"
    logged_in.dynos[:] = [
        {"name": "web.1", "type": "web", "state": "up", "started_at": started, "command": "serve"},
        {"name": "run.2", "type": "run", "state": "up", "started_at": started, "command": "bash"},
    ]  # fmt: skip
    result = run("ps", "-a", "demo", obj=cli.Session(environ=dict(os.environ), now=lambda: NOW))
    assert result.stdout.splitlines() == [
        "=== web (standard-1x): serve (1)",
        "web.1: up 2026/11/28 15:18:41 (~ 5s ago)",
        "",
        "=== run: one-off processes (1)",
        "run.2: up 2026/11/28 15:18:41 (~ 5s ago): bash",
    ]


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (("bash",), "bash"),
        (("rake db:migrate && echo ok",), "rake db:migrate && echo ok"),  # a line of its own
        (("sh", "-c", "exit 3"), "sh -c 'exit 3'"),  # words, each one word
    ],
)
def test_the_command_line_of_run(argv: tuple[str, ...], command: str) -> None:
    assert command_line(argv) == command
    assert dyno_body(argv, ("K=V",), "standard-2x", "worker") == {
        "command": command,
        "env": {"K": "V"},
        "size": "standard-2x",
        "type": "worker",
    }


def test_websocket_frames_are_masked_and_parse_back_however_they_are_cut() -> None:
    payload = os.urandom(70_000)  # a 64-bit length
    sent = websocket.frame(websocket.BINARY, payload)
    assert sent[1] & 0x80  # a client's frames are masked
    parser = websocket.Parser()
    got = []
    for i in range(0, len(sent), 997):
        got += parser.feed(sent[i : i + 997])
    assert got == [(websocket.BINARY, payload)]
    # A server's frames: unmasked, and a message may come in fragments.
    first = bytes([0x02, 3]) + b"abc"  # BINARY, not final
    last = bytes([0x80, 2]) + b"de"  # CONTINUATION, final
    ping = bytes([0x89, 1]) + b"p"
    assert websocket.Parser().feed(first + ping + last) == [
        (websocket.PING, b"p"),
        (websocket.BINARY, b"abcde"),
    ]


def test_options_after_the_command_belong_to_the_command(logged_in: FakeApi) -> None:
    deployed(logged_in)
    result = run("run:detached", "-a", "demo", "ls", "-la", "-e", "X")
    assert result.exit_code == 0, result.output
    assert logged_in.sent("POST")[-1].body == {"command": "ls -la -e X", "env": {}}


def silent_api(held: list[socket.socket]) -> tuple[socket.socket, threading.Thread]:
    """A listener that accepts one WebSocket handshake (its connection kept in `held`),
    then says nothing, reads nothing."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = listener.accept()
        held.append(connection)
        head = b""
        while b"\r\n\r\n" not in head:
            head += connection.recv(4096)
        key = re.search(rb"Sec-WebSocket-Key: (\S+)", head)
        assert key is not None
        accept = base64.b64encode(hashlib.sha1(key.group(1) + websocket.GUID.encode()).digest())
        connection.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_an_attached_session_gives_up_on_a_silent_api() -> None:
    held: list[socket.socket] = []
    listener, thread = silent_api(held)
    try:
        port = listener.getsockname()[1]
        ws = websocket.WebSocket.connect(f"http://127.0.0.1:{port}", "/attach", "t", 5)
        started = time.monotonic()
        with open(os.devnull, "rb") as devnull:
            saved = os.dup(0)
            os.dup2(devnull.fileno(), 0)  # stdin at its end at once: only the API is waited on
            try:
                assert attached(ws, terminal=False) is None  # lost
            finally:
                os.dup2(saved, 0)
                os.close(saved)
        assert SILENCE_SECONDS <= time.monotonic() - started < SILENCE_SECONDS + 5
    finally:
        thread.join(5)
        listener.close()
        for connection in held:
            connection.close()


def test_the_clis_frame_kinds_are_the_platforms() -> None:
    """The CLI imports nothing of the platform, so it spells the frames out: the same."""
    from paas.cli import run as cli_run
    from paas.domain import one_off

    for name in ("STDIN", "STDIN_END", "WINDOW", "SIGNAL", "STDOUT", "STDERR", "MESSAGE", "EXIT"):
        assert getattr(cli_run, name) == getattr(one_off, name), name
