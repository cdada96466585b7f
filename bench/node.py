"""Node.js deploy benchmark: push-to-serving time of a Node app (npm, a dependency and a
pruned devDependency, a build script; tests/integration/nodeapps.py), cold (a new app:
packages and node_modules fetched; Node.js itself only by the first run, later ones find it
in the host's shared runtime store) and warm (a code change, lockfile unchanged:
nothing installed), as min/median/max, with each push's steps as bench/deploy.py shows
them. Target: warm <= 2 s.

Usage: .venv/bin/python bench/node.py [RUNS]   (as root: the build runs on the stack)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

import nodeapps
from deploy import breakdown, summary, traced_deploy
from platform_harness import Platform, commit


def main(runs: int) -> None:
    platform = Platform()
    cold: list[float] = []
    warm: list[float] = []
    cold_steps: list[dict[str, float | None]] = []
    warm_steps: list[dict[str, float | None]] = []
    try:
        platform.start()
        for run in range(runs):
            app = f"node-bench-{run}"
            platform.paas("apps:create", app, "--no-remote")
            repo = nodeapps.write_app(platform.base, f"repo-{run}", "npm", message="cold")
            # A file of its own, as in bench/deploy.py: an identical tree's slug is already
            # stored, and its copy into the slug store would be skipped.
            (repo / "run.txt").write_text(f"node bench run {run}\n")
            commit(repo, "this run's own file")
            cold.append(traced_deploy(platform, app, repo, "cold", cold_steps))
            (repo / "server.js").write_text(nodeapps.server_js("warm"))
            commit(repo, "warm redeploy")
            warm.append(traced_deploy(platform, app, repo, "warm", warm_steps))
            platform.paas("ps:scale", "web=0", "-a", app)
    finally:
        platform.stop()
    print(summary("node push to serving, cold", cold))
    print(summary("node push to serving, warm", warm))
    for line in breakdown("cold push", cold_steps) + breakdown("warm push", warm_steps):
        print(line)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
