"""Deploy benchmark: push-to-serving time of the sample Flask app, cold and warm, and
config:set-to-visible time, as min/median/max over several runs.

Usage: .venv/bin/python bench/deploy.py [RUNS]   (run as root or a user with haproxy)
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from platform_harness import Platform, commit, wait_for


def timed_until_serving(
    platform: Platform, app: str, message: str, action: Callable[[], None]
) -> float:
    started = time.monotonic()
    action()
    wait_for(lambda: (platform.get_json(app) or {}).get("message") == message, 120, "serving")
    return time.monotonic() - started


def summary(name: str, samples: list[float]) -> str:
    return (
        f"{name:<28} min {min(samples):6.2f}s  median {statistics.median(samples):6.2f}s  "
        f"max {max(samples):6.2f}s  (n={len(samples)})"
    )


def push(platform: Platform, app: str, repo: Path) -> None:
    result = platform.push(app, repo)
    if result.returncode != 0:
        raise SystemExit(f"push failed: {result.stderr}")


def config_set(platform: Platform, app: str, value: str) -> None:
    platform.paas("config:set", f"GREETING={value}", "-a", app)


def main(runs: int) -> None:
    platform = Platform()
    cold, warm, config = [], [], []
    try:
        platform.start()
        for run in range(runs):
            app = f"bench-{run}"
            platform.paas("apps:create", app, "--no-remote")
            repo = platform.new_repo(f"repo-{run}")
            deploy = partial(push, platform, app, repo)
            cold.append(timed_until_serving(platform, app, "Hello from paas", deploy))
            app_py = repo / "app.py"
            app_py.write_text(app_py.read_text().replace("Hello from paas", "Hello again"))
            commit(repo, "warm redeploy")
            warm.append(timed_until_serving(platform, app, "Hello again", deploy))
            value = f"config {run}"
            change = partial(config_set, platform, app, value)
            config.append(timed_until_serving(platform, app, value, change))
            platform.paas("ps:scale", "web=0", "-a", app)
    finally:
        platform.stop()
    print(summary("push to serving, cold", cold))
    print(summary("push to serving, warm", warm))
    print(summary("config:set to visible", config))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
