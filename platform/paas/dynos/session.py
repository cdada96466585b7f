"""An attached one-off dyno's side of its session: the client's connection on the dyno's
unix socket (ATTACH_SOCKET in its directory, which the API relays a WebSocket to), and the
dyno's stdio as its supervisor holds it.

The supervisor of an attached dyno (`DynoSpec.attach`) listens on the socket before it
starts anything, starts the command once a client connected (so no output is lost and
stdin has somewhere to come from), and ends the dyno when the connection goes away. Frames
are paas.domain.one_off's.

Invariants: nothing here blocks the supervisor's loop — the connection and the dyno's fds
are non-blocking, and what cannot be written yet waits in a buffer, bounded: past
MAX_BUFFERED bytes the other side is no longer read until it drains.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
import struct
import termios
import time
from dataclasses import dataclass
from pathlib import Path

from paas.domain import one_off
from paas.isolation import container

ATTACH_SOCKET = "attach.sock"
CONSOLE_SOCKET = "console.sock"
ATTACH_SECONDS = 10.0  # a dyno nobody attaches to within this ends without running
MAX_BUFFERED = 1 << 20
FLUSH_SECONDS = 5.0  # how long the last output and the exit status may take to leave


def listen(directory: Path) -> socket.socket:
    """The dyno's attach socket, root's alone (the API runs as root)."""
    return container.listen_private(directory / ATTACH_SOCKET)


def accept(listener: socket.socket, wakeup: int, seconds: float) -> socket.socket | None:
    """The first client to connect within `seconds`; None if none did, or a signal on
    `wakeup` (a stop) came first."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([listener.fileno(), wakeup], [], [], left)
        if listener.fileno() in ready:
            connection, _ = listener.accept()
            connection.setblocking(False)
            return connection
        if wakeup in ready:
            return None
    return None


def set_window(fd: int, rows: int, cols: int) -> None:
    """A terminal's size; the kernel tells the foreground process group (SIGWINCH)."""
    if rows and cols:
        with contextlib.suppress(OSError):
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


@dataclass
class Streams:
    """The supervisor's ends of the dyno's stdio: with a terminal, its master (and the
    runtime's errors on `stderr`); without, stdin's write end and two read ends."""

    stdin: int | None = None
    stdout: int | None = None
    stderr: int | None = None
    master: int | None = None

    def readable(self) -> list[tuple[int, bytes]]:
        """(fd, the frame kind its bytes go out as) of each stream still open."""
        pairs = [(self.master, one_off.STDOUT), (self.stdout, one_off.STDOUT)]
        pairs.append((self.stderr, one_off.STDERR))
        return [(fd, kind) for fd, kind in pairs if fd is not None]

    def close(self, fd: int) -> None:
        with contextlib.suppress(OSError):
            os.close(fd)
        for name in ("stdin", "stdout", "stderr", "master"):
            if getattr(self, name) == fd:
                setattr(self, name, None)

    def close_all(self) -> None:
        for fd in {self.stdin, self.stdout, self.stderr, self.master} - {None}:
            assert fd is not None
            self.close(fd)


class Link:
    """The client's connection: frames in, frames out through a bounded buffer."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.reader = one_off.FrameReader()
        self.outgoing = bytearray()
        self.open = True

    def fileno(self) -> int:
        return self.connection.fileno()

    def receive(self) -> list[bytes]:
        """What the client sent since; marks the link closed at its end (or a broken frame)."""
        try:
            data = self.connection.recv(65536)
        except BlockingIOError:
            return []
        except OSError:
            data = b""
        if not data:
            self.open = False
            return []
        try:
            return self.reader.feed(data)
        except ValueError:
            self.open = False
            return []

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        if self.open:
            self.outgoing += one_off.framed(kind, payload)

    def flush(self) -> None:
        if not self.outgoing or not self.open:
            return
        try:
            sent = self.connection.send(self.outgoing)
        except BlockingIOError:
            return
        except OSError:
            self.open = False
            return
        del self.outgoing[:sent]

    @property
    def full(self) -> bool:
        return len(self.outgoing) > MAX_BUFFERED

    def finish(self) -> None:
        """Sends what is left (bounded by FLUSH_SECONDS), then closes."""
        deadline = time.monotonic() + FLUSH_SECONDS
        while self.open and self.outgoing and (left := deadline - time.monotonic()) > 0:
            _, ready, _ = select.select([], [self.connection], [], left)
            if ready:
                self.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()
        self.open = False


def read_chunk(fd: int) -> bytes | None:
    """What a non-blocking stream has now: b"" when nothing yet, None at its end (EOF,
    or EIO: a terminal whose last process closed it)."""
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        return b""
    except OSError:
        return None
    return data or None


class StdinPipe:
    """Client bytes waiting for the dyno's stdin (or terminal) to take them."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.ended = False  # the client said stdin ended: close once the buffer drained

    def write(self, fd: int) -> bool:
        """Writes what it can; False when the dyno's end is gone."""
        try:
            written = os.write(fd, self.buffer)
        except BlockingIOError:
            return True
        except OSError:
            self.buffer.clear()
            return False
        del self.buffer[:written]
        return True
