"""Helpers shared by the router tests: free ports, bounded waits, pid checks, HTTP."""

import http.client
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
