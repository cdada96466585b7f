"""One-off dyno benchmark: `paas run -- true` from the CLI's start to its exit, as
min/median/max over RUNS runs, and where that time goes, step by step.

A platform is started with the harness, an app whose Procfile runs on the stack's own
tools is pushed, then `paas run -a APP -- true` runs RUNS times, one after the other (each
with its stdin a pipe, so without a terminal: the bench has none). The steps end at events
the platform records itself, stamped when they happened, relative to the CLI's start:

  request   the API's `Starting process ... as run.N` event (CLI start-up, its imports,
            the POST)
  pickup    the agent's `Starting process of release vN` (its wake on the database
            change, placement)
  attach    the supervisor's `Starting process with command` (the launcher's fork, the
            supervisor's start, the WebSocket and relay's connect)
  exited    the supervisor's `Process exited with status 0` (container set-up and start,
            `true`, the exit status to the client; written after the container's cleanup)
  returned  the CLI exits (it does so on the exit status, before the cleanup)

Usage: .venv/bin/python bench/run.py [RUNS]   (as root: dynos run in containers)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy import last_log_id, log_events
from platform_harness import PAAS, Platform, commit, git, running, wait_for

APP = "bench-run"
STEPS = ("request", "pickup", "attach", "exited", "returned")


def deploy(platform: Platform) -> None:
    repo = platform.base / APP
    repo.mkdir()
    (repo / "Procfile").write_text("web: python3 -m http.server $PORT\n")
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "a Procfile app")
    platform.paas("apps:create", APP, "--no-remote")
    pushed = platform.push(APP, repo)
    if pushed.returncode != 0:
        raise SystemExit(f"push failed: {pushed.stderr}")


def one_run(platform: Platform) -> tuple[float, dict[str, float | None]]:
    """Seconds from the CLI's start to its exit, and each step's end in seconds after it."""
    cursor = last_log_id(platform)
    started = time.time()
    clock = time.monotonic()
    result = subprocess.run(
        [str(PAAS), "run", "-a", APP, "--", "true"],
        env=platform.env,
        stdin=subprocess.PIPE,
        capture_output=True,
        timeout=60,
    )
    took = time.monotonic() - clock
    if result.returncode != 0:
        raise SystemExit(f"paas run failed ({result.returncode}): {result.stderr!r}")
    marks = {
        "request": ("api", "as run."),
        "pickup": ("run.", "Starting process of release"),
        "attach": ("run.", "Starting process with command"),
        "exited": ("run.", "Process exited with status 0"),
    }
    wait_for(
        lambda: any("Process exited" in e[3] for e in log_events(platform, APP, cursor)),
        10,
        "the dyno's exit in the log",
    )
    events = log_events(platform, APP, cursor)
    steps: dict[str, float | None] = {"returned": took}
    for step, (process, text) in marks.items():
        found = [t for t, _, p, m in events if p.startswith(process) and text in m]
        steps[step] = found[0] - started if found else None
    return took, steps


def summary(name: str, samples: list[float]) -> str:
    return (
        f"{name:<10} min {min(samples):6.3f}s  median {statistics.median(samples):6.3f}s  "
        f"max {max(samples):6.3f}s  (n={len(samples)})"
    )


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with running() as platform:
        deploy(platform)
        one_run(platform)  # warm: the app layer, the page cache, the launcher
        totals, traces = [], []
        for _ in range(runs):
            took, steps = one_run(platform)
            totals.append(took)
            traces.append(steps)
            time.sleep(0.3)  # the previous dyno's cleanup is not this run's cost
    print(summary("paas run -- true", totals))
    print("step ends, seconds after the CLI started:")
    for step in STEPS:
        values = [v for t in traces if (v := t[step]) is not None]
        if values:
            print("  " + summary(step, values))


if __name__ == "__main__":
    main()
