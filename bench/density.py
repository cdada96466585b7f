"""Density benchmark: how many tiny web dynos one host holds, and what each costs the
platform itself as against the app.

It deploys APPS apps whose only process is a few-line HTTP server (Python, socket module
only: it answers every request with its dyno's name), resizes their web dynos to 64M and
scales them up app by app until TARGET dynos are healthy, i.e. each one has answered a
request through the router. If a step does not get there within STEP_TIMEOUT it stops and
says how many were healthy and what the dynos and the host said.

Then, with every dyno idle, it reads each process's unique memory (USS: the Private_*
lines of /proc/PID/smaps_rollup) and CPU time, and splits them into:
  - the platform's, per dyno: the supervisor (forked by the launcher, so code it did not
    write to stays shared), tini (pid 1 in the container, the supervisor's child) and any
    OCI runtime process of the dyno (none once it started the container detached: one is
    counted wherever it runs, under the supervisor or not, by the dyno id in its command
    line); plus HAProxy's growth per server entry, and the host's kernel memory per dyno
    (namespace, veth, mounts, loop device; host-wide, so noisy);
  - the app's: every other process in the dyno.
Fixed costs (API server, agent, launcher, HAProxy at no dyno) are shown apart, divided
by nothing. Target: the platform's own memory per dyno <= 5 MB USS.

Usage: .venv/bin/python bench/density.py [TARGET] [APPS]   (as root: dynos in containers)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from benchkit import running_platform
from platform_harness import Platform, cmdline, commit, wait_for

from paas.host.jsonfile import read_json

TARGET = 200
APPS = 10
SIZE = "64M"
STEP_TIMEOUT = 240.0  # seconds for one app's dynos to all be healthy
IDLE_SECONDS = 20.0  # the window idle CPU is measured over
TARGET_BYTES = 5_000_000  # the platform's own memory per dyno: 5 MB
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")
RUNTIMES = {"crun", "runc"}  # comm of the OCI runtimes
PLATFORM_HELPERS = {*RUNTIMES, "tini"}  # comm of the platform's own per-dyno helpers

SERVER = """\
import os, socket
name = os.environ["DYNO"].encode()
reply = b"HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (
    len(name), name)
listener = socket.socket(socket.AF_INET6 if ":" in os.environ.get("HOST", "") else socket.AF_INET)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("0.0.0.0", int(os.environ["PORT"])))
listener.listen(64)
while True:
    connection, _ = listener.accept()
    with connection:
        connection.settimeout(5)
        try:
            connection.recv(65536)
            connection.sendall(reply)
        except OSError:
            pass
"""


# --- reading /proc ------------------------------------------------------------------------
@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    comm: str
    cpu_ticks: int


def proc(pid: int) -> Proc | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return Proc(pid, int(fields[1]), comm, int(fields[11]) + int(fields[12]))


def all_procs() -> dict[int, Proc]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (p := proc(int(entry))) is not None:
            found[p.pid] = p
    return found


def descendants(root: int, procs: dict[int, Proc]) -> list[Proc]:
    children: dict[int, list[Proc]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def uss(pid: int) -> int:
    """Bytes of memory only this process maps (Private_Clean + Private_Dirty)."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1]) * 1024
    except OSError:
        return 0
    return total


def meminfo() -> dict[str, int]:
    values = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        values[key] = int(rest.split()[0]) * 1024
    return values


def kernel_bytes(info: dict[str, int]) -> int:
    """Kernel-side memory that grows with dynos: slab (netns, veth, mounts, inodes),
    kernel stacks and page tables."""
    return info["Slab"] + info["KernelStack"] + info["PageTables"]


def haproxy_workers(platform: Platform) -> list[int]:
    """The HAProxy master of this platform's router and its workers."""
    pidfiles = list(platform.home.rglob("haproxy.pid"))
    if not pidfiles:
        return []
    master = int(pidfiles[0].read_text().split()[0])
    procs = all_procs()
    return [master, *(p.pid for p in descendants(master, procs))]


# --- the apps -----------------------------------------------------------------------------
def tiny_app(platform: Platform, app: str) -> None:
    """`app` with a no-op buildpack and the few-line server as its web process."""
    buildpack = platform.buildpack(f"{app}-bp", {"detect": "echo tiny", "compile": "true"})
    platform.paas("apps:create", app, "--no-remote")
    platform.paas("config:set", f"BUILDPACK_URL={buildpack}", "-a", app)
    repo = platform.base / f"{app}-repo"
    repo.mkdir()
    (repo / "server.py").write_text(SERVER)
    (repo / "Procfile").write_text("web: exec python3 server.py\n")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True, timeout=30)
    commit(repo, f"{app} app")
    result = platform.push(app, repo)
    if result.returncode != 0:
        raise SystemExit(f"push of {app} failed: {result.stderr[-2000:]}")
    platform.paas("ps:resize", f"web={SIZE}", "-a", app)


def answers(platform: Platform, app: str, count: int) -> set[str]:
    """The distinct dynos that answered `count` requests through the router (round robin:
    each routed dyno answers once per round)."""
    names = set()
    for _ in range(count):
        try:
            status, body = platform.get(app)
        except OSError:
            continue
        if status == 200:
            names.add(body.strip())
    return names


def healthy(platform: Platform, app: str, quantity: int) -> set[str]:
    return answers(platform, app, 2 * quantity)


def running_web(platform: Platform, apps: Iterable[str]) -> list[dict[str, object]]:
    wanted = set(apps)
    found = []
    for directory in (platform.home / "dynos").iterdir():
        spec = read_json(directory / "spec.json") or {}
        status = read_json(directory / "status.json") or {}
        web = spec.get("app") in wanted and spec.get("type") == "web"
        if web and status.get("pid") and status.get("state") == "running":
            found.append({**spec, **status})
    return found


def why_stuck(platform: Platform, app: str) -> str:
    states: dict[str, int] = {}
    for status in platform.dyno_statuses(app):
        key = f"{status.get('state')}/{status.get('exit_status')}"
        states[key] = states.get(key, 0) + 1
    log = platform.paas("logs", "-a", app, "-n", "15", check=False).stdout
    server_log = (platform.base / "server.log").read_text(errors="replace")[-1500:]
    available = meminfo()["MemAvailable"] / 2**30
    return (
        f"dyno states of {app} (state/exit): {states}; MemAvailable {available:.1f} GiB\n"
        f"app log tail:\n{log}\nserver log tail:\n{server_log}"
    )


# --- measuring ----------------------------------------------------------------------------
@dataclass
class Split:
    supervisor: list[int]  # USS bytes, one per dyno
    helpers: list[int]  # tini + any runtime process, one per dyno
    runtimes: list[int]  # how many OCI runtime processes, one per dyno
    app: list[int]  # the app's processes, one per dyno
    supervisor_ticks: list[int]  # CPU ticks over the idle window, one per dyno
    helper_ticks: list[int]
    app_ticks: list[int]


def split(dynos: list[dict[str, object]], window: float) -> Split:
    """Memory now, and CPU ticks spent over `window` seconds of idling, per dyno."""
    before = all_procs()
    time.sleep(window)  # a measurement window, not a wait for a state
    procs = all_procs()
    result = Split([], [], [], [], [], [], [])
    runtimes = [p for p in procs.values() if p.comm in RUNTIMES]
    runtime_lines = {p.pid: cmdline(p.pid) for p in runtimes}

    def spent(p: Proc) -> int:
        old = before.get(p.pid)
        return p.cpu_ticks - (old.cpu_ticks if old and old.comm == p.comm else 0)

    for dyno in dynos:
        pid = dyno["supervisor_pid"]
        assert isinstance(pid, int)
        supervisor = procs.get(pid)
        if supervisor is None:
            continue
        tree = descendants(pid, procs)
        helpers = [p for p in tree if p.comm in PLATFORM_HELPERS]
        app = [p for p in tree if p.comm not in PLATFORM_HELPERS]
        inside = {p.pid for p in tree}
        helpers += [  # a runtime of this dyno outside its supervisor's tree
            p for p in runtimes if p.pid not in inside and str(dyno["id"]) in runtime_lines[p.pid]
        ]
        result.runtimes.append(sum(1 for p in helpers if p.comm in RUNTIMES))
        result.supervisor.append(uss(pid))
        result.helpers.append(sum(uss(p.pid) for p in helpers))
        result.app.append(sum(uss(p.pid) for p in app))
        result.supervisor_ticks.append(spent(supervisor))
        result.helper_ticks.append(sum(spent(p) for p in helpers))
        result.app_ticks.append(sum(spent(p) for p in app))
    return result


def fixed_processes(platform: Platform) -> dict[str, int]:
    """USS of the per-platform processes: `paas server` and its tree, minus the dynos."""
    assert platform.server is not None
    procs = all_procs()
    tree = [procs[platform.server.pid], *descendants(platform.server.pid, procs)]
    usage: dict[str, int] = {}
    for p in tree:
        usage[p.comm] = usage.get(p.comm, 0) + uss(p.pid)
    return usage


def mib(values: list[int]) -> str:
    if not values:
        return "n/a"
    m = [v / 2**20 for v in values]
    return f"{min(m):6.2f} / {statistics.median(m):6.2f} / {max(m):6.2f} MiB"


def counts(values: list[int]) -> str:
    if not values:
        return "n/a"
    return f"{min(values)} / {statistics.median(values):g} / {max(values)}"


def cpu(ticks: list[int], window: float) -> str:
    if not ticks:
        return "n/a"
    pct = [100 * t / TICK / window for t in ticks]
    return f"{min(pct):5.2f} / {statistics.median(pct):5.2f} / {max(pct):5.2f} %"


# --- the run ------------------------------------------------------------------------------
def scale_up(
    platform: Platform, apps: list[str], target: int, log: Callable[[str], None]
) -> tuple[int, str | None]:
    """Scales app after app to its share of `target`; returns how many dynos were healthy
    and, when it stopped short, why."""
    per_app = -(-target // len(apps))
    total = 0
    for index, app in enumerate(apps):
        quantity = min(per_app, target - total)
        if quantity <= 0:
            break
        started = time.monotonic()
        platform.paas("ps:scale", f"web={quantity}", "-a", app)
        try:
            wait_for(
                lambda app=app, q=quantity: len(healthy(platform, app, q)) >= q,  # type: ignore[misc]
                STEP_TIMEOUT,
                f"{quantity} dynos of {app} to answer through the router",
            )
        except AssertionError:
            seen = len(healthy(platform, app, quantity))
            return total + seen, why_stuck(platform, app)
        total += quantity
        took = time.monotonic() - started
        log(
            f"  {app}: web={quantity} healthy in {took:5.1f}s, {total} dynos healthy; "
            f"MemAvailable {meminfo()['MemAvailable'] / 2**30:.1f} GiB; "
            f"load {os.getloadavg()[0]:.1f}"
        )
        del index
    return total, None


def main(target: int, app_count: int) -> None:
    def log(line: str) -> None:
        print(line, flush=True)

    with running_platform(PAAS_STOP_GRACE="2") as platform:
        apps = [f"tiny{i}" for i in range(app_count)]
        for app in apps:
            tiny_app(platform, app)
        for app in apps:
            wait_for(lambda app=app: healthy(platform, app, 1), 120, f"{app} to serve")  # type: ignore[misc]
        for app in apps:
            platform.paas("ps:scale", "web=0", "-a", app)
        wait_for(lambda: not running_web(platform, apps), 120, "the first dynos to stop")
        wait_for(lambda: all(not answers(platform, a, 1) for a in apps), 60, "no route")
        kernel_before = kernel_bytes(meminfo())
        haproxy_before = sum(uss(pid) for pid in haproxy_workers(platform))
        fixed = fixed_processes(platform)
        log(f"scaling {app_count} apps to {target} web dynos of {SIZE} in total")
        started = time.monotonic()
        healthy_count, stuck = scale_up(platform, apps, target, log)
        took = time.monotonic() - started
        if stuck is not None:
            log(f"STOPPED at {healthy_count} healthy dynos:\n{stuck}")
        dynos = running_web(platform, apps)
        haproxy_after = sum(uss(pid) for pid in haproxy_workers(platform))
        kernel_after = kernel_bytes(meminfo())
        measured = split(dynos, IDLE_SECONDS)
        report(
            platform,
            healthy_count,
            took,
            dynos,
            measured,
            fixed,
            (haproxy_after - haproxy_before, kernel_after - kernel_before),
        )


def report(
    platform: Platform,
    healthy_count: int,
    took: float,
    dynos: list[dict[str, object]],
    measured: Split,
    fixed: dict[str, int],
    growth: tuple[int, int],
) -> None:
    n = max(len(dynos), 1)
    haproxy_growth, kernel_growth = growth
    per_dyno = [s + h for s, h in zip(measured.supervisor, measured.helpers, strict=True)]
    median_platform = statistics.median(per_dyno) if per_dyno else 0
    # HAProxy's USS can shrink between the readings (a reload's new worker): never less than 0.
    own = median_platform + max(haproxy_growth, 0) / n
    print(
        f"\n{healthy_count} dynos healthy (answered through the router) after {took:.1f}s;"
        f" {len(dynos)} running; {os.cpu_count()} CPUs, load {os.getloadavg()}"
    )
    print("per dyno, min / median / max:")
    print(f"  platform: supervisor USS      {mib(measured.supervisor)}")
    print(f"  platform: tini + runtime USS  {mib(measured.helpers)}")
    print(f"  platform: OCI runtime procs   {counts(measured.runtimes)} per dyno")
    print(f"  platform: supervisor + helpers{mib(per_dyno)}")
    print(f"  platform: HAProxy growth      {haproxy_growth / n / 2**10:6.1f} KiB per server entry")
    print(
        f"  host kernel growth (all)      {kernel_growth / n / 2**20:6.2f} MiB per dyno"
        " (slab + stacks + page tables, host-wide: includes the app's and other helpers')"
    )
    print(f"  app: its processes' USS       {mib(measured.app)}")
    window = IDLE_SECONDS
    print(
        f"  idle CPU over {window:.0f}s: supervisor {cpu(measured.supervisor_ticks, window)};"
        f" helpers {cpu(measured.helper_ticks, IDLE_SECONDS)};"
        f" app {cpu(measured.app_ticks, IDLE_SECONDS)}"
    )
    # One process's CPU over the window is a few clock ticks (10 ms each): the sum is finer.
    every = 100 * sum(measured.supervisor_ticks + measured.helper_ticks) / TICK / window
    print(f"  idle CPU of all {n} supervisors and helpers together: {every:.2f} % of one CPU")
    print(
        "fixed, per platform (USS by process name): "
        + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in sorted(fixed.items()))
    )
    verdict = "met" if own <= TARGET_BYTES else "MISSED"
    print(
        f"platform's own memory per dyno (median supervisor + helpers + HAProxy entry): "
        f"{own / 2**20:.2f} MiB USS; target <= 5 MB ({TARGET_BYTES / 2**20:.2f} MiB): {verdict}"
    )
    del platform


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else TARGET,
        int(sys.argv[2]) if len(sys.argv) > 2 else APPS,
    )
