"""Growth benchmark: what 1,000 configured apps cost the control plane when almost none
of them runs.

The platform gets one live app (the few-line server of bench/density.py, web=1) and
APPS - 1 seeded ones, written straight into the state database in one transaction each
batch: each seeded app has a release, a formation of web=0 and worker=0 and three dyno
slots (crash bookkeeping of web.1, web.2, worker.1): 1,000 apps, 2,000 formation rows,
3,000 dyno records. Then it measures, p50 / p99 (and min / max) over many samples:

  - the agent's idle tick: `Agent.tick()` of an agent on the platform's own PAAS_HOME,
    run in this process while the platform's agent is stopped (SIGSTOP: two agents must
    not reconcile the same dynos; nothing is planned, so nothing would be done), and the
    CPU the platform's own agent burns idling;
  - the API: `GET /apps`, `GET /apps/X/formation`, `GET /apps/X/dynos` over HTTP, and the
    CLI commands `paas apps` / `paas ps` end to end (process start included);
  - a route change: `ps:scale web=2` of the live app until HAProxy serves the new dyno,
    with the part from the dyno's readiness (its `up` file) to being served.

Targets: idle tick <= 20 ms; API p99 <= 50 ms; route change <= 100 ms.

Usage: .venv/bin/python bench/growth.py [APPS] [profile|route]   (profile: print cProfile of
the tick's top functions; route: only the route changes, with the router's state on failure)
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import signal
import sqlite3
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from benchkit import running_platform
from density import all_procs, answers, descendants, healthy, tiny_app
from platform_harness import Platform, wait_for

from paas.domain.models import Release
from paas.domain.settings import from_env
from paas.dynos.runtime import ProcessRuntime
from paas.host.clock import SystemClock
from paas.host.jsonfile import read_json
from paas.reconcile.agent import Agent, supervisor_environment
from paas.server import build_agent
from paas.state.logs import LogStore
from paas.state.store import Store, now_iso

APPS = 1000
LIVE = "live"
TICKS = 200
TICK_BUDGET = 60.0  # seconds of ticking at most (at least 20 ticks): a slow tick is the finding
API_CALLS = 300
CLI_CALLS = 30
ROUTE_RUNS = 10
BATCH = 100


# --- seeding ------------------------------------------------------------------------------
def seed(store: Store, count: int, domain: str) -> None:
    """`count` apps, each with a release, web=0 worker=0 and three dyno slots."""
    for start in range(0, count, BATCH):
        names = [f"idle{i:04d}" for i in range(start, min(start + BATCH, count))]
        apps = [store.create_app(name, "debian-13", domain=domain) for name in names]
        with store.transaction() as db:
            for app in apps:
                db.insert_release(
                    Release(
                        id=str(uuid.uuid4()),
                        app_id=app.id,
                        version=1,
                        description="seeded",
                        artifact="none",
                        config={"SEEDED": "1"},
                        process_types={"web": "python3 server.py", "worker": "sleep 1000"},
                        created_at=now_iso(),
                    ),
                )
                db.set_quantity(app, "web", 0)
                db.set_quantity(app, "worker", 0)
                for slot in ("web.1", "web.2", "worker.1"):
                    db.execute(
                        "INSERT INTO dyno_slots (app_id, name, crash_count, last_exit_status)"
                        " VALUES (?, ?, 1, 0)",
                        (app.id, slot),
                    )


# --- figures ------------------------------------------------------------------------------
def percentiles(name: str, samples: list[float], target_ms: float | None = None) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    verdict = "" if target_ms is None else f"  target {target_ms:g} ms: "
    if target_ms is not None:
        verdict += "met" if p99 <= target_ms else "MISSED"
    return (
        f"{name:<40} p50 {statistics.median(ms):7.1f} ms  p99 {p99:7.1f} ms"
        f"  (min {ms[0]:.1f}, max {ms[-1]:.1f}, n={len(ms)}){verdict}"
    )


def timed(action: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def api_get(platform: Platform, path: str) -> Callable[[], object]:
    def call() -> object:
        status, body = platform.request("GET", path)
        if status != 200:
            raise SystemExit(f"GET {path}: {status} {body}")
        return body

    return call


def cli(platform: Platform, *args: str) -> Callable[[], object]:
    return lambda: platform.paas(*args)


# --- the agent ----------------------------------------------------------------------------
def platform_agent_pid(platform: Platform) -> int:
    """The `paas agent` child of the server."""
    assert platform.server is not None
    procs = all_procs()
    for p in descendants(platform.server.pid, procs):
        cmdline = Path(f"/proc/{p.pid}/cmdline").read_bytes().split(b"\0")
        if b"agent" in cmdline and p.ppid == platform.server.pid:
            return p.pid
    raise SystemExit("no agent process found under the server")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_agent(platform: Platform) -> Agent:
    settings = from_env(platform.env)
    runtime = ProcessRuntime(settings.dynos_dir, supervisor_environment(settings))
    store, logs = Store(settings.db_path), LogStore(settings.logs_db_path)
    return build_agent(settings, store, logs, runtime, SystemClock())


def pause_between_ticks(pid: int, agent: Agent) -> None:
    """SIGSTOPs the platform's agent where it holds no SQLite lock: stopped inside a read
    it would block this agent's reads (`locking protocol`). Tries again a few times; the
    first tick of this agent also reads what the platform's agent published."""
    for _ in range(10):
        os.kill(pid, signal.SIGSTOP)
        try:
            agent.tick()
            return
        except sqlite3.OperationalError:
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.2)  # let it finish the read it was stopped in
    raise SystemExit("could not pause the platform's agent outside a database read")


def measure_ticks(platform: Platform, profile: bool) -> tuple[list[float], float]:
    """Idle tick times of an agent in this process, with the platform's own agent stopped;
    and the CPU share the platform's agent used while idling before that."""
    pid = platform_agent_pid(platform)
    window = 10.0
    before = cpu_seconds(pid)
    time.sleep(window)  # a measurement window
    idle_share = (cpu_seconds(pid) - before) / window
    agent = bench_agent(platform)
    pause_between_ticks(pid, agent)
    try:
        samples: list[float] = []
        deadline = time.monotonic() + TICK_BUDGET
        while len(samples) < TICKS and (len(samples) < 20 or time.monotonic() < deadline):
            samples += timed(agent.tick, 1)
        if profile:
            profiler = cProfile.Profile()
            profiler.runcall(lambda: [timed(agent.tick, 1) for _ in range(5)])
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    finally:
        os.kill(pid, signal.SIGCONT)
        agent.prober.keep_only(set())
    return samples, idle_share


# --- route change -------------------------------------------------------------------------
@dataclass(frozen=True)
class RouteChange:
    """One `ps:scale web=2`: seconds to served, and the route part split at the files the
    agent and the router write (None where a file was not found)."""

    took: float
    up_to_served: float | None  # the dyno's readiness (its `up` file) to served
    agent: float | None  # `up` to the agent's write of routes.json
    router: float | None  # routes.json to the router's applied.json
    served: float | None  # applied.json to the first answer seen (polled every 2 ms)


def route_change(platform: Platform) -> RouteChange:
    """`ps:scale web=2` (via the API) until the new dyno answers through the router."""
    before = {d.get("id") for d in platform.dyno_statuses(LIVE)}
    started_wall, started = time.time(), time.perf_counter()
    status, body = platform.request_json(
        "PATCH", f"/apps/{LIVE}/formation", {"updates": [{"type": "web", "quantity": 2}]}
    )
    if status != 200:
        raise SystemExit(f"scale: {status} {body}")
    try:
        # Polled every 2 ms, not wait_for's 0.1 s: the part measured is under 100 ms.
        served_by(platform, "web.2", 120)
    except AssertionError:
        log = (platform.base / "server.log").read_text(errors="replace")[-3000:]
        applied = read_json(platform.home / "router" / "applied.json") or {}
        published = read_json(platform.home / "router" / "routes.json") or {}
        raise SystemExit(
            f"web.2 not served in 120 s; routes.json generation {published.get('generation')},"
            f" applied {applied.get('generation')}; dynos {platform.dyno_statuses(LIVE)};"
            f" server log tail:\n{log}"
        ) from None
    took = time.perf_counter() - started
    served_wall = started_wall + took
    new = [d for d in platform.dyno_statuses(LIVE) if d.get("id") not in before]
    stamps = [
        mtime(platform.home / "dynos" / str(new[0]["id"]) / "up") if new else None,
        mtime(platform.home / "router" / "routes.json"),
        mtime(platform.home / "router" / "applied.json"),
        served_wall,
    ]
    # A part is unknown when a later write replaced a file (its mtime is then after the end).
    parts = [
        b - a if a is not None and b is not None and b >= a else None for a, b in pairwise(stamps)
    ]
    up = served_wall - stamps[0] if stamps[0] is not None else None
    platform.request_json(
        "PATCH", f"/apps/{LIVE}/formation", {"updates": [{"type": "web", "quantity": 1}]}
    )
    wait_for(
        lambda: sum(d.get("state") != "exited" for d in platform.dyno_statuses(LIVE)) == 1,
        60,
        "web.2 to stop",
    )
    return RouteChange(took, up, *parts)


def mtime(path: Path) -> float | None:
    return path.stat().st_mtime if path.exists() else None


def served_by(platform: Platform, dyno: str, timeout: float) -> None:
    """Returns once a request through the router is answered by ``dyno``."""
    deadline = time.monotonic() + timeout
    while dyno not in answers(platform, LIVE, 2):
        if time.monotonic() > deadline:
            raise AssertionError(f"{dyno} not served through the router in {timeout} s")
        time.sleep(0.002)


def main(count: int, mode: str) -> None:
    with running_platform(PAAS_STOP_GRACE="2") as platform:
        tiny_app(platform, LIVE)
        wait_for(lambda: healthy(platform, LIVE, 1), 120, f"{LIVE} to serve")
        store = Store(from_env(platform.env).db_path)
        started = time.monotonic()
        seed(store, count - 1, platform.env["PAAS_DOMAIN"])
        print(
            f"seeded {count - 1} apps in {time.monotonic() - started:.1f}s "
            f"({len(store.apps())} apps in the store); load {os.getloadavg()}"
        )
        if mode != "route":
            control_plane(platform, mode == "profile")
        print_route_changes([route_change(platform) for _ in range(ROUTE_RUNS)])
        routes = read_json(platform.home / "router" / "routes.json") or {}
        apps = routes.get("apps")
        print(
            f"routes.json: {len(json.dumps(routes))} bytes,"
            f" {len(apps) if isinstance(apps, list) else 0} apps;"
            f" {os.cpu_count()} CPUs, load {os.getloadavg()}"
        )


def control_plane(platform: Platform, profile: bool) -> None:
    """The idle tick, and the API and CLI calls."""
    ticks, idle_share = measure_ticks(platform, profile)
    idle = "idle0500"
    lines = [
        percentiles("agent idle tick (in-process)", ticks, 20),
        f"{'platform agent CPU while idle':<40} {100 * idle_share:5.1f} % of one CPU",
        percentiles("GET /apps", timed(api_get(platform, "/apps"), API_CALLS), 50),
        percentiles(
            f"GET /apps/{idle}/formation",
            timed(api_get(platform, f"/apps/{idle}/formation"), API_CALLS),
            50,
        ),
        percentiles(
            f"GET /apps/{idle}/dynos (paas ps)",
            timed(api_get(platform, f"/apps/{idle}/dynos"), API_CALLS),
            50,
        ),
        percentiles(
            f"GET /apps/{LIVE}/dynos (1 up: CPU sample)",
            timed(api_get(platform, f"/apps/{LIVE}/dynos"), 20),
        ),
        percentiles(
            "`paas apps` (CLI, process start incl.)", timed(cli(platform, "apps"), CLI_CALLS)
        ),
        percentiles(
            f"`paas ps -a {idle}` (CLI)", timed(cli(platform, "ps", "-a", idle), CLI_CALLS)
        ),
    ]
    for line in lines:
        print(line, flush=True)


def print_route_changes(changes: list[RouteChange]) -> None:
    # No target for the whole: it holds a container start (bench/containers.py: 0.1 s)
    # and the app's boot; the route change is the part from readiness to served.
    print(percentiles("ps:scale web=2 -> new dyno served", [c.took for c in changes]))
    for label, values, target in (
        ("  of which: dyno up -> served (route)", [c.up_to_served for c in changes], 100),
        ("    up -> routes.json (agent)", [c.agent for c in changes], None),
        ("    routes.json -> applied (router)", [c.router for c in changes], None),
        ("    applied -> first answer seen", [c.served for c in changes], None),
    ):
        known = [v for v in values if v is not None]
        if known:
            print(percentiles(label, known, target))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else APPS, sys.argv[2] if len(sys.argv) > 2 else "")
