"""Scale benchmark: `paas ps:scale web=10` on the sample Flask app running one web dyno,
timed until each of the ten web dynos has served a request through the router; then
`ps:scale web=1`, timed until only one dyno is routed. Min/median/max over several runs,
and where the scale-up time goes (from what the agent, the dynos and the router write
under PAAS_HOME). Target: scale-up within 2 s.

Usage: .venv/bin/python bench/scale.py [RUNS]   (run as root or a user with haproxy)
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchkit import deploy_sample, routed_servers, routes_applied, running_platform, setting
from deploy import summary
from platform_harness import Platform, wait_for

from paas.host.jsonfile import read_json

APP = "scale"
UP_TO = 10
TIMEOUT = 60.0  # bound of each measured wait; far above the 2 s target
STREAK = 20  # this many responses in a row from one dyno: nothing else is routed

# Scale-up milestones, in order, and how each is named in the breakdown.
MILESTONES = {
    "cli": "`paas ps:scale` returned",
    "spawned": "dynos created by the agent",
    "running": "dyno processes started",
    "up": "readiness probes passed",
    "published": "routes.json lists all ten",
    "applied": "router applied it (HAProxy)",
    "served": "each dyno served a request",
}


def web_dynos(platform: Platform, app: str) -> dict[str, Path]:
    """Dyno id -> directory, for the app's web dynos on disk (running or not)."""
    found = {}
    for directory in (platform.home / "dynos").iterdir():
        spec = read_json(directory / "spec.json") or {}
        if spec.get("app") == app and spec.get("type") == "web":
            found[directory.name] = directory
    return found


def mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def first_and_last(values: list[float | None], count: int) -> tuple[float, float] | None:
    known = [v for v in values if v is not None]
    return (min(known), max(known)) if len(known) == count else None


class Clock:
    """Seconds since the command was issued, on the wall clock files are stamped with."""

    def __init__(self) -> None:
        self.wall = time.time()
        self.started = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.started

    def since(self, stamp: object) -> float | None:
        """`stamp` as read from a JSON file: a number, or None when not there (yet)."""
        return stamp - self.wall if isinstance(stamp, int | float) else None


def poll_router(platform: Platform, app: str, done: Callable[[str, float], bool]) -> None:
    """GET the app through the router back to back, passing each answering dyno's name
    to `done` with the time, until `done` says so; bounded by TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            body = platform.get_json(app)
        except OSError:
            body = None
        if body and done(str(body["dyno"]), time.monotonic()):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {TIMEOUT}s polling {app} through the router")
        if not body:
            time.sleep(0.01)


Milestones = dict[str, tuple[float, float] | None]


def scale_up(platform: Platform) -> tuple[float, Milestones]:
    """Seconds until all ten dynos served a request, and each milestone as (first, last)
    of the nine new dynos, in seconds after the command (None when not observed)."""
    before = web_dynos(platform, APP)
    serving = {
        (read_json(d / "spec.json") or {}).get("name")
        for d in before.values()
        if (read_json(d / "status.json") or {}).get("state") == "running"
    }
    clock = Clock()
    platform.paas("ps:scale", f"web={UP_TO}", "-a", APP)
    cli = clock.now()
    seen: dict[str, float] = {}

    def all_served(dyno: str, at: float) -> bool:
        seen.setdefault(dyno, at - clock.started)
        return len(seen) >= UP_TO

    poll_router(platform, APP, all_served)
    new = [d for i, d in web_dynos(platform, APP).items() if i not in before]
    routes = platform.home / "router" / "routes.json"
    published = clock.since(mtime(routes)) if len(routed_servers(platform, APP)) == UP_TO else None
    applied = None
    if published is not None and routes_applied(platform):
        applied = clock.since(mtime(platform.home / "router" / "applied.json"))
    grown = UP_TO - 1
    return max(seen.values()), {
        "cli": (cli, cli),
        "spawned": first_and_last([clock.since(mtime(d / "spec.json")) for d in new], grown),
        "running": first_and_last(
            [clock.since((read_json(d / "status.json") or {}).get("started_at")) for d in new],
            grown,
        ),
        "up": first_and_last([clock.since(mtime(d / "up")) for d in new], grown),
        "published": None if published is None else (published, published),
        "applied": None if applied is None else (applied, applied),
        "served": first_and_last([t for d, t in seen.items() if d not in serving], grown),
    }


def scale_down(platform: Platform) -> float:
    """Seconds from `ps:scale web=1` until STREAK responses in a row came from one dyno
    (counted from the first of them); then waits for the other dynos to exit."""
    clock = Clock()
    platform.paas("ps:scale", "web=1", "-a", APP)
    streak: list[tuple[str, float]] = []

    def one_routed(dyno: str, at: float) -> bool:
        if streak and streak[-1][0] != dyno:
            streak.clear()
        streak.append((dyno, at))
        return len(streak) >= STREAK and len(routed_servers(platform, APP)) == 1

    poll_router(platform, APP, one_routed)
    took = streak[0][1] - clock.started

    def others_gone() -> bool:
        states = [d.get("state") for d in platform.dyno_statuses(APP)]
        return sum(state != "exited" for state in states) == 1

    wait_for(others_gone, TIMEOUT, "the scaled-down dynos to exit")
    return took


def breakdown(runs: list[Milestones]) -> list[str]:
    lines = [
        "where scale 1->10 time goes (median over runs, seconds after the command;"
        " first / last of the nine new dynos):"
    ]
    for key, label in MILESTONES.items():
        marks = [run[key] for run in runs]
        known = [m for m in marks if m is not None]
        if len(known) < len(marks):
            lines.append(f"  {label:<32} not observed in {len(marks) - len(known)} run(s)")
            continue
        first = statistics.median(m[0] for m in known)
        last = statistics.median(m[1] for m in known)
        lines.append(f"  {label:<32} {first:6.2f} / {last:6.2f}")
    return lines


def main(runs: int) -> None:
    ups: list[float] = []
    downs: list[float] = []
    marks: list[Milestones] = []
    with running_platform() as platform:
        deploy_sample(platform, APP)
        context = setting(platform, APP)
        for _ in range(runs):
            took, milestones = scale_up(platform)
            ups.append(took)
            marks.append(milestones)
            downs.append(scale_down(platform))
    print(context)
    print(summary(f"scale 1->{UP_TO}, all serving", ups))
    print(summary(f"scale {UP_TO}->1, one routed", downs))
    for line in breakdown(marks):
        print(line)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
