"""Helpers shared by the router tests: free ports, bounded waits, pid checks, HTTP, and a
load of two clients that counts every failed request."""

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest

HAPROXY_BINARY = Path("/usr/sbin/haproxy")
requires_haproxy = pytest.mark.skipif(
    not HAPROXY_BINARY.exists(), reason="HAProxy is not installed (apt-get install haproxy)"
)


@dataclass
class Backend:
    """An echo server started by the ``backends`` fixture."""

    server_id: str
    port: int
    stop: Callable[[], None]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.02)


def process_alive(pid: int) -> bool:
    """Alive and not a zombie (an orphan nobody reaps is still gone for our purposes)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(self.body)
        return data


def get(port: int, host: str, path: str = "/", headers: dict[str, str] | None = None) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        resp = conn.getresponse()
        return Reply(resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()})
    finally:
        conn.close()


class Load:
    """Two clients sending GETs for ``host`` through the router until the block ends: one
    opens a new connection per request (catches a moment nobody listens), one reuses a
    keep-alive connection (catches a connection closed under it). Every answer but a 200,
    and every connection error, is a failure."""

    def __init__(self, port: int, host: str, limit: int = 20_000) -> None:
        self.port = port
        self.host = host
        self.limit = limit
        self.counts = {"fresh": 0, "keepalive": 0}
        self.failures: list[str] = []
        self._done = threading.Event()
        self._threads = [
            threading.Thread(target=self._fresh),
            threading.Thread(target=self._keep_alive),
        ]

    def __enter__(self) -> "Load":
        for t in self._threads:
            t.start()
        self.wait_for(20)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        for t in self._threads:
            t.join(timeout=15)

    def wait_for(self, n: int) -> None:
        """Wait until each client has made ``n`` more requests."""
        start = dict(self.counts)
        wait_until(
            lambda: all(self.counts[k] >= start[k] + n for k in start),
            what=f"{n} more requests from each client",
        )

    def _running(self, kind: str) -> bool:
        return not self._done.is_set() and self.counts[kind] < self.limit

    def _fresh(self) -> None:
        while self._running("fresh"):
            try:
                reply = get(self.port, self.host)
                if reply.status != 200:
                    self.failures.append(f"fresh: HTTP {reply.status} {reply.body[:100]!r}")
            except OSError as err:
                self.failures.append(f"fresh: {err!r}")
            self.counts["fresh"] += 1

    def _keep_alive(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            while self._running("keepalive"):
                try:
                    conn.request("GET", "/", headers={"Host": self.host})
                    resp = conn.getresponse()
                    body = resp.read()
                    if resp.status != 200:
                        self.failures.append(f"keep-alive: HTTP {resp.status} {body[:100]!r}")
                except (OSError, http.client.HTTPException) as err:
                    self.failures.append(f"keep-alive: {err!r}")
                    conn.close()
                self.counts["keepalive"] += 1
        finally:
            conn.close()
