"""Load test: requests ok/failed through the router while the platform changes underneath.

A 2-dyno app gets a steady stream of GETs from two clients (one keep-alive, one opening a
connection per request) while each phase happens: redeploy, scale 2→6, scale 6→2, restart,
config:set, kill -9 of one dyno, kill -9 of `paas server` and its restart, a failed deploy.
Each phase also checks that its change really happened. Bounded in time; stops by itself.

Usage: .venv/bin/python bench/load.py [SECONDS_PER_PHASE]
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from platform_harness import Platform, commit, wait_for

APP = "load"


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


def client(port: int, keep_alive: bool, stop: threading.Event, tally: Tally) -> None:
    connection: http.client.HTTPConnection | None = None
    while not stop.is_set():
        try:
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            headers = {"Host": f"{APP}.paas.localhost"}
            if not keep_alive:
                headers["Connection"] = "close"
            connection.request("GET", "/", headers=headers)
            response = connection.getresponse()
            response.read()
            tally.add(None if response.status == 200 else f"HTTP {response.status}")
            if not keep_alive or response.will_close:
                connection.close()
                connection = None
        except (OSError, http.client.HTTPException) as error:
            tally.add(type(error).__name__)
            if connection is not None:
                connection.close()
            connection = None


def under_load(platform: Platform, seconds: float, change: Callable[[], None]) -> list[Tally]:
    stop = threading.Event()
    tallies = [Tally(), Tally()]
    threads = [
        threading.Thread(target=client, args=(platform.http_port, keep, stop, tally))
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


def dynos_answering(platform: Platform, count: int) -> None:
    seen: set[str] = set()

    def enough() -> bool:
        body = platform.get_json(APP)
        if body:
            seen.add(body["dyno"])
        return len(seen) >= count

    wait_for(enough, 60, f"{count} dynos to answer")


def main(seconds: float) -> None:
    platform = Platform()
    results: list[tuple[str, list[Tally]]] = []
    try:
        platform.start()
        platform.paas("apps:create", APP, "--no-remote")
        repo = platform.new_repo("load-repo")
        assert platform.push(APP, repo).returncode == 0
        platform.paas("ps:scale", "web=2", "-a", APP)
        dynos_answering(platform, 2)

        def redeploy() -> None:
            app_py = repo / "app.py"
            app_py.write_text(app_py.read_text().replace("Hello from paas", "Hello v2"))
            commit(repo, "v2")
            assert platform.push(APP, repo).returncode == 0
            wait_for(lambda: (platform.get_json(APP) or {}).get("message") == "Hello v2", 60, "v2")

        def failed_deploy() -> None:
            (repo / "requirements.txt").write_text("no-such-package-paas-load==1\n")
            commit(repo, "broken")
            assert platform.push(APP, repo).returncode != 0

        def kill_dyno() -> None:
            (victim,) = [d for d in platform.dyno_statuses(APP) if d.get("state") == "running"][:1]
            os.kill(int(victim["pid"]), signal.SIGKILL)  # type: ignore[call-overload]
            dynos_answering(platform, 2)

        def kill_server() -> None:
            platform.kill_server()
            time.sleep(1)
            platform.start()

        phases: list[tuple[str, Callable[[], None]]] = [
            ("redeploy", redeploy),
            (
                "scale 2->6",
                lambda: (platform.paas("scale", "web=6", "-a", APP), dynos_answering(platform, 6)),
            ),
            ("scale 6->2", lambda: platform.paas("scale", "web=2", "-a", APP)),
            ("restart", lambda: platform.paas("restart", "-a", APP)),
            (
                "config:set",
                lambda: (
                    platform.paas("config:set", "GREETING=load", "-a", APP),
                    wait_for(
                        lambda: (platform.get_json(APP) or {}).get("message") == "load",
                        30,
                        "config",
                    ),
                ),
            ),
            ("kill -9 one dyno", kill_dyno),
            ("kill -9 paas server", kill_server),
            ("failed deploy", failed_deploy),
        ]
        for name, change in phases:
            results.append((name, under_load(platform, seconds, change)))
    finally:
        platform.stop()
    for name, (keep, close) in results:
        print(
            f"{name:<22} keep-alive ok {keep.ok:6} failed {keep.failed:4}   "
            f"connection-close ok {close.ok:6} failed {close.failed:4}   "
            f"{json.dumps({**keep.errors, **close.errors}) if keep.failed + close.failed else ''}"
        )


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0)
