"""The add-on servers inside a real platform (`paas server`): the CLI's pg:psql,
pg:backups:* and redis:cli against an app's DATABASE_URL / REDIS_URL, a kill -9 of
`paas server` (the servers keep serving and are adopted, not restarted), and
`paas server --stop` (they stop; the next start serves the same data).

The add-ons are made with `paas addons:create` (the catalog calls the servers' provision).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from platform_harness import Platform, running, wait_for

from paas.addons import hosting
from paas.addons.postgresql import PostgreSQL
from paas.addons.redis import Redis
from paas.domain import settings as settings_module
from paas.host import procs
from paas.server import read_identities

pytestmark = pytest.mark.skipif(
    shutil.which("psql") is None or not Path("/usr/bin/redis-server").exists(),
    reason="PostgreSQL and Redis are installed by `make setup`",
)
APP = "with-db"


def sql(platform: Platform, statement: str) -> str:
    return platform.paas("pg:psql", "-a", APP, "-c", statement).stdout


def listeners(port: int) -> set[str]:
    out = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return {line.split()[3].rpartition(":")[0] for line in out.splitlines() if line.strip()}


def test_psql_backups_redis_cli_and_kill_9_of_the_server(tmp_path: Path) -> None:
    with running() as platform:
        settings = settings_module.from_env(platform.env)
        pg, redis = PostgreSQL(settings), Redis(settings)
        platform.paas("apps:create", APP, "--no-remote")
        platform.paas("addons:create", "postgresql", "-a", APP)
        platform.paas("addons:create", "redis", "-a", APP)
        config = json.loads(platform.paas("config", "-a", APP, "--json").stdout)
        db_url = config["DATABASE_URL"]
        [db_id] = pg.cluster.addon_ids()
        [cache_id] = redis.addon_ids()
        address = hosting.listen_address(settings)
        assert f"@{address}:" in db_url and f"@{address}:" in config["REDIS_URL"]
        assert listeners(pg.endpoint(db_id)[1]) == {address}
        assert listeners(redis.endpoint(cache_id)[1]) == {address}

        sql(platform, "CREATE TABLE visits (n int); INSERT INTO visits VALUES (1)")
        assert "1" in sql(platform, "SELECT n FROM visits").split()
        counted = platform.paas("redis:cli", "-a", APP, "--", "INCR", "hits").stdout
        assert counted.strip() == "1"

        captured = platform.paas("pg:backups:capture", "-a", APP).stdout
        assert "b001" in captured
        assert "Completed" in platform.paas("pg:backups", "-a", APP).stdout
        sql(platform, "DROP TABLE visits")
        refused = platform.paas("pg:backups:restore", "-a", APP, check=False)
        assert refused.returncode == 1 and "--confirm" in refused.stderr
        platform.paas("pg:backups:restore", "b001", "-a", APP, "--confirm", APP)
        assert "1" in sql(platform, "SELECT n FROM visits").split()
        dump = tmp_path / "latest.dump"
        platform.paas("pg:backups:download", "-a", APP, "-o", str(dump))
        listed = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True)
        assert listed.returncode == 0 and "visits" in listed.stdout
        platform.paas("pg:backups:schedule", "-a", APP, "--at", "02:00 UTC")
        assert "02:00 UTC" in platform.paas("pg:backups:schedules", "-a", APP).stdout
        bad = platform.paas("pg:backups:schedule", "-a", APP, "--at", "25:00", check=False)
        assert bad.returncode == 1 and "00:00 to 23:59" in bad.stderr

        # kill -9 of `paas server`: the servers are not its children; they keep serving,
        # and the restarted platform adopts them.
        servers = (pg.cluster.pid(), redis.instance(cache_id).pid())
        control_plane = read_identities(platform.home / "run" / "server.children")
        platform.kill_server()
        # Its children end with it (PDEATHSIG); the next start must not meet the old API.
        wait_for(
            lambda: not any(procs.alive(*child) for child in control_plane),
            30,
            "the killed server's children to end",
        )
        direct = subprocess.run(
            ["psql", "--no-psqlrc", "-Atc", "SELECT n FROM visits", db_url],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert direct.stdout.split() == ["1"], direct.stderr
        platform.start()
        assert not procs.wait_until(
            lambda: (pg.cluster.pid(), redis.instance(cache_id).pid()) != servers, 3
        )
        sql(platform, "INSERT INTO visits VALUES (2)")

        # `paas server --stop` stops them; a new start serves the same data.
        platform.paas("server", "--stop")
        assert platform.server is not None
        platform.server.wait(30)
        assert all(procs.start_time(pid) is None for pid in servers if pid)
        assert pg.cluster.pid() is None and redis.instance(cache_id).pid() is None
        platform.start()
        wait_for(lambda: pg.cluster.pid() is not None, 30, "PostgreSQL to be started again")
        wait_for(lambda: redis.instance(cache_id).answers(), 30, "redis to be started again")
        assert sql(platform, "SELECT string_agg(n::text, ',' ORDER BY n) FROM visits").split()[
            2
        ] == ("1,2")
        counted = platform.paas("redis:cli", "-a", APP, "--", "INCR", "hits").stdout
        assert counted.strip() == "2"
        platform.paas("apps:destroy", "-a", APP, "--confirm", APP)
        assert pg.cluster.addon_ids() == [] and redis.addon_ids() == []
        assert pg.cluster.pid() is None


def test_pg_commands_name_a_missing_attachment() -> None:
    with running() as platform:
        platform.paas("apps:create", "no-db", "--no-remote")
        missing = platform.paas("pg:backups", "-a", "no-db", check=False)
        assert missing.returncode == 1
        assert "no postgresql add-on attached as DATABASE" in missing.stderr
        psql = platform.paas("pg:psql", "-a", "no-db", "-c", "SELECT 1", check=False)
        assert psql.returncode == 1 and "has no DATABASE_URL" in psql.stderr
