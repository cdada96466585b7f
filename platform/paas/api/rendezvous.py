"""Heroku's rendezvous, so `heroku run` attaches to a paas one-off dyno.

Heroku's CLI takes a one-off dyno's `attach_url` (`rendezvous://HOST:PORT/SECRET`),
connects to HOST:PORT over TLS, writes `SECRET\\r\\n`, drops the first chunk it receives
(a greeting), then pipes its stdin to the connection and the connection to its stdout
until it closes; without a terminal its stdin's end is one `\\x04` byte. No token goes
this way: the secret (32 random bytes, good for one connection within SECRET_SECONDS) is
the credential, handed out only to a caller who may run on the app.

Each API process runs one listener (a thread, started with its first attached dyno) on
an ephemeral port of the API's address, so the secret it handed out is in its own memory
and the URL names its own port. A connection is a thread of its own, not one of
gunicorn's; it takes one of paas.api.run's SESSIONS (the bound on `paas run` relays), so
at most run.MAX_SESSIONS sessions of either kind run per process; past that the client is
told so and closed. The relay speaks paas's frames (paas.domain.one_off) to the dyno's
supervisor (paas.dynos.session, through paas.api.run.connect): stdout and stderr go to the
client as raw bytes, the exit status closes the connection (`heroku run -x` reads the
status the shell prints, as on Heroku).

The certificate is the platform's own, self-signed, made once with openssl under
PAAS_HOME/rendezvous when the API starts. Heroku's CLI verifies it (Node's default), so
its user trusts that certificate: NODE_EXTRA_CA_CERTS=PATH/cert.pem (docs/api.md).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from paas.domain import one_off
from paas.domain.errors import PaasError
from paas.domain.models import App
from paas.domain.settings import Settings
from paas.host import procs
from paas.state import one_offs
from paas.state.one_offs import OneOffRequest
from paas.state.store import Store

SECRET_SECONDS = 60.0  # for the client to connect, once the dyno was asked for
HANDSHAKE_SECONDS = 10.0  # TLS and the secret's line, together
MAX_PENDING = 32  # secrets handed out and not used yet, per process
MAX_CONNECTING = 8  # connections in their handshake at once
GREETING = b"rendezvous\r\n"
EOT = b"\x04"


# How a session reaches its dyno's supervisor (paas.api.run.connect).
Connect = Callable[[Path, App, OneOffRequest, Store], socket.socket]


@dataclass(frozen=True)
class Sessions:
    """paas.api.run's bound on sessions, shared with its WebSocket relays."""

    slots: threading.BoundedSemaphore
    most: int
    connect: Connect
    stall_seconds: float
    too_many: type[PaasError]


@dataclass(frozen=True)
class Pending:
    app: App
    request_id: str
    tty: bool
    expires: float


class Listener:
    """One per API process: the TLS port Heroku's CLI attaches to."""

    def __init__(self, settings: Settings, store: Store, sessions: Sessions) -> None:
        self.settings, self.store, self.sessions = settings, store, sessions
        self.pending: dict[str, Pending] = {}
        self.lock = threading.Lock()
        self.connecting = threading.BoundedSemaphore(MAX_CONNECTING)
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(*certificate(settings.home / "rendezvous", settings))
        self.server = socket.create_server((settings.bind_address, 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True, name="rendezvous").start()

    def url(self, host: str, app: App, found: OneOffRequest) -> str:
        """A new secret for this dyno's session, as the URL the client connects to."""
        secret = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self.lock:
            for key in [k for k, p in self.pending.items() if p.expires < now]:
                del self.pending[key]
            if len(self.pending) >= MAX_PENDING:
                raise self.sessions.too_many(
                    f"{MAX_PENDING} `heroku run` sessions wait for their client already: "
                    "try again in a minute"
                )
            self.pending[secret] = Pending(app, found.id, found.tty, now + SECRET_SECONDS)
        named = f"[{host}]" if ":" in host else host  # an IPv6 address
        return f"rendezvous://{named}:{self.port}/{secret}"

    def claim(self, secret: str) -> Pending | None:
        with self.lock:
            found = self.pending.pop(secret, None)
        return found if found is not None and found.expires >= time.monotonic() else None

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:  # out of descriptors, say: not a reason to spin
                time.sleep(0.1)
                continue
            if not self.connecting.acquire(blocking=False):
                connection.close()  # a flood of handshakes: not ours to wait for
                continue
            threading.Thread(target=self.attend, args=(connection,), daemon=True).start()

    def attend(self, connection: socket.socket) -> None:
        open_socket: socket.socket = connection  # wrap_socket detaches it into the TLS one
        deadline = time.monotonic() + HANDSHAKE_SECONDS  # one for the TLS and the line both
        try:
            client = open_socket = self.tls.wrap_socket(
                connection, server_side=True, do_handshake_on_connect=False
            )
            handshake(client, deadline)
            secret = read_line(client, deadline).decode(errors="replace").strip()
            client.settimeout(HANDSHAKE_SECONDS)  # for what is said before the relay's own
        except (OSError, ValueError):
            open_socket.close()
            return
        finally:
            self.connecting.release()
        with contextlib.closing(client):
            # A slot first: a full process must not use up the client's one-use secret.
            if not self.sessions.slots.acquire(blocking=False):
                say(client, f"paas: this API process runs {self.sessions.most} sessions already")
                return
            try:
                found = self.claim(secret)
                if found is None:
                    say(client, "paas: no such session, or it expired: run the command again")
                    return
                self.relay(client, found)
            finally:
                self.sessions.slots.release()

    def relay(self, client: ssl.SSLSocket, found: Pending) -> None:
        client.sendall(GREETING)  # the CLI drops its first chunk; nothing else is in it
        request = one_offs.get(self.store, found.app, found.request_id)
        try:
            link = self.sessions.connect(self.settings.dynos_dir, found.app, request, self.store)
        except PaasError as error:
            say(client, f"paas: {error.message}")
            return
        with contextlib.closing(link):
            keepalive(client)
            client.settimeout(self.sessions.stall_seconds)  # one that takes nothing is gone
            link.settimeout(self.sessions.stall_seconds)
            pipe(client, link, found.tty)


def pipe(client: ssl.SSLSocket, link: socket.socket, tty: bool) -> None:
    """Bytes both ways until the dyno's exit status, or either side's end."""
    reader = one_off.FrameReader()
    stdin_open = True
    while True:
        ready = [client] if client.pending() else select.select([client, link], [], [], 1.0)[0]
        if client in ready:
            try:
                data = client.recv(65536)
            except (ssl.SSLWantReadError, TimeoutError):
                data = None
            if data == b"":
                return  # the client left: closing the link ends the dyno
            if data and stdin_open:
                stdin_open = to_dyno(link, data, tty)
        if link in ready:
            data = link.recv(65536)
            if not data:
                return
            for frame in reader.feed(data):
                kind, payload = frame[:1], frame[1:]
                if kind == one_off.EXIT:
                    return
                if kind == one_off.MESSAGE:
                    payload += b"\r\n"
                client.sendall(payload)


def to_dyno(link: socket.socket, data: bytes, tty: bool) -> bool:
    """The client's bytes as stdin frames; without a terminal its `\\x04` is stdin's end.
    Whether stdin is still open."""
    if tty:
        link.sendall(one_off.framed(one_off.STDIN, data))
        return True
    data, end, _ = data.partition(EOT)
    if data:
        link.sendall(one_off.framed(one_off.STDIN, data))
    if end:
        link.sendall(one_off.framed(one_off.STDIN_END))
        return False
    return True


def handshake(client: ssl.SSLSocket, deadline: float) -> None:
    """The TLS handshake, done by `deadline` (a monotonic time) however slowly the client
    trickles its bytes, else TimeoutError."""
    client.setblocking(False)
    while True:
        try:
            client.do_handshake()
            return
        except ssl.SSLWantReadError:
            ready = select.select([client], [], [], remaining(deadline))[0]
        except ssl.SSLWantWriteError:
            ready = select.select([], [client], [], remaining(deadline))[1]
        if not ready:
            raise TimeoutError("TLS handshake too slow")


def remaining(deadline: float) -> float:
    """Seconds left until `deadline`; TimeoutError once it passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("handshake too slow")
    return left


def read_line(client: ssl.SSLSocket, deadline: float, limit: int = 256) -> bytes:
    """The secret's line: up to CRLF, within `limit` bytes (else ValueError) and by
    `deadline` (else TimeoutError), however slowly it comes."""
    line = b""
    while not line.endswith(b"\n"):
        client.settimeout(remaining(deadline))
        data = client.recv(limit)
        if not data or len(line) + len(data) > limit:
            raise ValueError("no secret line")
        line += data
    return line


def say(client: ssl.SSLSocket, message: str) -> None:
    """A line the CLI prints (after its greeting): why the session does not go on."""
    with contextlib.suppress(OSError):
        client.sendall(GREETING)
        time.sleep(0.05)  # its own chunk: the CLI drops the first one it reads
        client.sendall(message.encode() + b"\r\n")


def keepalive(sock: socket.socket) -> None:
    """A client whose network went away is noticed within about a minute."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)


def certificate(directory: Path, settings: Settings) -> tuple[Path, Path]:
    """The platform's rendezvous certificate and key, made once (a self-signed EC key of
    ten years, for loopback, the platform's domain and its bind address): in a fresh
    directory renamed into place, so two processes racing to make it share one."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if cert.exists() and key.exists():
        return cert, key
    if directory.exists():  # half a pair (a crash, a hand): set it aside, make a whole one
        with contextlib.suppress(OSError):  # another process did already
            directory.rename(
                directory.with_name(f".{directory.name}.broken.{secrets.token_hex(4)}")
            )
    directory.parent.mkdir(parents=True, exist_ok=True)
    fresh = directory.with_name(f".{directory.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fresh.mkdir(mode=0o700)
    key_args = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    names = ["-subj", "/CN=paas rendezvous", "-addext", f"subjectAltName={alt_names(settings)}"]
    out = ["-keyout", str(fresh / "key.pem"), "-out", str(fresh / "cert.pem")]
    procs.run(
        ["openssl", "req", "-x509", "-days", "3650", *key_args, *names, *out],
        timeout=30,
    )
    try:
        fresh.rename(directory)
    except OSError:  # another process made it first: use theirs
        for part in fresh.iterdir():
            part.unlink()
        fresh.rmdir()
    return cert, key


def alt_names(settings: Settings) -> str:
    names = ["IP:127.0.0.1", "DNS:localhost", f"DNS:{settings.domain}", f"DNS:*.{settings.domain}"]
    with contextlib.suppress(ValueError):
        address = ipaddress.ip_address(settings.bind_address)
        if not address.is_unspecified and str(address) != "127.0.0.1":
            names.append(f"IP:{address}")
    return ",".join(names)


_LISTENERS: dict[Path, Listener] = {}  # by PAAS_HOME: one in a server, one per test home
_STARTING = threading.Lock()


def listener(settings: Settings, store: Store, sessions: Sessions) -> Listener:
    """This process's listener for this platform, started on first use."""
    with _STARTING:
        if settings.home not in _LISTENERS:
            _LISTENERS[settings.home] = Listener(settings, store, sessions)
        return _LISTENERS[settings.home]
