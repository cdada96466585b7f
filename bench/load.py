"""Load test: requests ok/failed through the router while the platform changes underneath.

A 2-dyno app gets a steady stream of GETs from two clients (one keep-alive, one opening a
connection per request) while each phase happens: redeploy, scale 2→6, scale 6→2, restart,
config:set, kill -9 of one dyno, kill -9 of `paas server` and its restart, a failed deploy.
Each phase also checks that its change really happened. Bounded in time; stops by itself.

Usage: .venv/bin/python bench/load.py [SECONDS_PER_PHASE]
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from loadkit import Tally, dynos_answering, under_load
from platform_harness import Platform, commit, wait_for

APP = "load"


def main(seconds: float) -> None:
    platform = Platform()
    results: list[tuple[str, list[Tally]]] = []
    try:
        platform.start()
        platform.paas("apps:create", APP, "--no-remote")
        repo = platform.new_repo("load-repo")
        assert platform.push(APP, repo).returncode == 0
        platform.paas("ps:scale", "web=2", "-a", APP)
        dynos_answering(platform, APP, 2)

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
            assert isinstance(victim["pid"], int), victim
            os.kill(victim["pid"], signal.SIGKILL)
            dynos_answering(platform, APP, 2)

        def kill_server() -> None:
            platform.kill_server()
            time.sleep(1)
            platform.start()

        def scale_up() -> None:
            platform.paas("scale", "web=6", "-a", APP)
            dynos_answering(platform, APP, 6)

        phases: list[tuple[str, Callable[[], object]]] = [
            ("redeploy", redeploy),
            ("scale 2->6", scale_up),
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
            results.append((name, under_load(platform, APP, seconds, change)))
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
