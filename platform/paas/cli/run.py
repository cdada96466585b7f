"""`paas run`, `paas run:detached` and `paas ps:stop`: one-off dynos from the command line.

`run` asks the API for an attached dyno run.N (POST /apps/APP/dynos), attaches to it over a
WebSocket (paas.cli.websocket) and streams: with a terminal on stdin (and no --no-tty) the
terminal goes raw and the dyno gets a terminal of the same size — keys, Ctrl-C and window
changes reach it — otherwise stdin is sent until EOF and the dyno's stdout and stderr come
back on ours. The CLI exits with the command's exit status. Without a terminal, a first
Ctrl-C is passed to the command (SIGINT), a second one drops the session, which ends the
dyno.

Invariants: one thread does all of a session's I/O (one select over the socket, stdin and
a signal pipe); the terminal's mode is restored however the session ends.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import termios
import time
import tty
from collections.abc import Iterator
from typing import Any

import click

from paas.cli import client, websocket
from paas.cli.commands import ArgumentError, Session, app_option, cli, parse_assignments

CONNECT_TIMEOUT = 30.0
STDIN, STDIN_END, WINDOW, SIGNAL = b"i", b"e", b"w", b"s"  # paas.domain.one_off's frames
STDOUT, STDERR, MESSAGE, EXIT = b"o", b"r", b"m", b"x"
LOST = 1  # the session ended without an exit status (said on stderr)
# The API pings every 2s (paas.api.run.PING_SECONDS): silence three times that long is a
# connection lost.
SILENCE_SECONDS = 6.0
RUN_SETTINGS = {"ignore_unknown_options": True, "allow_interspersed_args": False}


def command_line(argv: tuple[str, ...]) -> str:
    """As paas.domain.one_off.command_line (the CLI imports nothing of the platform): one
    argument is a command line of its own, several are words quoted one by one."""
    import shlex

    if not argv:
        raise ArgumentError("no command given", "e.g. paas run -- bash")
    return argv[0] if len(argv) == 1 else shlex.join(argv)


def dyno_body(
    argv: tuple[str, ...], env: tuple[str, ...], size: str | None, kind: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"command": command_line(argv), "env": parse_assignments(env)}
    if size:
        body["size"] = size
    if kind:
        body["type"] = kind
    return body


def one_off_options(f: Any) -> Any:
    for option in (
        click.option("--type", "kind", metavar="TYPE", help="Process type whose size it takes."),
        click.option("-s", "--size", metavar="SIZE", help="Dyno size (standard-2x, 1024M…)."),
        click.option("-e", "--env", multiple=True, metavar="KEY=VALUE", help="Extra env var."),
        app_option,
    ):
        f = option(f)
    return f


@cli.command("run", context_settings=RUN_SETTINGS)
@click.argument("argv", nargs=-1, required=True, metavar="-- COMMAND...")
@click.option("--no-tty", is_flag=True, help="No terminal, even when stdin is one.")
@one_off_options
@click.pass_obj
def run(
    session: Session,
    argv: tuple[str, ...],
    no_tty: bool,
    env: tuple[str, ...],
    size: str | None,
    kind: str | None,
    app_name: str | None,
) -> None:
    """Run COMMAND in a one-off dyno attached to this terminal; exits with its status."""
    body = dyno_body(argv, env, size, kind)
    code = attach(session, session.app(app_name), body, terminal=not no_tty and os.isatty(0))
    click.get_current_context().exit(code)


def attach(session: Session, app: str, body: dict[str, Any], terminal: bool) -> int:
    """Runs the one-off dyno `body` asks for (a POST /apps/APP/dynos body: command, env…)
    attached to this process's stdio; returns the command's exit status (LOST when the
    session ended without one, said on stderr). What other commands that run something in
    a dyno (`pg:psql`) call: `attach(session, app, {"command": "…"}, os.isatty(0))`."""
    body = {**body, "attach": True, "tty": terminal}
    if terminal:
        body["rows"], body["cols"] = window_size()
    api = session.api()
    dyno = api.request("POST", f"/apps/{app}/dynos", body)
    if not isinstance(dyno, dict) or not isinstance(dyno.get("attach_path"), str):
        raise client.ApiError(200, "bad_response", "the API answered no attach_path for the dyno")
    ws = websocket.WebSocket.connect(api.api_url, dyno["attach_path"], api.token, CONNECT_TIMEOUT)
    # Said once attached: the dyno is up and its command starts now.
    click.echo(f"Running `{dyno.get('command')}` on {app}... up, {dyno.get('name')}", err=True)
    code = attached(ws, terminal)
    if code is None:
        click.echo(f"error: the connection to {dyno.get('name')} was lost", err=True)
    return LOST if code is None else code


@cli.command("run:detached", context_settings=RUN_SETTINGS)
@click.argument("argv", nargs=-1, required=True, metavar="-- COMMAND...")
@one_off_options
@click.pass_obj
def run_detached(
    session: Session,
    argv: tuple[str, ...],
    env: tuple[str, ...],
    size: str | None,
    kind: str | None,
    app_name: str | None,
) -> None:
    """Run COMMAND in a one-off dyno in the background; its output goes to `paas logs`."""
    name = session.app(app_name)
    dyno = session.api().request("POST", f"/apps/{name}/dynos", dyno_body(argv, env, size, kind))
    dyno_name = dyno.get("name") if isinstance(dyno, dict) else None
    click.echo(f"Running `{dyno.get('command') if dyno else ''}` on {name}... done, {dyno_name}")
    click.echo(f"Run `paas logs -a {name} --dyno {dyno_name}` to see its output.")


@cli.command("ps:stop")
@click.argument("dyno", metavar="DYNO")
@app_option
@click.pass_obj
def ps_stop(session: Session, dyno: str, app_name: str | None) -> None:
    """Stop a dyno: a one-off (run.N) ends; a formation dyno (web.1) is replaced by a
    fresh one, as on Heroku (scale its type down to keep it stopped)."""
    name = session.app(app_name)
    session.api().request("POST", f"/apps/{name}/dynos/{dyno}/actions/stop")
    click.echo(f"Stopping {dyno} dyno on {name}... done")


# -- the session ----------------------------------------------------------------------------


def window_size() -> tuple[int, int]:
    try:
        size = os.get_terminal_size(0)
    except OSError:
        return 0, 0
    return size.lines, size.columns


def window_frame() -> bytes:
    rows, cols = window_size()
    return WINDOW + rows.to_bytes(2, "big") + cols.to_bytes(2, "big")


@contextlib.contextmanager
def raw_terminal(terminal: bool) -> Iterator[None]:
    """Stdin raw (every key, Ctrl-C included, goes to the dyno), restored at the end."""
    if not terminal:
        yield
        return
    saved = termios.tcgetattr(0)
    try:
        tty.setraw(0)
        yield
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def signal_pipe(signals: tuple[int, ...]) -> Iterator[tuple[int, list[int]]]:
    """A pipe each of `signals` wakes (its number, queued in the list), the previous
    handlers back at the end."""
    read_end, write_end = os.pipe()
    for fd in (read_end, write_end):
        os.set_blocking(fd, False)
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda n, _f: caught.append(n)) for s in signals}
    old_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    try:
        yield read_end, caught
    finally:
        signal.set_wakeup_fd(old_fd)
        for s, handler in previous.items():
            signal.signal(s, handler)
        os.close(read_end)
        os.close(write_end)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [])


def attached(ws: websocket.WebSocket, terminal: bool) -> int | None:
    """The session until the dyno's exit status (returned) or the connection's end (None)."""
    signals = (signal.SIGWINCH,) if terminal else (signal.SIGINT,)
    interrupts = 0
    stdin_open = True
    heard = time.monotonic()
    with raw_terminal(terminal), signal_pipe(signals) as (wakeup, caught):
        try:
            while True:
                for message in ws.backlog():
                    status = deliver(message, terminal)
                    if status is not None:
                        return status
                if ws.closed:
                    return None
                readers = [ws.fileno(), wakeup] + ([0] if stdin_open else [])
                silent = time.monotonic() - heard
                if silent >= SILENCE_SECONDS:
                    return None  # no ping, no output: the API or the network is gone
                ready, _, _ = select.select(readers, [], [], SILENCE_SECONDS - silent)
                if wakeup in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wakeup, 1024)
                    for signum in caught:
                        if signum == signal.SIGWINCH:
                            ws.send(window_frame())
                        elif (interrupts := interrupts + 1) == 1:
                            ws.send(SIGNAL + bytes([signal.SIGINT]))
                        else:
                            return None  # a second Ctrl-C drops the session
                    caught.clear()
                if 0 in ready:
                    data = os.read(0, 65536)
                    ws.send(STDIN + data if data else STDIN_END)
                    stdin_open = bool(data)
                if ws.fileno() in ready:
                    heard = time.monotonic()
                    for message in ws.feed():
                        status = deliver(message, terminal)
                        if status is not None:
                            return status
        except OSError:  # a send the API did not take within websocket.SEND_TIMEOUT
            return None
        finally:
            ws.close()


def deliver(message: bytes, terminal: bool) -> int | None:
    """One frame from the dyno: output written out, or its exit status returned."""
    kind, payload = message[:1], message[1:]
    if kind == STDOUT:
        write_all(sys.stdout.fileno(), payload)
    elif kind == STDERR:
        write_all(sys.stderr.fileno(), payload)
    elif kind == MESSAGE:
        write_all(sys.stderr.fileno(), b"paas: " + payload + (b"\r\n" if terminal else b"\n"))
    elif kind == EXIT:
        text = payload.decode(errors="replace")
        return int(text) if text.lstrip("-").isdigit() else LOST
    return None
