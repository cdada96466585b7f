"""The add-on servers for real: Debian's PostgreSQL and Redis, run by paas.addons on a
PAAS_HOME of the test's own (plain-process mode: loopback), and by a real `paas
addons:servers` supervisor. Every server started is stopped by stop_servers (by pid) and
its PAAS_HOME removed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from platform_harness import PAAS, wait_for

from paas.addons import hosting
from paas.addons.backups import Backups
from paas.addons.postgresql import PostgreSQL
from paas.addons.redis import Redis
from paas.addons.supervisor import stop_servers
from paas.domain.settings import Settings
from paas.host import procs

pytestmark = pytest.mark.skipif(
    shutil.which("psql") is None or not Path("/usr/bin/redis-server").exists(),
    reason="PostgreSQL and Redis are installed by `make setup`",
)


@pytest.fixture
def settings() -> Iterator[Settings]:
    base = Path(tempfile.mkdtemp(prefix="paas-addons-", dir="/tmp"))
    base.chmod(0o711)
    home = base / "home"
    home.mkdir(mode=0o711)
    (home / "run").mkdir(mode=0o700)
    found = Settings(home=home)
    try:
        yield found
    finally:
        stop_servers(found)
        shutil.rmtree(base, ignore_errors=True)


def psql(url: str, sql: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["psql", "--no-psqlrc", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql, url],
        capture_output=True,
        text=True,
        timeout=30,
        env={**procs.host_env(), "PGCONNECT_TIMEOUT": "5"},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"psql failed: {result.stderr}")
    return result


def redis_cli(url: str, *words: str) -> str:
    return subprocess.run(
        ["redis-cli", "--no-auth-warning", "-u", url, *words],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()


def listeners(port: int) -> set[str]:
    """The local addresses something listens on at this TCP port."""
    out = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return {line.split()[3].rpartition(":")[0] for line in out.splitlines() if line.strip()}


def supervisor(settings: Settings) -> subprocess.Popen[bytes]:
    env = {**procs.host_env(), "PAAS_HOME": str(settings.home), "HOME": str(settings.home)}
    with (settings.home / "supervisor.log").open("ab") as log:
        return subprocess.Popen(
            [str(PAAS), "addons:servers"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )


def end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(10)


def test_postgresql_add_on_stores_rows_through_its_url(settings: Settings) -> None:
    url = PostgreSQL(settings).provision("pg-one", PostgreSQL.plans["hobby"])
    assert url.startswith("postgres://") and "@127.0.0.1:" in url
    psql(url, "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept')")
    assert psql(url, "SELECT body FROM notes").stdout.strip() == "kept"
    # Only a SCRAM verifier reached the server: the password is in no log of it.
    secret = url.split(":")[2].split("@")[0]
    pg = PostgreSQL(settings)
    stored = pg.cluster.sql(
        f"SELECT rolpassword FROM pg_authid WHERE rolname = '{pg.record('pg-one')['role']}'"
    )
    assert stored.startswith("SCRAM-SHA-256$4096:") and secret not in stored
    assert secret not in pg.cluster.log.read_text()


def test_provision_is_idempotent_and_keeps_the_port(settings: Settings) -> None:
    pg = PostgreSQL(settings)
    first = pg.provision("pg-one", pg.plans["hobby"])
    assert pg.provision("pg-one", pg.plans["hobby"]) == first


def test_a_second_add_on_cannot_reach_the_first_database(settings: Settings) -> None:
    pg = PostgreSQL(settings)
    first = pg.provision("pg-one", pg.plans["hobby"])
    second = pg.provision("pg-two", pg.plans["hobby"])
    psql(first, "CREATE TABLE secret (x int); INSERT INTO secret VALUES (1)")
    # The second's credentials against the first's database: refused at login.
    crossed = second.rpartition("/")[0] + "/" + first.rpartition("/")[2]
    refused = psql(crossed, "SELECT * FROM secret", check=False)
    assert refused.returncode != 0 and "FATAL" in refused.stderr
    # And below pg_hba: the role has no CONNECT on it, nor has PUBLIC.
    role2 = pg.record("pg-two")["role"]
    db1 = pg.record("pg-one")["database"]
    answer = pg.cluster.sql(
        f"SELECT has_database_privilege('{role2}', '{db1}', 'CONNECT'),"
        f" has_database_privilege('public', '{db1}', 'CONNECT'),"
        " has_database_privilege('public', 'postgres', 'CONNECT')"
    )
    assert answer.strip() == "f|f|f"
    # The superuser never logs in over TCP, whatever password.
    port = pg.endpoint("pg-one")[1]
    admin = psql(f"postgres://postgres:x@127.0.0.1:{port}/postgres", "SELECT 1", check=False)
    assert "no pg_hba.conf entry" in admin.stderr or "rejects" in admin.stderr


def test_servers_listen_only_on_the_expected_address(settings: Settings) -> None:
    pg, redis = PostgreSQL(settings), Redis(settings)
    pg.provision("pg-one", pg.plans["hobby"])
    redis.provision("rd-one", redis.plans["hobby"])
    assert listeners(pg.endpoint("pg-one")[1]) == {"127.0.0.1"}
    assert listeners(redis.endpoint("rd-one")[1]) == {"127.0.0.1"}
    socket_dir = pg.cluster.socket_dir
    assert socket_dir.stat().st_mode & 0o777 == 0o700


def test_plans_limit_connections_and_memory(settings: Settings) -> None:
    pg, redis = PostgreSQL(settings), Redis(settings)
    pg.provision("pg-hobby", pg.plans["hobby"])
    pg.provision("pg-standard", pg.plans["standard"])
    for addon_id, plan in (("pg-hobby", "hobby"), ("pg-standard", "standard")):
        role = pg.record(addon_id)["role"]
        limit = pg.cluster.sql(f"SELECT rolconnlimit FROM pg_roles WHERE rolname = '{role}'")
        assert int(limit) == pg.plans[plan].connections
    url = redis.provision("rd-hobby", redis.plans["hobby"])
    assert f"maxmemory:{25 * 1024 * 1024}" in redis_cli(url, "INFO", "memory")
    assert "maxclients:20" in redis_cli(url, "INFO", "clients")
    assert "unknown command" in redis_cli(url, "CONFIG", "GET", "maxmemory")
    assert "unknown command" in redis_cli(url, "SHUTDOWN")
    assert redis_cli(url, "PING") == "PONG"


def test_redis_refuses_a_wrong_password(settings: Settings) -> None:
    redis = Redis(settings)
    url = redis.provision("rd-one", redis.plans["hobby"])
    wrong = url.replace(url.split(":")[2].split("@")[0], "wrong")
    assert "NOAUTH" in redis_cli(wrong, "GET", "x") or "WRONGPASS" in redis_cli(wrong, "PING")


def test_data_survives_kill_9_of_servers_and_of_the_supervisor(settings: Settings) -> None:
    pg, redis = PostgreSQL(settings), Redis(settings)
    db = pg.provision("pg-one", pg.plans["hobby"])
    cache = redis.provision("rd-one", redis.plans["hobby"])
    psql(db, "CREATE TABLE t (x int); INSERT INTO t VALUES (7)")
    assert redis_cli(cache, "INCR", "counter") == "1"
    watcher = supervisor(settings)
    try:
        # kill -9 of the postmaster: its orphaned backends hold its shared memory; the
        # supervisor ends them and starts it again.
        postmaster = pg.cluster.pid()
        assert postmaster is not None
        os.kill(postmaster, signal.SIGKILL)
        wait_for(lambda: pg.cluster.pid() not in (None, postmaster), 60, "PostgreSQL again")
        wait_for(lambda: psql(db, "SELECT x FROM t", check=False).stdout.strip() == "7", 30, "row")
        server = redis.instance("rd-one").pid()
        assert server is not None
        os.kill(server, signal.SIGKILL)
        wait_for(lambda: redis.instance("rd-one").pid() not in (None, server), 30, "redis again")
        wait_for(lambda: redis.instance("rd-one").answers(), 30, "redis to answer")
        assert redis_cli(cache, "INCR", "counter") == "2"
        # kill -9 of the supervisor: the servers keep serving; the next one adopts them.
        adopted = (pg.cluster.pid(), redis.instance("rd-one").pid())
        watcher.kill()
        watcher.wait(10)
        assert psql(db, "SELECT x FROM t").stdout.strip() == "7"
        watcher = supervisor(settings)
        assert not procs.wait_until(lambda: watcher.poll() is not None, 3)
        assert (pg.cluster.pid(), redis.instance("rd-one").pid()) == adopted
        # A clean stop (paas server --stop's) and a start bring the same data back.
        stop_servers(settings)
        assert pg.cluster.pid() is None and redis.instance("rd-one").pid() is None
        wait_for(lambda: pg.cluster.pid() is not None, 30, "the supervisor to restart PostgreSQL")
        wait_for(lambda: psql(db, "SELECT x FROM t", check=False).stdout.strip() == "7", 30, "row")
        wait_for(lambda: redis.instance("rd-one").answers(), 30, "redis to answer")
        assert redis_cli(cache, "GET", "counter") == "2"
    finally:
        end(watcher)


def test_supervisor_runs_postgresql_only_while_an_add_on_exists(settings: Settings) -> None:
    pg = PostgreSQL(settings)
    watcher = supervisor(settings)
    try:
        assert not procs.wait_until(lambda: pg.cluster.pid() is not None, 2)
        pg.provision("pg-one", pg.plans["hobby"])
        record = pg.cluster.record_path("pg-one")
        # An add-on whose record exists but whose server was stopped: started again.
        pg.cluster.stop()
        wait_for(lambda: pg.cluster.pid() is not None, 30, "the supervisor to start it")
        # The last add-on gone: stopped, and not started again.
        record.unlink()
        wait_for(lambda: pg.cluster.pid() is None, 30, "the supervisor to stop it")
    finally:
        end(watcher)


def test_deprovision_leaves_nothing(settings: Settings) -> None:
    pg, redis = PostgreSQL(settings), Redis(settings)
    pg.provision("pg-keep", pg.plans["hobby"])
    url = pg.provision("pg-gone", pg.plans["hobby"])
    psql(url, "CREATE TABLE t (x int)")
    held = subprocess.Popen(  # a session left open: deprovision ends it
        ["psql", "--no-psqlrc", "-c", "SELECT pg_sleep(60)", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        name = pg.record("pg-gone")["role"]
        Backups(settings, "pg-gone").capture(pg, scheduled=False, now=_now())
        pg.deprovision("pg-gone")
        left = pg.cluster.sql(
            f"SELECT (SELECT count(*) FROM pg_database WHERE datname = '{name}'),"
            f" (SELECT count(*) FROM pg_roles WHERE rolname = '{name}')"
        )
        assert left.strip() == "0|0"
        assert not pg.cluster.record_path("pg-gone").exists()
        assert not pg.cluster.backups_dir("pg-gone").exists()
        assert held.wait(30) != 0
    finally:
        end(held)
    pg.deprovision("pg-keep")
    assert pg.cluster.pid() is None  # no add-on left: no server
    pg.deprovision("pg-keep")  # nothing there: not an error
    rd_url = redis.provision("rd-one", redis.plans["hobby"])
    redis_cli(rd_url, "SET", "k", "v")
    server = redis.instance("rd-one").pid()
    redis.deprovision("rd-one")
    assert server is not None and procs.start_time(server) is None
    assert not redis.instance("rd-one").directory.exists()
    assert redis.addon_ids() == []


def test_backup_capture_then_restore_brings_a_row_back(settings: Settings) -> None:
    pg = PostgreSQL(settings)
    url = pg.provision("pg-one", pg.plans["hobby"])
    psql(url, "CREATE TABLE orders (id int); INSERT INTO orders VALUES (1), (2)")
    backups = Backups(settings, "pg-one")
    made = backups.capture(pg, scheduled=False, now=_now())
    assert (made.id, made.status) == ("b001", "Completed")
    dump = backups.dump_path(made)
    assert dump.stat().st_mode & 0o777 == 0o600
    listed = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True)
    assert listed.returncode == 0 and "orders" in listed.stdout
    psql(url, "DELETE FROM orders WHERE id = 2; CREATE TABLE later (x int)")
    backups.restore(pg, None)
    assert psql(url, "SELECT id FROM orders ORDER BY id").stdout.split() == ["1", "2"]
    # The restored table still belongs to the add-on's role: the app keeps writing to it.
    psql(url, "INSERT INTO orders VALUES (3)")


def _now() -> datetime:
    return datetime.now(UTC)


def test_add_on_ids_that_name_paths_are_refused(settings: Settings) -> None:
    from paas.domain.errors import InvalidParams

    for bad in ("../x", "a/b", "", ".hidden", "x" * 101):
        with pytest.raises(InvalidParams):
            hosting.check_id(bad)
        with pytest.raises(InvalidParams):
            Redis(settings).provision(bad, Redis.plans["hobby"])


def test_the_supervisor_runs_a_due_scheduled_backup(settings: Settings) -> None:
    pg = PostgreSQL(settings)
    url = pg.provision("pg-one", pg.plans["hobby"])
    psql(url, "CREATE TABLE t (x int); INSERT INTO t VALUES (5)")
    backups = Backups(settings, "pg-one")
    # Set yesterday for a minute ago: today's occurrence is due.
    minute_ago = _now() - timedelta(minutes=1)
    backups.set_schedule(f"{minute_ago:%H:%M} UTC", _now() - timedelta(days=1))
    watcher = supervisor(settings)
    try:
        made = wait_for(lambda: [b for b in backups.list() if b.scheduled], 60, "a backup")
        assert made[0].id == "a001" and made[0].status == "Completed"
        assert not procs.wait_until(lambda: len(backups.list()) > 1, 3)  # once, not again
    finally:
        end(watcher)


def test_a_stale_pidfile_naming_another_process_does_not_block_the_start(
    settings: Settings,
) -> None:
    pg = PostgreSQL(settings)
    url = pg.provision("pg-one", pg.plans["hobby"])
    psql(url, "CREATE TABLE t (x int); INSERT INTO t VALUES (9)")
    pg.cluster.stop()
    # The kernel gave the dead postmaster's pid to another process of the same account
    # (another PAAS_HOME's PostgreSQL runs as `postgres` too): postgres itself would take
    # it for a running postmaster.
    account = hosting.account("postgres")
    other = subprocess.Popen(hosting.as_account(account, ["sleep", "60"]))
    try:
        pidfile = pg.cluster.data / "postmaster.pid"
        pidfile.write_text(f"{other.pid}\n{pg.cluster.data}\n")
        pg.cluster.ensure_running()
        assert pg.cluster.pid() not in (None, other.pid)
        assert psql(url, "SELECT x FROM t").stdout.strip() == "9"
    finally:
        end(other)


def test_a_killed_postmaster_is_started_again_at_once(settings: Settings) -> None:
    pg = PostgreSQL(settings)
    url = pg.provision("pg-one", pg.plans["hobby"])
    psql(url, "CREATE TABLE t (x int); INSERT INTO t VALUES (4)")
    held = subprocess.Popen(  # a backend that outlives its postmaster for a moment
        ["psql", "--no-psqlrc", "-c", "SELECT pg_sleep(30)", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: "pg_sleep" in pg.cluster.sql("SELECT query FROM pg_stat_activity"), 10, "")
        postmaster = pg.cluster.pid()
        assert postmaster is not None
        os.kill(postmaster, signal.SIGKILL)
        # At once: its lock files name a pid not yet reaped, its backends may still run.
        assert pg.provision("pg-one", pg.plans["hobby"]) == url
        assert pg.cluster.pid() not in (None, postmaster)
        assert psql(url, "SELECT x FROM t").stdout.strip() == "4"
    finally:
        end(held)


def test_a_restored_check_constraint_cannot_make_the_tenant_superuser(
    settings: Settings,
) -> None:
    """A dump's CHECK constraint calls the tenant's own function while rows are loaded:
    the restore runs it as the add-on's role, never as the cluster's superuser."""
    pg = PostgreSQL(settings)
    url = pg.provision("pg-one", pg.plans["hobby"])
    role = hosting.text(pg.record("pg-one"), "role")
    escalate = (
        "CREATE FUNCTION escalate(int) RETURNS bool LANGUAGE plpgsql AS $f$ BEGIN "
        "IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN "
        f"EXECUTE 'ALTER ROLE \"{role}\" SUPERUSER'; END IF; RETURN true; END $f$"
    )
    psql(url, escalate)
    psql(url, "CREATE TABLE t (id int CHECK (escalate(id))); INSERT INTO t VALUES (1), (2)")
    backups = Backups(settings, "pg-one")
    backups.capture(pg, scheduled=False, now=_now())
    psql(url, "DELETE FROM t")
    backups.restore(pg, None)
    assert psql(url, "SELECT id FROM t ORDER BY id").stdout.split() == ["1", "2"]
    superuser = psql(url, f"SELECT rolsuper FROM pg_roles WHERE rolname = '{role}'")
    assert superuser.stdout.strip() == "f"


def test_redis_refuses_commands_that_reach_out_or_fork(settings: Settings) -> None:
    """MIGRATE would have redis-server, a host process, connect wherever the tenant says."""
    redis = Redis(settings)
    url = redis.provision("rd-one", redis.plans["hobby"])
    redis_cli(url, "SET", "k", "v")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(1.0)
        port = listener.getsockname()[1]
        for words in (["MIGRATE", "127.0.0.1", str(port), "k", "0", "1000"], ["BGSAVE"]):
            reply = subprocess.run(
                ["redis-cli", "--no-auth-warning", "-u", url, *words],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert "unknown command" in reply.stdout + reply.stderr, words
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing connected
    assert redis_cli(url, "GET", "k") == "v"  # the key stayed
