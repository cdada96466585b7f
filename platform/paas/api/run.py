"""One-off dynos over the API: `paas run`, `run:detached` and `ps:stop` (and Heroku's CLI's
`run`, `run:detached`, `ps:stop`/`ps:kill`).

POST /apps/APP/dynos asks for a dyno run.N (a request in paas.state.one_offs, which the
agent starts within a tick) and answers at once in Heroku's dyno shape with, when
attached, `attach_path` (this WebSocket, for `paas run`) and `attach_url` (a
rendezvous:// URL for Heroku's CLI, served by paas.api.rendezvous with the same bound).
GET /apps/APP/dynos/run.N/attach is a WebSocket (authenticated like
every call, before the upgrade): this process connects to the dyno's unix socket
(paas.dynos.session), then relays frames both ways — one frame, one binary message — until
either side ends. The client gone, the supervisor sees its socket close and ends the dyno;
the dyno ended, its exit status is the last frame and the WebSocket closes.

A session holds one of its API process's 16 gunicorn threads (gthread: 2 processes x 16
threads) for as long as it lasts, plus two threads of its own outside that pool (the relay's
reader, simple-websocket's). So each API process takes at most
MAX_SESSIONS at once — fewer than half its threads, so the rest of the API always has
threads left — and answers 429 `too_many_sessions` past that, before the upgrade. A
listener of its own would have needed another port, its own authentication and TLS story
and its own process to supervise, for sessions that spend their time idle in a select.
Pings every PING_SECONDS find a client whose network went away (no pong by the next
ping: closed), so its dyno ends within about two intervals. A client that stops reading
(stopped, or its network gone while the dyno writes) would block every send to it: each
send waits at most STALL_SECONDS for the client to take a byte, else the connection is shut
down, which wakes both threads, so the session ends and its dyno with it. Input the dyno
does not read piles up in simple-websocket's queue: past MAX_QUEUED_INPUT bytes the session
ends, saying why.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import simple_websocket
from flask import Blueprint, Response, jsonify, request

from paas.api import rendezvous
from paas.api.context import ctx, find_app, json_body
from paas.api.dynos import one_off_json, restart_target
from paas.domain import one_off, sizes
from paas.domain.access import Permission
from paas.domain.errors import Conflict, InvalidParams, NotFound, PaasError
from paas.domain.models import App
from paas.dynos import session
from paas.dynos.runtime import ProcessRuntime
from paas.host.jsonfile import read_json
from paas.state import one_offs
from paas.state.one_offs import OneOffRequest
from paas.state.store import Store

blueprint = Blueprint("run", __name__)
MAX_SESSIONS = 6  # per API process: each holds one of its 16 gunicorn threads
PING_SECONDS = 2.0
STALL_SECONDS = 3 * PING_SECONDS  # a client that takes no byte for this long is gone
MAX_QUEUED_INPUT = 1 << 20  # bytes from the client waiting for the dyno to read them
ATTACH_WAIT_SECONDS = 30.0  # for the agent to start the dyno and its supervisor to listen
POLL_SECONDS = 0.005
RECEIVE_SECONDS = 0.5
SESSIONS = threading.BoundedSemaphore(MAX_SESSIONS)


class TooManySessions(PaasError):
    id = "too_many_sessions"
    status = 429


def _env_value(value: object) -> bool:
    """A string; or a number, as Heroku's CLI sends COLUMNS and LINES; or null (unset)."""
    return value is None or isinstance(value, str) or type(value) is int


def _flag(body: dict[str, object], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise InvalidParams(f"{key} must be true or false")
    return value


def _text(body: dict[str, object], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidParams(f"{key} must be a string")
    return value


@blueprint.post("/apps/<name>/dynos")
def create(name: str) -> tuple[Response, int]:
    """Heroku's dyno create: {command, attach, env, size, type, tty, rows, cols}."""
    context = ctx()
    app = find_app(name, Permission.OPERATE)
    body = json_body()
    env = body.get("env") or {}
    if not isinstance(env, dict) or not all(_env_value(v) for v in env.values()):
        raise InvalidParams("env must be an object of strings: e.g. -e KEY=VALUE")
    env = {k: str(v) for k, v in env.items() if v is not None}
    if context.store.current_release(app) is None:
        raise InvalidParams(f"{app.name} has no release to run yet: deploy it first (git push)")
    found = one_offs.request(
        context.store,
        app,
        one_off.check_command(body.get("command")),
        env={str(k): v for k, v in env.items()},
        size=None if body.get("size") is None else sizes.canonical(body.get("size")),
        type=_text(body, "type") or one_off.RUN_TYPE,
        attach=_flag(body, "attach"),
        **terminal(body, env),  # type: ignore[arg-type]  # checked by request
    )
    how = "attached" if found.attach else "detached"
    context.logs.event(
        app.name, "api", f"Starting process `{found.command}` ({how}) as {found.name}"
    )
    url = None
    if found.attach:
        sessions = rendezvous.Sessions(
            SESSIONS, MAX_SESSIONS, connect, STALL_SECONDS, TooManySessions
        )
        hostname = urlsplit(f"//{request.host}").hostname or "127.0.0.1"  # as the client said
        url = rendezvous.listener(context.settings, context.store, sessions).url(
            hostname, app, found
        )
    return jsonify(one_off_json(app, found, url)), 201


def terminal(body: dict[str, object], env: dict[str, str]) -> dict[str, object]:
    """tty, rows and cols as asked for (`paas run`), else as Heroku's CLI implies them: it
    sends its terminal's COLUMNS and LINES in env only when its output is a terminal."""
    if "tty" in body:
        return {"tty": _flag(body, "tty"), "rows": body.get("rows", 0), "cols": body.get("cols", 0)}
    size = env.get("LINES", ""), env.get("COLUMNS", "")
    wanted = all(v.isdigit() for v in size) and not _flag(body, "force_no_tty")
    return {
        "tty": wanted,
        "rows": int(size[0]) if wanted else 0,
        "cols": int(size[1]) if wanted else 0,
    }


@blueprint.post("/apps/<name>/dynos/<dyno>/actions/stop")
def stop(name: str, dyno: str) -> tuple[Response, int]:
    """Heroku's ps:stop of one dyno. A one-off ends for good; a formation dyno (web.1)
    stops and, as on Heroku, the formation starts a fresh one in its place: for paas that
    is a restart of that dyno (scale the type down to keep it stopped)."""
    context = ctx()
    app = find_app(name, Permission.OPERATE)
    found = one_offs.by_name(context.store, app, dyno)
    if found is None:
        if dyno.partition(".")[0] != one_off.RUN_TYPE:
            return restart_target(app, dyno, "Stop")
        raise NotFound(f"no one-off dyno {dyno} in {app.name}: `paas ps` lists them")
    _stop_one_off(app, found)
    return jsonify(message=f"Stopping {dyno} of {app.name}"), 202


@blueprint.post("/apps/<name>/formations/<kind>/actions/stop")
def stop_type(name: str, kind: str) -> tuple[Response, int]:
    """Heroku's ps:stop of a process type: every one-off dyno for `run`, else the type's
    dynos stop and the formation starts fresh ones (a restart of the type)."""
    context = ctx()
    app = find_app(name, Permission.OPERATE)
    if kind != one_off.RUN_TYPE:
        return restart_target(app, kind, "Stop")
    for found in one_offs.unended(context.store):
        if found.app == app.name:
            with contextlib.suppress(NotFound):  # ended meanwhile
                _stop_one_off(app, found)
    return jsonify(message=f"Stopping every one-off dyno of {app.name}"), 202


def _stop_one_off(app: App, found: OneOffRequest) -> None:
    context = ctx()
    if found.dyno_id is not None or not one_offs.cancel(
        context.store, found.id, "stopped before it started"
    ):
        _stop_started(app, found.id)
    context.logs.event(app.name, "api", f"Stopping {found.name} (ps:stop)")


def _stop_started(app: App, request_id: str) -> None:
    """Stops the dyno of a request read again (the agent may have started it since the
    caller's read); NotFound once it ended, or its dyno was forgotten meanwhile."""
    context = ctx()
    found = one_offs.get(context.store, app, request_id)
    gone = NotFound(f"{found.name} of {app.name} is no longer running")
    if found.ended or found.dyno_id is None:
        raise gone
    try:
        ProcessRuntime(context.settings.dynos_dir, {}).stop(found.dyno_id)
    except FileNotFoundError:  # its directory: removed once it ended
        raise gone from None


# websocket=True: werkzeug's router matches an Upgrade request only to such a rule.
@blueprint.get("/apps/<name>/dynos/<dyno>/attach", websocket=True)
def attach(name: str, dyno: str) -> Response:
    context = ctx()
    app = find_app(name, Permission.OPERATE)
    found = one_offs.by_name(context.store, app, dyno)
    if found is None or not found.attach:
        raise NotFound(f"no attached one-off dyno {dyno} in {app.name}")
    if not SESSIONS.acquire(blocking=False):
        raise TooManySessions(
            f"this API process relays {MAX_SESSIONS} `paas run` sessions already: try again "
            "once one ended, or use `paas run:detached`"
        )
    try:
        link = connect(context.settings.dynos_dir, app, found)
        try:
            return relay(link)
        finally:
            link.close()  # whatever ended the relay: the supervisor sees its client gone
    finally:
        SESSIONS.release()


def connect(
    dynos_dir: Path, app: App, found: OneOffRequest, store: Store | None = None
) -> socket.socket:
    """A connection to the dyno's supervisor, once the agent started it and it listens."""
    store = store or ctx().store
    deadline = time.monotonic() + ATTACH_WAIT_SECONDS
    while time.monotonic() < deadline:
        if found.ended:
            reason = found.detail or f"it exited with status {found.exit_status}"
            raise InvalidParams(f"{found.name} is not running: {reason}")
        if found.dyno_id is not None:
            if (read_json(dynos_dir / found.dyno_id / "status.json") or {}).get("attached"):
                raise Conflict(f"{found.name} has a client attached already")
            path = dynos_dir / found.dyno_id / session.ATTACH_SOCKET
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                connection.connect(str(path))
                return connection
            except OSError:  # not listening yet (or no longer: the next read says)
                connection.close()
        time.sleep(POLL_SECONDS)
        found = one_offs.get(store, app, found.id)
    raise PaasError(f"{found.name} did not start within {ATTACH_WAIT_SECONDS:g}s: try again")


def relay(link: socket.socket) -> Response:
    """The WebSocket handshake, then frames both ways until one side ends."""
    ws = simple_websocket.Server(
        bounded_environ(request.environ),
        ping_interval=PING_SECONDS,
        max_message_size=one_off.MAX_FRAME_BYTES,
    )
    reader = threading.Thread(target=to_client, args=(link, ws), daemon=True)
    reader.start()
    try:
        while ws.connected:  # polled: a close from our side does not wake receive()
            message = ws.receive(timeout=RECEIVE_SECONDS)
            if not isinstance(message, bytes) or message[:1] not in one_off.FROM_CLIENT:
                continue  # text or unknown frames: not ours to pass on
            forward(link, one_off.framed(message[:1], message[1:]), ws)
    except InputOverflow as error:
        with contextlib.suppress(Exception):
            ws.send(one_off.MESSAGE + str(error).encode())
    except (simple_websocket.ConnectionClosed, OSError):
        pass
    finally:
        with contextlib.suppress(OSError):
            link.shutdown(socket.SHUT_RDWR)  # the supervisor sees its client gone
        reader.join(timeout=STALL_SECONDS + 1)  # its sends give up within STALL_SECONDS
        with contextlib.suppress(Exception):  # already closed by either side
            ws.close()
    return Ended(ws.mode)


class InputOverflow(PaasError):
    pass


def queued_input(ws: Any) -> int:
    return sum(len(m) for m in ws.input_buffer)


def forward(link: socket.socket, data: bytes, ws: Any) -> None:
    """`data` to the dyno's supervisor, which stops reading while the dyno does not read
    its stdin: waits for it while the client is there, up to MAX_QUEUED_INPUT queued."""
    view = memoryview(data)
    while view and ws.connected:
        if queued_input(ws) > MAX_QUEUED_INPUT:
            raise InputOverflow(
                f"the dyno read none of the last {MAX_QUEUED_INPUT >> 20} MiB of input: "
                "session closed"
            )
        if select.select([], [link], [], RECEIVE_SECONDS)[1]:
            with contextlib.suppress(BlockingIOError):
                view = view[link.send(view, socket.MSG_DONTWAIT) :]


def to_client(link: socket.socket, ws: Any) -> None:
    """The dyno's frames out to the client; its end closes the WebSocket and the link."""
    reader = one_off.FrameReader()
    try:
        while data := link.recv(65536):
            for frame in reader.feed(data):
                ws.send(frame)
    except Exception:
        pass
    with contextlib.suppress(OSError):
        link.shutdown(socket.SHUT_RDWR)  # wakes the relay, were it waiting to write
    with contextlib.suppress(Exception):
        ws.close()


def bounded_environ(environ: dict[str, Any]) -> dict[str, Any]:
    """`environ` with its client socket (gunicorn's, or werkzeug's) as a BoundedSocket."""
    for key in ("gunicorn.socket", "werkzeug.socket"):
        if key in environ:
            return {**environ, key: BoundedSocket(environ[key])}
    return environ


class BoundedSocket:
    """The client's socket as simple-websocket uses it (fileno, send, recv, close), whose
    sends give up on a client that takes no byte for STALL_SECONDS: the socket is then shut
    down, which ends the reads of simple-websocket's thread too. One send at a time: the
    relay's reader and simple-websocket's pings both send."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        if sock.family in (socket.AF_INET, socket.AF_INET6):  # unacked data: the kernel's own
            with contextlib.suppress(OSError, AttributeError):
                user_timeout = int(STALL_SECONDS * 1000)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, user_timeout)

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)

    def send(self, data: bytes) -> int:
        view = memoryview(data)
        with self.lock:
            while view:
                if not select.select([], [self.sock], [], STALL_SECONDS)[1]:
                    self.shutdown()
                    raise TimeoutError(f"the client took nothing for {STALL_SECONDS:g}s")
                with contextlib.suppress(BlockingIOError):
                    view = view[self.sock.send(view, socket.MSG_DONTWAIT) :]
        return len(data)

    def shutdown(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.sock.close()


class Ended(Response):
    """What a view returns once its WebSocket ended: the connection is done with, so the
    server must write nothing more to it (gunicorn: StopIteration closes it)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def __call__(self, environ: Any, start_response: Any) -> Any:
        if self.mode == "gunicorn":
            raise StopIteration()
        return super().__call__(environ, start_response)
