"""The PostgreSQL add-on: one cluster for every postgresql add-on of a PAAS_HOME, one
database and one role per add-on.

The cluster lives in PAAS_HOME/addons/postgresql (data/, its initdb by the platform;
socket/, the superuser's only way in; log/; records/, one JSON per add-on). It runs as
Debian's `postgres` account (the platform's own uid when it is not root), started
detached by pg_ctl, so it outlives the control plane like dynos do and is adopted through
data/postmaster.pid. It listens on one address (hosting.listen_address) and a port chosen
free at the first start and kept in server.json.

Invariants: the superuser (`postgres`) logs in only through the unix socket, in a 0700
directory, by peer authentication of the platform's uid; over TCP only an add-on's own
role reaches only its own database (pg_hba `sameuser`, scram-sha-256, from the dyno
subnet, loopback in plain-process mode, and the host's own addresses: pg:psql on the
host), and CONNECT on every database is revoked from
PUBLIC, so a second add-on's credentials open nothing of the first's.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import pwd
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from paas.addons import hosting
from paas.addons.service import Plan
from paas.domain.errors import CommandFailed, NotFound, PaasError
from paas.domain.settings import Settings
from paas.host import procs

SUPERUSER = "postgres"
ACCOUNT = "postgres"
MAX_CONNECTIONS = 200  # the cluster's; each add-on's role is limited by its plan
SQL_TIMEOUT = 60.0
SCRAM_ITERATIONS = 4096  # PostgreSQL's default (scram_iterations)
PLANS = {
    "hobby": Plan("hobby", 64, 20, "hobby: 20 connections, 64 MB of work memory"),
    "standard": Plan("standard", 256, 120, "standard: 120 connections, 256 MB of work memory"),
}


def bin_dir() -> Path:
    """The newest installed PostgreSQL's programs (Debian: /usr/lib/postgresql/15/bin)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise PaasError("PostgreSQL is not installed: run `make setup` (apt package postgresql)")
    return found[-1].parent


def object_name(addon_id: str) -> str:
    """The database's and the role's name: readable, unique per id, a plain identifier."""
    plain = re.sub(r"[^a-z0-9]+", "_", addon_id.lower()).strip("_")[:40]
    digest = hashlib.sha256(addon_id.encode()).hexdigest()[:8]
    return f"a_{plain}_{digest}" if plain else f"a_{digest}"


def work_mem_mb(plan: Plan) -> int:
    """A plan's memory spread over its connections: each sort or hash gets this much."""
    return max(1, plan.memory_mb // plan.connections)


@dataclass(frozen=True)
class Cluster:
    """The one PostgreSQL server of a PAAS_HOME: paths, start, stop, and SQL as the
    superuser through its socket."""

    settings: Settings

    @property
    def base(self) -> Path:
        return hosting.service_dir(self.settings, "postgresql")

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "socket"

    @property
    def log(self) -> Path:
        return self.base / "log" / "postgresql.log"

    @property
    def records(self) -> Path:
        path = self.base / "records"
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    @property
    def state_path(self) -> Path:
        return self.base / "server.json"

    @property
    def lock_path(self) -> Path:
        return self.base / "lock"

    def record_path(self, addon_id: str) -> Path:
        return self.records / f"{hosting.check_id(addon_id)}.json"

    def backups_dir(self, addon_id: str) -> Path:
        """Where pg:backups keeps the add-on's dumps (paas.addons.backups)."""
        return self.base / "backups" / hosting.check_id(addon_id)

    def addon_ids(self) -> list[str]:
        return sorted(p.stem for p in self.records.glob("*.json"))

    def port(self) -> int | None:
        state = hosting.read_record(self.state_path)
        port = None if state is None else state.get("port")
        return port if isinstance(port, int) else None

    def address(self) -> str:
        return hosting.listen_address(self.settings)

    def pid(self) -> int | None:
        """The postmaster's pid while it runs (found by its pidfile and its cwd)."""
        return hosting.running(self.data / "postmaster.pid", self._is_ours)

    def _is_ours(self, pid: int) -> bool:
        """A postgres process (postmaster or backend) of this cluster: it runs in its data
        directory."""
        return hosting.cwd(pid) == self.data and hosting.exe_name(pid) == "postgres"

    def ensure_running(self) -> None:
        """Initializes the cluster on first use, then starts it unless it runs; returns once
        it accepts connections."""
        with hosting.locked(self.lock_path):
            # A postmaster that runs but does not answer yet (crash recovery) is waited
            # for, never started over; one that ends meanwhile (it was being killed) is.
            hosting.wait_answering(
                self._started, "PostgreSQL", self.log, hosting.START_TIMEOUT_SECONDS
            )

    def _started(self) -> bool:
        if self.pid() is None:
            self._prepare()
            self._configure()
            self._start()
        return self._answers()

    def _prepare(self) -> None:
        account = hosting.account(ACCOUNT)
        hosting.private_dir(self.socket_dir, account)
        hosting.private_dir(self.log.parent, account)
        if (self.data / "PG_VERSION").exists():
            return
        # A half-made cluster (an initdb that was killed) is made again from nothing.
        shutil.rmtree(self.data, ignore_errors=True)
        hosting.private_dir(self.data, account)
        argv = [
            str(bin_dir() / "initdb"),
            "--pgdata", str(self.data),
            "--username", SUPERUSER,
            "--auth-local", "peer",
            "--auth-host", "scram-sha-256",
            "--encoding", "UTF8",
            "--locale", "C.UTF-8",
            "--no-instructions",
        ]  # fmt: skip
        procs.run(hosting.as_account(account, argv), timeout=120, env=self._env())

    def _configure(self) -> None:
        """Writes the platform's settings, its pg_hba and pg_ident at every start: the
        listening address follows the isolation mode; the port stays."""
        account = hosting.account(ACCOUNT)
        address = self.address()
        port = self.port() or hosting.free_port(address)
        hosting.write_record(self.state_path, {"port": port})
        settings = {
            "listen_addresses": f"'{address}'",
            "port": str(port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "unix_socket_permissions": "0700",
            "max_connections": str(MAX_CONNECTIONS),
            "password_encryption": "'scram-sha-256'",
            "ssl": "off",
            "hba_file": f"'{self.data / 'pg_hba.conf'}'",
            "ident_file": f"'{self.data / 'pg_ident.conf'}'",
            "log_line_prefix": "'%m [%p] %q%u@%d '",
            "logging_collector": "off",
            "lc_messages": "'C.UTF-8'",
        }
        lines = [f"{key} = {value}" for key, value in settings.items()]
        self._write(self.data / "paas.conf", "\n".join(lines) + "\n", account)
        conf = self.data / "postgresql.conf"
        include = "include 'paas.conf'\n"
        if include not in conf.read_text():
            with conf.open("a") as f:
                f.write(f"\n# The platform's own settings (paas.addons.postgresql)\n{include}")
        hba = [
            "# TYPE DATABASE USER ADDRESS METHOD (written by the platform at every start)",
            f"local all {SUPERUSER} peer map=paas",
            "local all all reject",
            f"host all {SUPERUSER} 0.0.0.0/0 reject",
            *(
                f"host sameuser all {net} scram-sha-256"
                for net in hosting.client_networks(self.settings)
            ),
            # The host's own clients (pg:psql on the platform's host): a connection to the
            # bridge's address from the host comes from one of the host's addresses.
            "host sameuser all samehost scram-sha-256",
        ]
        self._write(self.data / "pg_hba.conf", "\n".join(hba) + "\n", account)
        me = platform_user()
        idents = {me, ACCOUNT}
        ident = "".join(f"paas {name} {SUPERUSER}\n" for name in sorted(idents))
        self._write(self.data / "pg_ident.conf", ident, account)

    @staticmethod
    def _write(path: Path, content: str, account: pwd.struct_passwd | None) -> None:
        path.write_text(content)
        hosting.own(path, account, 0o600)

    def _start(self) -> None:
        account = hosting.account(ACCOUNT)
        self._end_orphans()
        argv = [
            str(bin_dir() / "pg_ctl"), "start",
            "--pgdata", str(self.data),
            "--log", str(self.log),
            "--wait", "--timeout", str(int(hosting.START_TIMEOUT_SECONDS)),
            "--silent",
        ]  # fmt: skip
        try:
            procs.run(
                hosting.as_account(account, argv),
                timeout=hosting.START_TIMEOUT_SECONDS + 10,
                env=self._env(),
            )
        except CommandFailed as error:
            raise hosting.ServerUnavailable(
                f"PostgreSQL did not start: {error.message}; see {self.log}"
            ) from None

    def _end_orphans(self) -> None:
        """Backends of a postmaster that was killed (-9) hold its shared memory, and a new
        postmaster refuses to start while they do: they are ended first (they would end
        themselves on noticing the postmaster gone; WAL recovery makes the data whole)."""
        orphans = [
            identity
            for pid in _pids()
            if self._is_ours(pid)
            for identity in [procs.identity(pid)]
            if identity is not None
        ]
        left = procs.stop_processes(orphans, grace=5.0) if orphans else []
        if left:
            # Starting beside them would let two postmasters' processes share the data.
            raise hosting.ServerUnavailable(
                f"PostgreSQL processes {', '.join(map(str, left))} of a killed server do not "
                "end: end them (kill -9) and the platform starts it again"
            )
        # No postmaster of ours runs (the caller checked) and no backend is left, so its
        # lock files left are stale (postmaster.pid, the socket's .lock); postgres would
        # refuse to start while the pid in them exists: a killed postmaster not yet reaped
        # (a zombie), or a pid the kernel gave to another process of the same account.
        (self.data / "postmaster.pid").unlink(missing_ok=True)
        if self.socket_dir.is_dir():
            for stale in self.socket_dir.glob(".s.PGSQL.*"):
                stale.unlink(missing_ok=True)

    def _answers(self) -> bool:
        try:
            return self.sql("SELECT 1", timeout=5.0).strip() == "1"
        except PaasError:
            return False

    def stop(self) -> None:
        """A fast shutdown (clients disconnected, data checkpointed), bounded; a server
        that does not stop in time is killed (recovery at the next start)."""
        with hosting.locked(self.lock_path):
            self._stop()

    def stop_if_unused(self) -> bool:
        """Stops the server if no add-on is recorded, looked at under the lock: a
        provision writes its record before it takes the lock to start the server."""
        with hosting.locked(self.lock_path):
            if self.addon_ids():
                return False
            self._stop()
            return True

    def _stop(self) -> None:
        pid = self.pid()
        if pid is None:
            self._end_orphans()
            return
        argv = [
            str(bin_dir() / "pg_ctl"), "stop",
            "--pgdata", str(self.data),
            "--mode", "fast", "--wait", "--timeout", "30", "--silent",
        ]  # fmt: skip
        with contextlib.suppress(CommandFailed):
            procs.run(hosting.as_account(hosting.account(ACCOUNT), argv), 40, env=self._env())
        identity = procs.identity(pid)
        if identity is not None:
            procs.stop_processes([identity], grace=5.0)
        self._end_orphans()

    def sql(self, script: str, database: str = "postgres", timeout: float = SQL_TIMEOUT) -> str:
        """Runs SQL as the superuser through the socket (the script on stdin, so secrets
        in it stay out of argv); returns psql's unaligned output."""
        port = self.port()
        if port is None:
            raise hosting.ServerUnavailable("PostgreSQL has not been started yet")
        argv = [
            str(bin_dir() / "psql"), "--no-psqlrc", "--quiet", "--no-align", "--tuples-only",
            "--set", "ON_ERROR_STOP=1",
            "--host", str(self.socket_dir), "--port", str(port),
            "--username", SUPERUSER, "--dbname", database, "--file", "-",
        ]  # fmt: skip
        return procs.run(argv, timeout, input=script.encode(), env=self._env()).decode()

    def admin_argv(self, program: str, database: str, role: str) -> list[str]:
        """A client program (pg_dump, pg_restore) logged in as the superuser by socket but
        running every statement as the add-on's `role` (SET ROLE): a dump carries the
        tenant's code (CHECK constraints, defaults, triggers calling its functions), which
        must never run with the superuser's rights."""
        return [
            str(bin_dir() / program),
            "--host", str(self.socket_dir), "--port", str(self.port() or 0),
            "--username", SUPERUSER, "--dbname", database, "--role", role,
        ]  # fmt: skip

    @staticmethod
    def _env() -> dict[str, str]:
        return {**procs.host_env(), "PGCONNECT_TIMEOUT": "5"}


def platform_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


class PostgreSQL:
    """The `Service` of postgresql add-ons (paas.addons.service)."""

    name = "postgresql"
    aliases = ("heroku-postgresql", "postgres", "pg")
    default_attachment = "DATABASE"
    plans = PLANS
    default_plan = "hobby"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cluster = Cluster(settings)

    def provision(self, addon_id: str, plan: Plan) -> str:
        path = self.cluster.record_path(addon_id)
        record = hosting.read_record(path)
        if record is None:
            name = object_name(addon_id)
            record = {"id": addon_id, "database": name, "role": name, "plan": plan.name}
            record["password"] = hosting.password()
            hosting.write_record(path, record)
        elif record.get("plan") != plan.name:
            record["plan"] = plan.name
            hosting.write_record(path, record)
        self.cluster.ensure_running()
        self.cluster.sql(create_script(record, plan))
        self.cluster.sql(lock_down_schema(), database=hosting.text(record, "database"))
        return self.url(addon_id)

    def deprovision(self, addon_id: str) -> None:
        path = self.cluster.record_path(addon_id)
        record = hosting.read_record(path)
        if record is not None:
            self.cluster.ensure_running()
            self.cluster.sql(drop_script(record))
        shutil.rmtree(self.cluster.backups_dir(addon_id), ignore_errors=True)
        path.unlink(missing_ok=True)
        self.cluster.stop_if_unused()

    def endpoint(self, addon_id: str) -> tuple[str, int]:
        self.record(addon_id)
        port = self.cluster.port()
        if port is None:
            raise hosting.ServerUnavailable("PostgreSQL has not been started yet")
        return self.cluster.address(), port

    def record(self, addon_id: str) -> dict[str, object]:
        record = hosting.read_record(self.cluster.record_path(addon_id))
        if record is None:
            raise NotFound(f"no postgresql add-on {addon_id!r} on this platform")
        return record

    def url(self, addon_id: str) -> str:
        record = self.record(addon_id)
        address, port = self.endpoint(addon_id)
        role, secret = hosting.text(record, "role"), hosting.text(record, "password")
        return f"postgres://{role}:{secret}@{address}:{port}/{hosting.text(record, 'database')}"


def scram_verifier(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802, 7677): sent
    instead of the password, so the password itself never reaches the server, its log or
    its catalogs. The generated passwords are ASCII, which SASLprep leaves as they are."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


def create_script(record: dict[str, object], plan: Plan) -> str:
    """Idempotent: the role (password, plan's limits) and its database, CONNECT revoked
    from PUBLIC on it and on the cluster's own databases."""
    name = hosting.text(record, "role")
    database = hosting.text(record, "database")
    secret = scram_verifier(hosting.text(record, "password"), os.urandom(16))
    return f"""
SELECT format('CREATE ROLE %I', '{name}')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') \\gexec
ALTER ROLE "{name}" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
 CONNECTION LIMIT {plan.connections} PASSWORD '{secret}';
ALTER ROLE "{name}" SET work_mem = '{work_mem_mb(plan)}MB';
SELECT format('CREATE DATABASE %I OWNER %I TEMPLATE template0 ENCODING ''UTF8''',
              '{database}', '{name}')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{database}') \\gexec
REVOKE ALL ON DATABASE "{database}" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE "{database}" TO "{name}";
REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;
REVOKE CONNECT ON DATABASE template1 FROM PUBLIC;
"""


def lock_down_schema() -> str:
    return "REVOKE CREATE ON SCHEMA public FROM PUBLIC;\n"


def drop_script(record: dict[str, object]) -> str:
    """Logins refused, connections ended, then the database and the role dropped."""
    name = hosting.text(record, "role")
    database = hosting.text(record, "database")
    return f"""
SELECT format('ALTER ROLE %I NOLOGIN', '{name}')
 WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') \\gexec
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
 WHERE usename = '{name}' OR datname = '{database}';
DROP DATABASE IF EXISTS "{database}" WITH (FORCE);
DROP ROLE IF EXISTS "{name}";
"""


def service(settings: Settings) -> PostgreSQL:
    """The registry's entry point (paas.addons.registry): raises if PostgreSQL is not
    installed, so the catalog leaves the service out."""
    bin_dir()
    return PostgreSQL(settings)
