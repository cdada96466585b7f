"""Router benchmark: requests/s of the sample Flask app at web=1 through the router
(HAProxy, by the app's Host header) and straight to its one dyno's address, measured with
wrk, alternating the paths run by run. Prints min/median/max req/s of each path and the
ratio of the medians (target: the router keeps at least 0.9x of direct).

Two more figures say where a gap comes from:
- Straight to the dyno again, sending the six headers the router adds for the app (the
  Heroku contract's X-Forwarded-For/-Proto/-Port, X-Request-Id, X-Request-Start, Via):
  the app's own cost of reading them. The router compared with this path is the cost of
  the proxy hop alone.
- Each path again with the dyno alone on one CPU and wrk and HAProxy on the others (CPU
  affinity of their processes), as when the router runs on cores or machines of its own,
  as Heroku's does. On a 2-core host, wrk, HAProxy and the dyno otherwise share both
  cores, so the router path pays for HAProxy's CPU time out of the app's.

gunicorn's sync workers close every connection, so every path opens one TCP connection to
the dyno per request. wrk, straight to the dyno, leaves each closed one in TIME_WAIT on
this host for 60 s (HAProxy's leave none), and a container dyno's address is not
loopback, so tcp_tw_reuse=2 does not apply: after about 28,000 of them (the ephemeral
port range) connect() to that address starves, for wrk and HAProxy alike, and both paths
drop several-fold. Runs are therefore short, and each starts only once the sockets to the
dyno in TIME_WAIT have expired (a bounded wait); each line shows the most left at a start
and after a run.

Usage: .venv/bin/python bench/router.py [RUNS]   (needs wrk: apt-get install wrk)
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchkit import deploy_sample, routed_servers, running_platform, setting
from platform_harness import Platform, wait_for

APP = "router"
THREADS, CONNECTIONS, SECONDS = 2, 32, 3
WRK_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
DRAIN_BELOW = 1000  # sockets to the dyno in TIME_WAIT that a run may start with
DRAIN_TIMEOUT = 90.0  # Linux keeps a socket in TIME_WAIT for 60 s
# What the router's HAProxy adds to each request (router/paas_router/templates), as it
# would send them: the app parses these on the router path only.
ROUTER_HEADERS = (
    f"Host: {APP}.paas.localhost",
    "X-Forwarded-For: 127.0.0.1",
    "X-Forwarded-Proto: http",
    "X-Forwarded-Port: 8080",
    "X-Request-Id: 6f1c2b7e-4a3d-4c8e-9b5f-2d7a1e0c3b9f",
    "X-Request-Start: t=1795000000000",
    "Via: 1.1 paas-router",
)


@dataclass(frozen=True)
class Target:
    """One way to reach the app: wrk's URL and extra headers."""

    name: str
    url: str
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Layout:
    """Where the processes run: `client_cpus` for wrk and the proxies, `dyno_cpus` for
    the dyno; None leaves every process free to run on any CPU."""

    name: str
    client_cpus: set[int] | None = None
    dyno_cpus: set[int] | None = None


@dataclass(frozen=True)
class Sample:
    requests_per_second: float
    errors: int  # socket errors plus non-2xx/3xx responses
    latency_p50: str
    time_wait_before: int = 0
    time_wait_after: int = 0


def parse_wrk(output: str) -> Sample:
    """The figures of one `wrk --latency` run from its report."""
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if rate is None:
        raise SystemExit(f"wrk printed no Requests/sec line:\n{output}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    return Sample(
        float(rate.group(1)),
        errors + (int(bad.group(1)) if bad else 0),
        p50.group(1) if p50 else "?",
    )


def wrk(path: Target, seconds: int, cpus: set[int] | None = None) -> Sample:
    argv = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    if cpus is not None:
        argv = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *argv]
    for header in path.headers:
        argv += ["-H", header]
    result = subprocess.run(
        [*argv, path.url], env=WRK_ENV, capture_output=True, text=True, timeout=seconds + 30
    )
    if result.returncode != 0:
        raise SystemExit(f"wrk failed on {path.url} (exit {result.returncode}): {result.stderr}")
    return parse_wrk(result.stdout)


def time_wait(address: str) -> int:
    """Sockets of this host to or from `address` (host:port) in TIME_WAIT."""
    result = subprocess.run(
        ["ss", "-Htan", "state", "time-wait", "(", "dst", address, "or", "src", address, ")"],
        env=WRK_ENV,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return len(result.stdout.splitlines())


def drained(address: str) -> int:
    """Waits until fewer than DRAIN_BELOW sockets to `address` are in TIME_WAIT, at most
    DRAIN_TIMEOUT; returns how many are left."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while (left := time_wait(address)) >= DRAIN_BELOW and time.monotonic() < deadline:
        time.sleep(1)
    return left


def measure(path: Target, dyno: str, cpus: set[int] | None) -> Sample:
    before = drained(dyno)
    sample = wrk(path, SECONDS, cpus)
    return replace(sample, time_wait_before=before, time_wait_after=time_wait(dyno))


def dyno_address(platform: Platform) -> str:
    """host:port of the app's one web dyno, as routes.json gives it to the router."""

    def one_server() -> dict[str, Any] | None:
        servers = routed_servers(platform, APP)
        return servers[0] if len(servers) == 1 else None

    server = wait_for(one_server, 60, f"routes.json to list exactly one dyno of {APP}")
    return f"{server['host']}:{server['port']}"


def paths(platform: Platform, dyno: str) -> list[Target]:
    """Through the router, straight to the dyno with the headers the router adds, and
    straight to the dyno (last: the others are compared with it)."""
    return [
        Target(
            "router",
            f"http://127.0.0.1:{platform.http_port}/",
            (f"Host: {APP}.paas.localhost",),
        ),
        Target("direct + router's headers", f"http://{dyno}/", ROUTER_HEADERS),
        Target(f"direct ({dyno})", f"http://{dyno}/"),
    ]


def descendants(roots: list[int]) -> list[int]:
    """`roots` and every process below them, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], list(roots)
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def pin(pids: list[int], cpus: set[int] | None) -> None:
    """Every thread of `pids` may run only on `cpus` (any CPU when None)."""
    allowed = cpus if cpus is not None else set(range(os.cpu_count() or 1))
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(task.name), allowed)


def layouts() -> list[Layout]:
    cpus = sorted(os.sched_getaffinity(0))
    shared = Layout("CPUs shared by all")
    if len(cpus) < 2:
        return [shared]
    return [shared, Layout("dyno on its own CPU", set(cpus[:-1]), {cpus[-1]})]


def apply_layout(layout: Layout, platform: Platform) -> None:
    pids = [s.get("pid") for s in platform.dyno_statuses(APP)]
    dyno_pids = [pid for pid in pids if isinstance(pid, int) and pid]
    haproxy_master = int((platform.home / "router" / "haproxy.pid").read_text().split()[0])
    pin(descendants(dyno_pids), layout.dyno_cpus)
    pin(descendants([haproxy_master]), layout.client_cpus)


def summary(name: str, samples: list[Sample]) -> str:
    rates = [s.requests_per_second for s in samples]
    latencies = ", ".join(s.latency_p50 for s in samples)
    return (
        f"  {name:<30} req/s min {min(rates):8.1f}  median {statistics.median(rates):8.1f}  "
        f"max {max(rates):8.1f}  (n={len(rates)}; p50 latency {latencies}; "
        f"errors {sum(s.errors for s in samples)}; TIME_WAIT to the dyno at most "
        f"{max(s.time_wait_before for s in samples)} at a start, "
        f"{max(s.time_wait_after for s in samples)} after a run)"
    )


def ratios(results: dict[str, list[Sample]], every: list[Target]) -> list[str]:
    """Router / direct (the target), the app's cost of the router's headers, and the
    router / direct with the same headers (the proxy hop alone)."""
    router, with_headers, direct = (p.name for p in every)
    lines = []
    for top, bottom, meaning in (
        (router, direct, "the target"),
        (with_headers, direct, "the app reading the router's headers"),
        (router, with_headers, "the proxy hop alone"),
    ):
        medians = statistics.median(
            s.requests_per_second for s in results[top]
        ) / statistics.median(s.requests_per_second for s in results[bottom])
        # The runs of a round are next to each other in time, so their ratio is less
        # swayed by whatever else the host was doing than the ratio of medians.
        each = [
            t.requests_per_second / b.requests_per_second
            for t, b in zip(results[top], results[bottom], strict=True)
        ]
        lines.append(
            f"  {top} / {bottom}: {medians:.2f}x (medians; each round min {min(each):.2f}x "
            f"median {statistics.median(each):.2f}x max {max(each):.2f}x): {meaning}"
        )
    return lines


def measure_layout(
    layout: Layout, platform: Platform, dyno: str, every: list[Target], runs: int
) -> dict[str, list[Sample]]:
    apply_layout(layout, platform)
    for path in every:  # warm-up: first connections, gunicorn workers, HAProxy
        wrk(path, 1, layout.client_cpus)
    results: dict[str, list[Sample]] = {}
    for run in range(runs):
        # Alternate the order of the paths, so drift on the host favours none.
        for path in every if run % 2 == 0 else every[::-1]:
            results.setdefault(path.name, []).append(measure(path, dyno, layout.client_cpus))
    return results


def main(runs: int) -> None:
    if shutil.which("wrk", path=WRK_ENV["PATH"]) is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make setup as root does)")
    report: list[str] = []
    with running_platform() as platform:
        deploy_sample(platform, APP)
        context = setting(platform, APP)
        dyno = dyno_address(platform)
        every = paths(platform, dyno)
        for layout in layouts():
            results = measure_layout(layout, platform, dyno, every, runs)
            report.append(f"{layout.name}:")
            report += [summary(p.name, results[p.name]) for p in every]
            report += ratios(results, every)
    print(context)
    print(
        f"wrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS}s per run, app at web=1; target: "
        "router / direct >= 0.90x"
    )
    for line in report:
        print(line)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
