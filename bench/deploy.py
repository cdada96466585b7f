"""Deploy benchmark: push-to-serving time of the sample Flask app, cold and warm, and
config:set-to-visible time, as min/median/max over several runs; and where a push's time
goes, step by step, per run and as min/median/max.

Every step ends at an event the platform itself records, stamped when it happened (not
when the bench looked): a `remote:` line of the push (stamped as it arrives), an event in
the app's log, the release's status_at, a routes.json or applied.json write (a watcher
stats them every few ms and keeps each generation's time). The steps, in order:

  receive   push start -> the hook's `Build started` event (git's pack transfer, the
            hook's interpreter start and imports)
  build     -> `Compressing... done` (export, detect, compile, slug)
  image     -> `Building OCI image... done`
  release   -> the `Release vN created` event
  spawn     -> the dyno's supervisor says `Starting process` (the agent saw the release)
  boot      -> the dyno's first output line (container up, the app's interpreter started)
  ready     -> `State changed from starting to up` (readiness probe passed)
  routed    -> the router's applied.json names the generation that routes the new dyno
  settled   -> the release's status_at (old dynos drained, release succeeded)
  returned  -> `git push` exits

Usage: .venv/bin/python bench/deploy.py [RUNS]   (run as root or a user with haproxy)
"""

from __future__ import annotations

import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from platform_harness import Platform, commit, wait_for

from paas.host.jsonfile import read_json

STEPS = (
    "receive",
    "build",
    "image",
    "release",
    "spawn",
    "boot",
    "ready",
    "routed",
    "settled",
    "returned",
)
WATCH_SECONDS = 0.003  # how often the route files are stat'ed during a push


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


@dataclass
class RouteWatch:
    """Each generation of routes.json (with the app's servers) and applied.json, with the
    time it was written, seen by stat'ing both files every WATCH_SECONDS."""

    router_dir: Path
    app: str
    published: list[tuple[float, int, frozenset[str]]] = field(default_factory=list)
    applied: list[tuple[float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        seen: dict[str, float] = {}
        while not self.stop.is_set():
            for name in ("routes.json", "applied.json"):
                path = self.router_dir / name
                try:
                    stamp = path.stat().st_mtime
                except OSError:
                    continue
                if seen.get(name) != stamp:
                    seen[name] = stamp
                    self.record(name, stamp, read_json(path) or {})
            self.stop.wait(WATCH_SECONDS)

    def record(self, name: str, stamp: float, data: dict[str, object]) -> None:
        generation = data.get("generation")
        if not isinstance(generation, int):
            return
        if name == "applied.json":
            self.applied.append((stamp, generation))
            return
        apps = data.get("apps")
        servers: frozenset[str] = frozenset()
        for entry in apps if isinstance(apps, list) else []:
            if isinstance(entry, dict) and entry.get("app") == self.app:
                found = entry.get("servers")
                listed = found if isinstance(found, list) else []
                servers = frozenset(str(s.get("name")) for s in listed if isinstance(s, dict))
        self.published.append((stamp, generation, servers))

    def routed_at(self, before: frozenset[str]) -> float | None:
        """When HAProxy first served a generation routing a server not in `before`."""
        self.stop.set()
        self.thread.join(5)
        wanted = next((g for _, g, s in self.published if s - before), None)
        if wanted is None:
            return None
        return next((t for t, g in self.applied if g >= wanted), None)

    def servers_now(self) -> frozenset[str]:
        return self.published[-1][2] if self.published else frozenset()


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def log_events(platform: Platform, app: str, after: int) -> list[tuple[float, str, str, str]]:
    """(time, source, process, message) of the app's log lines after id `after`."""
    db = sqlite3.connect(platform.home / "logs.db")
    try:
        rows = db.execute(
            "SELECT ts, source, process, message FROM lines WHERE app = ? AND id > ? ORDER BY id",
            (app, after),
        ).fetchall()
    finally:
        db.close()
    return [(epoch(ts), source, process, message) for ts, source, process, message in rows]


def last_log_id(platform: Platform) -> int:
    db = sqlite3.connect(platform.home / "logs.db")
    try:
        return int(db.execute("SELECT COALESCE(MAX(id), 0) FROM lines").fetchone()[0])
    finally:
        db.close()


def release_settled(platform: Platform, app: str) -> tuple[int, float]:
    db = sqlite3.connect(platform.home / "state.db")
    try:
        version, status_at = db.execute(
            "SELECT r.version, r.status_at FROM releases r JOIN apps a ON a.id = r.app_id "
            "WHERE a.name = ? ORDER BY r.version DESC LIMIT 1",
            (app,),
        ).fetchone()
    finally:
        db.close()
    return int(version), float(status_at)


def traced_deploy(
    platform: Platform, app: str, repo: Path, message: str, runs: list[dict[str, float | None]]
) -> float:
    """Pushes `repo`, waits until the router serves `message`; returns the seconds that
    took (as timed_until_serving) and appends each step's end, in seconds after the push
    started, to `runs`."""
    watch = RouteWatch(platform.home / "router", app)
    time.sleep(WATCH_SECONDS * 3)  # the watcher has read the current generation
    before, cursor = watch.servers_now(), last_log_id(platform)
    lines: list[tuple[float, str]] = []
    clock = time.monotonic()
    started = time.time()
    process = subprocess.Popen(
        ["git", "push", platform.git_url(app), "main"],
        cwd=repo,
        env=platform.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for text in process.stderr:
        lines.append((time.time(), text))
    if process.wait(300) != 0:
        raise SystemExit("push failed:\n" + "".join(text for _, text in lines))
    returned = time.time()
    wait_for(lambda: (platform.get_json(app) or {}).get("message") == message, 120, "serving")
    took = time.monotonic() - clock
    routed = watch.routed_at(before)
    version, settled = release_settled(platform, app)
    events = log_events(platform, app, cursor)

    def arrived(text: str) -> float | None:
        return next((t for t, got in lines if text in got), None)

    def event(process: str, text: str, source: str | None = None) -> float | None:
        found = (t for t, s, p, m in events if p == process and text in m and source in (None, s))
        return next(found, None)

    ends = {
        "receive": event("api", "Build started"),
        "build": arrived("Compressing... done"),
        "image": arrived("Building OCI image... done"),
        "release": event("api", f"Release v{version} created"),
        "spawn": event("web.1", "Starting process with command"),
        "boot": event("web.1", "", source="app"),
        "ready": event("web.1", "State changed from starting to up"),
        "routed": routed,
        "settled": settled,
        "returned": returned,
    }
    runs.append({step: None if end is None else end - started for step, end in ends.items()})
    return took


def durations(ends: dict[str, float | None]) -> dict[str, float | None]:
    """Each step's own time: its end minus the latest earlier step's end before it (a
    cold push's release settles once its dyno is up, before the router has it)."""
    found: dict[str, float | None] = {}
    earlier = [0.0]
    for step in STEPS:
        end = ends[step]
        if end is None:
            found[step] = None
            continue
        found[step] = end - max([e for e in earlier if e <= end], default=0.0)
        earlier.append(end)
    return found


def row(label: str, values: dict[str, float | None]) -> str:
    cells = "".join(f"{'-' if v is None else f'{v:.3f}':>9}" for v in values.values())
    return f"  {label:<10}{cells}"


def breakdown(name: str, runs: list[dict[str, float | None]]) -> list[str]:
    header = "".join(f"{step:>9}" for step in STEPS)
    lines = [
        f"{name}: each step's own time (s), per run, then min/median/max",
        f"  {'':<10}{header}",
    ]
    steps = [durations(ends) for ends in runs]
    lines += [row(f"run {i + 1}", s) for i, s in enumerate(steps)]
    picks: tuple[tuple[str, Callable[[list[float]], float]], ...] = (
        ("min", min),
        ("median", statistics.median),
        ("max", max),
    )
    for label, pick in picks:
        values: dict[str, float | None] = {}
        for step in STEPS:
            known = [v for s in steps if (v := s[step]) is not None]
            values[step] = pick(known) if known else None
        lines.append(row(label, values))
    return lines


def main(runs: int) -> None:
    platform = Platform()
    cold, warm, config = [], [], []
    cold_steps: list[dict[str, float | None]] = []
    warm_steps: list[dict[str, float | None]] = []
    try:
        platform.start()
        for run in range(runs):
            app = f"bench-{run}"
            platform.paas("apps:create", app, "--no-remote")
            repo = platform.new_repo(f"repo-{run}")
            # A file of its own, so no run's slug is another's: slugs are content-addressed,
            # and a tree already stored skips its copy into the slug store.
            (repo / "run.txt").write_text(f"bench run {run}\n")
            commit(repo, "this run's own file")
            cold.append(traced_deploy(platform, app, repo, "Hello from paas", cold_steps))
            app_py = repo / "app.py"
            app_py.write_text(app_py.read_text().replace("Hello from paas", "Hello again"))
            commit(repo, "warm redeploy")
            warm.append(traced_deploy(platform, app, repo, "Hello again", warm_steps))
            value = f"config {run}"
            change = partial(config_set, platform, app, value)
            config.append(timed_until_serving(platform, app, value, change))
            platform.paas("ps:scale", "web=0", "-a", app)
    finally:
        platform.stop()
    print(summary("push to serving, cold", cold))
    print(summary("push to serving, warm", warm))
    print(summary("config:set to visible", config))
    for line in breakdown("cold push", cold_steps) + breakdown("warm push", warm_steps):
        print(line)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
