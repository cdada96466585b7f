"""The CLI's WebSocket client (RFC 6455), over the stdlib: what `paas run` attaches with.

Only what a session needs: the opening handshake with the API token, binary messages out
(masked, as a client must), binary messages in (fragments joined), pings answered, close.
A refused handshake (401, 404, 429…) becomes the same `ApiError` any other call gives, its
message from the API's JSON body. Kept small and import-light: `paas run`'s start-up is
part of its latency (a library client cost ~0.1 s of imports).

Invariant: one thread uses a WebSocket (the CLI's session loop); `feed` never blocks.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import struct
import urllib.parse

from paas.cli import client

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455's, for Sec-WebSocket-Accept
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_HEADER_BYTES = 64 * 1024
SEND_TIMEOUT = 6.0  # seconds a send may wait for the API to read: then it is lost
MAX_MESSAGE_BYTES = 8 << 20


def masked(data: bytes, key: bytes) -> bytes:
    """`data` XOR the repeated 4-byte `key`, as one big-integer operation (fast enough
    for the CLI's few-KiB messages without a loop per byte)."""
    if not data:
        return b""
    size = len(data)
    pad = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "big") ^ int.from_bytes(pad, "big")).to_bytes(size, "big")


def frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked frame."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    key = os.urandom(4)
    return head + key + masked(payload, key)


class Parser:
    """Frames out of the bytes a server sent: (opcode, payload) of each whole message."""

    def __init__(self) -> None:
        self.buffer = b""
        self.fragments: list[bytes] = []
        self.fragment_opcode = BINARY

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buffer += data
        messages = []
        while (parsed := self._one()) is not None:
            fin, opcode, payload = parsed
            if opcode >= CLOSE:  # control frames are never fragmented
                messages.append((opcode, payload))
                continue
            if opcode != CONTINUATION:
                self.fragment_opcode, self.fragments = opcode, []
            self.fragments.append(payload)
            if sum(len(f) for f in self.fragments) > MAX_MESSAGE_BYTES:
                raise client.PaasCliError("the API sent a WebSocket message too big to be ours")
            if fin:
                messages.append((self.fragment_opcode, b"".join(self.fragments)))
                self.fragments = []
        return messages

    def _one(self) -> tuple[bool, int, bytes] | None:
        buf = self.buffer
        if len(buf) < 2:
            return None
        fin, opcode = bool(buf[0] & 0x80), buf[0] & 0x0F
        has_mask, size, offset = bool(buf[1] & 0x80), buf[1] & 0x7F, 2
        if size == 126:
            if len(buf) < 4:
                return None
            (size,), offset = struct.unpack("!H", buf[2:4]), 4
        elif size == 127:
            if len(buf) < 10:
                return None
            (size,), offset = struct.unpack("!Q", buf[2:10]), 10
        key = b""
        if has_mask:
            key, offset = buf[offset : offset + 4], offset + 4
        if len(buf) < offset + size:
            return None
        payload = buf[offset : offset + size]
        self.buffer = buf[offset + size :]
        return fin, opcode, masked(payload, key) if has_mask else payload


class WebSocket:
    def __init__(self, sock: socket.socket, leftover: bytes) -> None:
        self.sock = sock
        self.parser = Parser()
        self.pending = self.parser.feed(leftover)
        self.closed = False

    @classmethod
    def connect(cls, api_url: str, path: str, token: str, timeout: float) -> WebSocket:
        """The handshake on `path` of the API at `api_url` (http only: the API's own)."""
        parts = urllib.parse.urlsplit(api_url)
        if parts.scheme != "http" or not parts.hostname:
            raise client.PaasCliError(
                f"paas run attaches over http only, not {api_url}", "use the API's http:// URL"
            )
        port = parts.port or 80
        try:
            sock = socket.create_connection((parts.hostname, port), timeout=timeout)
        except OSError as error:
            raise client.ApiUnreachable(
                f"cannot reach the paas API at {api_url}: {error}",
                "is `paas server` running? check PAAS_API_URL or `paas login --api-url`",
            ) from None
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {parts.path.rstrip('/')}{path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {key}\r\nAuthorization: Bearer {token}\r\n"
            f"User-Agent: {client.USER_AGENT}\r\n\r\n"
        )
        try:
            sock.sendall(request.encode())
            status, headers, rest = read_head(sock)
            if status != 101:
                raise refused(sock, status, headers, rest)
            expected = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
            if headers.get("sec-websocket-accept") != expected:
                raise client.PaasCliError(f"the API at {api_url} did not accept the WebSocket")
        except BaseException:
            sock.close()
            raise
        # Reads happen once select says the socket is readable; the timeout bounds sends to
        # an API that stopped reading (TimeoutError, an OSError: the session is lost).
        sock.settimeout(SEND_TIMEOUT)
        return cls(sock, rest)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, payload: bytes) -> None:
        self.sock.sendall(frame(BINARY, payload))

    def backlog(self) -> list[bytes]:
        """The binary messages that came with the handshake's answer (read already)."""
        messages, self.pending = self.pending, []
        return self._handle(messages)

    def feed(self) -> list[bytes]:
        """Reads what the socket has (one recv: call when select says it is readable) and
        returns the binary messages it completed; answers pings; sets `closed` at the end."""
        try:
            data = self.sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return []
        return self._handle(self.parser.feed(data))

    def _handle(self, messages: list[tuple[int, bytes]]) -> list[bytes]:
        out = []
        for opcode, payload in messages:
            if opcode == PING:
                self.sock.sendall(frame(PONG, payload))
            elif opcode == CLOSE:
                self.closed = True
            elif opcode == BINARY:
                out.append(payload)
        return out

    def close(self) -> None:
        with contextlib.suppress(OSError):  # the server may have gone first
            self.sock.settimeout(1.0)  # a goodbye only: not worth a stalled API's wait
            self.sock.sendall(frame(CLOSE, struct.pack("!H", 1000)))
        self.sock.close()
        self.closed = True


def read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The status, headers (lower-cased names) and the bytes after them of an answer."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise client.ApiUnreachable("the paas API closed the connection before it answered")
        data += chunk
        if len(data) > MAX_HEADER_BYTES:
            raise client.PaasCliError("the paas API's answer has headers too long to be its own")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = lines[0].split(" ", 2)
    status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


def refused(sock: socket.socket, status: int, headers: dict[str, str], body: bytes) -> Exception:
    """The API's error for a handshake it refused, from its JSON body."""
    length = headers.get("content-length", "")
    wanted = int(length) if length.isdigit() else 0
    while len(body) < min(wanted, MAX_HEADER_BYTES):
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return client._api_error(status, "", body)
