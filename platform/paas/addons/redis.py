"""The Redis add-on: one redis-server per add-on, with its own port, password, memory
limit and data.

An add-on's server lives in PAAS_HOME/addons/redis/ID (redis.conf, data/ with its
append-only file, its pidfile and log), owned by Debian's `redis` account it runs as (the
platform's own uid when it is not root); its record (port, password, plan) is
PAAS_HOME/addons/redis/records/ID.json. redis-server daemonizes itself, so it outlives
the control plane like dynos do and is adopted through its pidfile.

Invariants: a server listens on one address (hosting.listen_address) only, in protected
mode, behind `requirepass`; the commands that would change or stop the server from a
client (CONFIG, DEBUG, SHUTDOWN, ACL, MODULE, REPLICAOF...) do not exist in it; its
memory is capped by its plan with `noeviction`, so a full cache refuses writes instead of
dropping data silently.
"""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from paas.addons import hosting
from paas.addons.service import Plan
from paas.domain.errors import CommandFailed, NotFound, PaasError
from paas.domain.settings import Settings
from paas.host import procs

ACCOUNT = "redis"
SERVER = "/usr/bin/redis-server"
STOP_SECONDS = 10.0
# MIGRATE has redis-server (a host process, not behind the dyno firewall) connect to any
# address; SAVE blocks the server and BGSAVE/BGREWRITEAOF fork it outside the plan's memory
# (its own `save` and AOF rewrites still run). MONITOR stays: it shows only the tenant's own.
DISABLED_COMMANDS = (
    "CONFIG", "DEBUG", "SHUTDOWN", "ACL", "MODULE", "REPLICAOF", "SLAVEOF", "FAILOVER",
    "SYNC", "PSYNC", "MIGRATE", "SAVE", "BGSAVE", "BGREWRITEAOF",
)  # fmt: skip
PLANS = {
    "hobby": Plan("hobby", 25, 20, "hobby: 25 MB, 20 connections"),
    "standard": Plan("standard", 100, 200, "standard: 100 MB, 200 connections"),
}


def config(address: str, port: int, secret: str, plan: Plan, directory: Path) -> str:
    """redis.conf of one add-on's server (pure)."""
    lines = [
        f"bind {address}",
        f"port {port}",
        "protected-mode yes",
        f"requirepass {secret}",
        "daemonize yes",
        f"pidfile {directory / 'redis.pid'}",
        f"logfile {directory / 'redis.log'}",
        f"dir {directory / 'data'}",
        "appendonly yes",
        "appendfsync everysec",
        "save 3600 1 300 100 60 10000",
        f"maxmemory {plan.memory_mb}mb",
        "maxmemory-policy noeviction",
        f"maxclients {plan.connections}",
        "enable-debug-command no",
        "enable-module-command no",
        "enable-protected-configs no",
        *(f'rename-command {name} ""' for name in DISABLED_COMMANDS),
    ]
    return "\n".join(lines) + "\n"


def ping(address: str, port: int, secret: str, timeout: float = 1.0) -> bool:
    """Whether the server answers AUTH and PING with this password."""
    return state(probe(address, port, secret, timeout)) == "ready"


def probe(address: str, port: int, secret: str, timeout: float = 1.0) -> bytes | None:
    """The server's answer to AUTH and PING, None when nothing answered."""
    try:
        with socket.create_connection((address, port), timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(command("AUTH", secret) + command("PING"))
            answer = b""
            while answer.count(b"\r\n") < 2:
                chunk = conn.recv(256)
                if not chunk:
                    break
                answer += chunk
    except OSError:
        return None
    return answer


def state(answer: bytes | None) -> str:
    """ "ready", "loading" (it reads its data set back: it will answer) or "down" (pure)."""
    if answer is None:
        return "down"
    if answer.startswith(b"+OK\r\n+PONG\r\n"):
        return "ready"
    return "loading" if b"-LOADING" in answer else "down"


def command(*words: str) -> bytes:
    """One command in Redis's protocol (RESP arrays of bulk strings)."""
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


@dataclass(frozen=True)
class Instance:
    """One add-on's redis-server: its directory, record and process."""

    settings: Settings
    addon_id: str

    @property
    def base(self) -> Path:
        return hosting.service_dir(self.settings, "redis")

    @property
    def directory(self) -> Path:
        return self.base / hosting.check_id(self.addon_id)

    @property
    def record_path(self) -> Path:
        records = self.base / "records"
        records.mkdir(mode=0o700, exist_ok=True)
        return records / f"{hosting.check_id(self.addon_id)}.json"

    @property
    def log(self) -> Path:
        return self.directory / "redis.log"

    def record(self) -> dict[str, object] | None:
        return hosting.read_record(self.record_path)

    def pid(self, port: object = None) -> int | None:
        """The server's pid while it runs: its pidfile's, if that process's title names
        its port (`port`, else the record's)."""
        if port is None:
            record = self.record()
            port = None if record is None else record.get("port")
        if not isinstance(port, int):
            return None

        def is_ours(pid: int) -> bool:
            argv = hosting.cmdline(pid)
            return bool(argv) and "redis-server" in argv[0] and f":{port}" in argv[0]

        return hosting.running(self.directory / "redis.pid", is_ours)

    def answers(self) -> bool:
        record = self.record()
        if record is None:
            return False
        address = hosting.listen_address(self.settings)
        return ping(address, hosting.number(record, "port"), hosting.text(record, "password"))

    def _loading(self) -> bool:
        record = self.record()
        if record is None:
            return False
        address = hosting.listen_address(self.settings)
        answer = probe(address, hosting.number(record, "port"), hosting.text(record, "password"))
        return state(answer) == "loading"

    def ensure_running(self) -> None:
        """Starts the server unless it runs (its config written anew: the address follows
        the isolation mode); returns once it answers."""
        with hosting.locked(self.lock_path):
            record = self.record()
            if record is None:
                raise NotFound(f"no redis add-on {self.addon_id!r} on this platform")
            if self.pid() is not None:
                if self._loading():  # a second server would fight it for the port and data
                    hosting.wait_answering(
                        self.answers, "redis-server", self.log, hosting.START_TIMEOUT_SECONDS
                    )
                if self.answers():
                    return
            self._start(record)

    def _start(self, record: dict[str, object]) -> None:
        user = hosting.account(ACCOUNT)
        hosting.private_dir(self.directory, user)
        hosting.private_dir(self.directory / "data", user)
        plan = PLANS.get(hosting.text(record, "plan"), PLANS["hobby"])
        address = hosting.listen_address(self.settings)
        conf = self.directory / "redis.conf"
        text = config(
            address, hosting.number(record, "port"), hosting.text(record, "password"), plan,
            self.directory,
        )  # fmt: skip
        conf.write_text(text)
        hosting.own(conf, user, 0o600)
        try:
            procs.run(hosting.as_account(user, [SERVER, str(conf)]), timeout=30)
        except CommandFailed as error:
            raise hosting.ServerUnavailable(
                f"redis-server did not start: {error.message}; see {self.log}"
            ) from None
        hosting.wait_answering(
            self.answers, "redis-server", self.log, hosting.START_TIMEOUT_SECONDS
        )

    @property
    def lock_path(self) -> Path:
        return self.base / f"{hosting.check_id(self.addon_id)}.lock"

    def stop(self) -> None:
        with hosting.locked(self.lock_path):
            self._stop(self.pid())

    @staticmethod
    def _stop(pid: int | None) -> bool:
        """SIGTERM (redis writes its data and exits), bounded; then SIGKILL. Whether it
        is gone."""
        identity = None if pid is None else procs.identity(pid)
        return identity is None or not procs.stop_processes([identity], STOP_SECONDS)

    def remove(self) -> None:
        """Everything of the add-on: the record first, under the lock (a supervisor looking
        meanwhile no longer starts it), then the process, then its directory."""
        with hosting.locked(self.lock_path):
            record = self.record()
            if record is not None:
                pid = self.pid(record.get("port"))
                self.record_path.unlink()
                if not self._stop(pid):
                    hosting.write_record(self.record_path, record)
                    raise PaasError(
                        f"redis-server of add-on {self.addon_id} does not stop: try again"
                    )
            shutil.rmtree(self.directory, ignore_errors=True)
        self.lock_path.unlink(missing_ok=True)


class Redis:
    """The `Service` of redis add-ons (paas.addons.service)."""

    name = "redis"
    aliases = ("heroku-redis",)
    default_attachment = "REDIS"
    plans = PLANS
    default_plan = "hobby"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def instance(self, addon_id: str) -> Instance:
        return Instance(self.settings, hosting.check_id(addon_id))

    def provision(self, addon_id: str, plan: Plan) -> str:
        instance = self.instance(addon_id)
        record = instance.record()
        if record is None:
            address = hosting.listen_address(self.settings)
            record = {
                "id": addon_id,
                "plan": plan.name,
                "port": hosting.free_port(address),
                "password": hosting.password(),
            }
            hosting.write_record(instance.record_path, record)
        elif record.get("plan") != plan.name:
            record["plan"] = plan.name
            hosting.write_record(instance.record_path, record)
            instance.stop()  # the new limits take effect at its start, just below
        instance.ensure_running()
        return self.url(addon_id)

    def deprovision(self, addon_id: str) -> None:
        self.instance(addon_id).remove()

    def endpoint(self, addon_id: str) -> tuple[str, int]:
        record = self.instance(addon_id).record()
        if record is None:
            raise NotFound(f"no redis add-on {addon_id!r} on this platform")
        return hosting.listen_address(self.settings), hosting.number(record, "port")

    def url(self, addon_id: str) -> str:
        record = self.instance(addon_id).record() or {}
        address, port = self.endpoint(addon_id)
        return f"redis://default:{hosting.text(record, 'password')}@{address}:{port}"

    def addon_ids(self) -> list[str]:
        records = hosting.service_dir(self.settings, "redis") / "records"
        return sorted(p.stem for p in records.glob("*.json")) if records.is_dir() else []


def service(settings: Settings) -> Redis:
    """The registry's entry point (paas.addons.registry): raises if redis-server is not
    installed, so the catalog leaves the service out."""
    if not Path(SERVER).exists():
        raise PaasError(
            "redis-server is not installed: run `make setup` (apt package redis-server)"
        )
    return Redis(settings)
