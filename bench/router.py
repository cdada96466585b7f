"""Router benchmark: requests/s of the sample Flask app at web=1 through the router
(HAProxy, by the app's Host header) and straight to its one dyno's address, measured with
wrk, alternating the two paths run by run. Prints min/median/max req/s of each path and
the ratio of the medians (target: the router keeps at least 0.9x of direct).

Both paths end at the same dyno, so the app's own server (gunicorn, two sync workers) may
be what limits both; and wrk, HAProxy and the dyno share this host's CPUs, so on a small
host the router path also pays for HAProxy's CPU time. The figures say what was measured
here, nothing more.

gunicorn's sync workers close every connection, so both paths open one TCP connection to
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

import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from typing import Any

from benchkit import deploy_sample, routed_servers, running_platform, setting
from platform_harness import Platform, wait_for

APP = "router"
THREADS, CONNECTIONS, SECONDS = 2, 32, 3
WRK_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C"}
DRAIN_BELOW = 1000  # sockets to the dyno in TIME_WAIT that a run may start with
DRAIN_TIMEOUT = 90.0  # Linux keeps a socket in TIME_WAIT for 60 s


@dataclass(frozen=True)
class Target:
    """One way to reach the app: wrk's URL and extra headers."""

    name: str
    url: str
    headers: tuple[str, ...] = ()


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


def wrk(path: Target, seconds: int) -> Sample:
    argv = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
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


def measure(path: Target, dyno: str) -> Sample:
    before = drained(dyno)
    sample = wrk(path, SECONDS)
    return replace(sample, time_wait_before=before, time_wait_after=time_wait(dyno))


def dyno_address(platform: Platform) -> str:
    """host:port of the app's one web dyno, as routes.json gives it to the router."""

    def one_server() -> dict[str, Any] | None:
        servers = routed_servers(platform, APP)
        return servers[0] if len(servers) == 1 else None

    server = wait_for(one_server, 60, f"routes.json to list exactly one dyno of {APP}")
    return f"{server['host']}:{server['port']}"


def paths(platform: Platform, dyno: str) -> list[Target]:
    """Through the router, and straight to the dyno."""
    return [
        Target(
            "router",
            f"http://127.0.0.1:{platform.http_port}/",
            (f"Host: {APP}.paas.localhost",),
        ),
        Target(f"direct ({dyno})", f"http://{dyno}/"),
    ]


def summary(name: str, samples: list[Sample]) -> str:
    rates = [s.requests_per_second for s in samples]
    latencies = ", ".join(s.latency_p50 for s in samples)
    return (
        f"{name:<30} req/s min {min(rates):8.1f}  median {statistics.median(rates):8.1f}  "
        f"max {max(rates):8.1f}  (n={len(rates)}; p50 latency {latencies}; "
        f"errors {sum(s.errors for s in samples)}; TIME_WAIT to the dyno at most "
        f"{max(s.time_wait_before for s in samples)} at a start, "
        f"{max(s.time_wait_after for s in samples)} after a run)"
    )


def main(runs: int) -> None:
    if shutil.which("wrk", path=WRK_ENV["PATH"]) is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make setup as root does)")
    results: dict[str, list[Sample]] = {}
    with running_platform() as platform:
        deploy_sample(platform, APP)
        context = setting(platform, APP)
        dyno = dyno_address(platform)
        both = paths(platform, dyno)
        for path in both:  # warm-up: first connections, gunicorn workers, HAProxy
            wrk(path, 1)
        for run in range(runs):
            # Alternate which path goes first, so drift on the host favours neither.
            for path in both if run % 2 == 0 else both[::-1]:
                results.setdefault(path.name, []).append(measure(path, dyno))
    print(context)
    print(f"wrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS}s per run, app at web=1")
    for path in both:
        print(summary(path.name, results[path.name]))
    router, direct = (
        statistics.median(s.requests_per_second for s in results[p.name]) for p in both
    )
    print(f"router / direct (medians)      {router / direct:.2f}x  (target >= 0.90x)")
    # The two runs of a pair are next to each other in time, so their ratio is less
    # swayed by whatever else the host was doing than the ratio of medians.
    pairs = [
        r.requests_per_second / d.requests_per_second
        for r, d in zip(results[both[0].name], results[both[1].name], strict=True)
    ]
    print(
        f"router / direct (each run)     min {min(pairs):.2f}x  median "
        f"{statistics.median(pairs):.2f}x  max {max(pairs):.2f}x"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
