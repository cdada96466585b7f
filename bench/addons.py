"""Add-on benchmark: `paas addons:create postgresql` until DATABASE_URL is visible to the
app, in the environment of a running dyno answering through the router; min/median/max
over several runs, the first (cold: the cluster is initialized and started) apart.

Each run: create the add-on (the CLI's own time is reported too), then poll the app's
`/` until the dyno answering says DATABASE_URL is set, then destroy the add-on and wait
until the app serves without it (not timed). The app is examples/flask-hello with a line
that shows whether DATABASE_URL is set.

Usage: .venv/bin/python bench/addons.py [RUNS]   (as root: dynos in containers)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from benchkit import running_platform
from deploy import push, summary
from platform_harness import Platform, commit, wait_for

APP = "addon-bench"
APP_PY = '''"""The sample app, saying whether an add-on's URL is in its environment."""

import os

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def hello():
    return jsonify(database=bool(os.environ.get("DATABASE_URL")), dyno=os.environ.get("DYNO"))
'''


def visible(platform: Platform, expected: bool) -> bool:
    status, text = platform.get(APP)
    return status == 200 and json.loads(text).get("database") is expected


def one_run(platform: Platform) -> tuple[float, float]:
    """(CLI returned, visible in a dyno) in seconds from the start of `addons:create`."""
    start = time.monotonic()
    created = json.loads(platform.paas("addons:create", "postgresql", "-a", APP, "--json").stdout)
    returned = time.monotonic() - start
    wait_for(lambda: visible(platform, True), 120, "DATABASE_URL in a dyno")
    seen = time.monotonic() - start
    platform.paas("addons:destroy", created["name"], "--confirm", APP)
    wait_for(lambda: visible(platform, False), 120, "the app without DATABASE_URL")
    return returned, seen


def main(runs: int) -> None:
    with running_platform() as platform:
        platform.paas("apps:create", APP, "--no-remote")
        repo = platform.new_repo(f"{APP}-repo")
        (repo / "app.py").write_text(APP_PY)
        commit(repo, "shows DATABASE_URL")
        push(platform, APP, repo)
        wait_for(lambda: visible(platform, False), 120, f"{APP} to serve")
        results = [one_run(platform) for _ in range(runs + 1)]
    cold, warm = results[0], results[1:]
    print(f"cold (first) run: CLI returned {cold[0]:.2f} s, visible {cold[1]:.2f} s")
    print(summary("addons:create postgresql, CLI returned", [r[0] for r in warm]))
    print(summary("addons:create postgresql to DATABASE_URL in a dyno", [r[1] for r in warm]))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
