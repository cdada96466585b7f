"""Add-on servers benchmark: provision latency of PostgreSQL (cold: initdb and first start
of the cluster; warm: one more database and role on the running cluster) and Redis (a new
redis-server), a pg:backups capture and restore of a 100,000-row table, and the time from
`kill -9` of the postmaster until the supervisor's restart answers again.

Each run has a PAAS_HOME of its own (plain-process mode: loopback), removed at its end
with every server it started stopped. min/median/max over the runs.

Usage: .venv/bin/python bench/addon_servers.py [RUNS]
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from deploy import summary
from platform_harness import PAAS, wait_for

from paas.addons.backups import Backups
from paas.addons.postgresql import PostgreSQL
from paas.addons.redis import Redis
from paas.addons.supervisor import stop_servers
from paas.domain.settings import Settings
from paas.host import procs

ROWS = 100_000


def timed(action: Callable[[], object]) -> float:
    start = time.monotonic()
    action()
    return time.monotonic() - start


def psql(url: str, sql: str) -> str:
    return subprocess.run(
        ["psql", "--no-psqlrc", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.strip()


def answers(url: str) -> bool:
    try:
        return psql(url, "SELECT 1") == "1"
    except subprocess.CalledProcessError:
        return False


def one_run() -> dict[str, float]:
    base = Path(tempfile.mkdtemp(prefix="paas-bench-addons-", dir="/tmp"))
    base.chmod(0o711)
    home = base / "home"
    (home / "run").mkdir(parents=True)
    home.chmod(0o711)
    settings = Settings(home=home)
    pg, redis = PostgreSQL(settings), Redis(settings)
    found: dict[str, float] = {}
    supervisor = None
    try:
        urls: list[str] = []
        found["pg cold"] = timed(lambda: urls.append(pg.provision("one", pg.plans["hobby"])))
        found["pg warm"] = timed(lambda: urls.append(pg.provision("two", pg.plans["hobby"])))
        found["redis"] = timed(lambda: redis.provision("cache", redis.plans["hobby"]))
        psql(
            urls[0],
            "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v"
            f" FROM generate_series(1, {ROWS}) g",
        )
        backups = Backups(settings, "one")
        found["capture"] = timed(lambda: backups.capture(pg, False, datetime.now(UTC)))
        psql(urls[0], "DROP TABLE t")
        found["restore"] = timed(lambda: backups.restore(pg, None))
        assert psql(urls[0], "SELECT count(*) FROM t") == str(ROWS)
        env = {**procs.host_env(), "PAAS_HOME": str(home), "HOME": str(home)}
        supervisor = subprocess.Popen(
            [str(PAAS), "addons:servers"], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        postmaster = pg.cluster.pid()
        assert postmaster is not None
        start = time.monotonic()
        os.kill(postmaster, signal.SIGKILL)
        wait_for(lambda: pg.cluster.pid() not in (None, postmaster), 60, "the restart")
        wait_for(lambda: answers(urls[1]), 60, "PostgreSQL to answer")
        found["kill -9 to answering"] = time.monotonic() - start
    finally:
        if supervisor is not None:
            supervisor.kill()
            supervisor.wait(10)
        stop_servers(settings)
        shutil.rmtree(base, ignore_errors=True)
    return found


def main(runs: int) -> None:
    results = [one_run() for _ in range(runs)]
    for name in results[0]:
        print(summary(name, [r[name] for r in results]))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
