"""One HTTP probe of a web dyno's health check, bounded by the check's timeout as a whole.

Invariant: `passes` never raises on a network or protocol failure and never takes much
longer than the check's timeout (every read is bounded by what is left of one deadline).
"""

from __future__ import annotations

import http.client
import io
import socket
import time
from typing import TYPE_CHECKING

from paas.domain.healthcheck import MAX_BODY_BYTES, USER_AGENT, HealthCheck

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


def passes(check: HealthCheck, host: str, port: int, *, host_header: str = "localhost") -> bool:
    """One probe: GET check.path from host:port, all of it within check.timeout seconds.

    True for a 2xx or 3xx answer whose body, if check.content is set, contains it in its
    first MAX_BODY_BYTES; False for anything else, including every network and protocol
    failure. Dokku (Go's HTTP client, like curl --location before it) follows a redirect
    and wants a 2xx at the end; we do not follow it, as it usually leads to the public
    https URL (the router), not to this dyno, and count it as the app answering.
    """
    deadline = time.monotonic() + check.timeout
    connection = http.client.HTTPConnection(host, port, timeout=check.timeout)
    try:
        connection.putrequest("GET", check.path, skip_host=True)
        for name, value in _request_headers(check, host_header):
            connection.putheader(name, value)
        connection.endheaders()
        response = _Response(connection.sock, deadline)
        try:
            response.begin()
            if not 200 <= response.status < 400:
                return False
            return check.content is None or _body_contains(response, check.content.encode())
        finally:
            response.close()
    except (OSError, http.client.HTTPException, ValueError):
        # OSError covers refused, reset and timed out; HTTPException a malformed answer;
        # ValueError a header http.client refuses. Anything else is a bug and should show.
        return False
    finally:
        connection.close()


def _request_headers(check: HealthCheck, host_header: str) -> list[tuple[str, str]]:
    headers = {
        "host": ("Host", host_header),
        "accept": ("Accept", "*/*"),
        "user-agent": ("User-Agent", USER_AGENT),
    }
    for name, value in check.headers:
        headers[name.lower()] = (name, value)
    # One request per connection: the probe closes it anyway, and says so.
    headers["connection"] = ("Connection", "close")
    return list(headers.values())


def _body_contains(response: http.client.HTTPResponse, wanted: bytes) -> bool:
    body = b""
    while len(body) < MAX_BODY_BYTES:
        # read1 returns what has arrived, so a found content needs no end of body.
        chunk = response.read1(MAX_BODY_BYTES - len(body))
        if not chunk:
            return False
        body += chunk
        if wanted in body:
            return True
    return False


class _DeadlineReader(io.RawIOBase):
    """A socket's bytes, every read bounded by what is left of one deadline.

    A socket timeout bounds each read only: a dyno sending a byte a second would hold a
    probe with a 5 s timeout for as long as it likes.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self.sock = sock
        self.deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("health check timed out")
        self.sock.settimeout(remaining)
        return self.sock.recv_into(buffer)


class _Response(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__(sock, method="GET")
        self.fp.close()  # the plain socket file; left open, it would keep the socket open
        self.fp = io.BufferedReader(_DeadlineReader(sock, deadline))
