"""A load generator for zero-downtime checks: two clients (keep-alive and
connection-close) send GETs through the router while a change happens. Bounded in time."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from platform_harness import Platform, wait_for


@dataclass
class Tally:
    ok: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, error: str | None) -> None:
        with self.lock:
            if error is None:
                self.ok += 1
            else:
                self.failed += 1
                self.errors[error] = self.errors.get(error, 0) + 1


def client(port: int, app: str, keep_alive: bool, stop: threading.Event, tally: Tally) -> None:
    connection: http.client.HTTPConnection | None = None
    headers = {"Host": f"{app}.paas.localhost"}
    if not keep_alive:
        headers["Connection"] = "close"
    try:
        while not stop.is_set():
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                connection.request("GET", "/", headers=headers)
                response = connection.getresponse()
                response.read()
                tally.add(None if response.status == 200 else f"HTTP {response.status}")
                reopen = not keep_alive or response.will_close
            except (OSError, http.client.HTTPException) as error:
                tally.add(type(error).__name__)
                reopen = True
            if reopen:
                connection.close()
                connection = None
    finally:
        if connection is not None:
            connection.close()


def under_load(
    platform: Platform, app: str, seconds: float, change: Callable[[], object]
) -> list[Tally]:
    stop = threading.Event()
    tallies = [Tally(), Tally()]
    threads = [
        threading.Thread(target=client, args=(platform.http_port, app, keep, stop, tally))
        for keep, tally in zip((True, False), tallies, strict=True)
    ]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        change()
        time.sleep(seconds)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    return tallies


def dynos_answering(platform: Platform, app: str, count: int) -> None:
    seen: set[str] = set()

    def enough() -> bool:
        body = platform.get_json(app)
        if body:
            seen.add(body["dyno"])
        return len(seen) >= count

    wait_for(enough, 60, f"{count} dynos to answer")
