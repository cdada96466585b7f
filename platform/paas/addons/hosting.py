"""What the add-on servers share: where they listen, their records and directories under
PAAS_HOME/addons, the accounts they run as, and the checks of a detached server's pid.

The servers are daemons of their own (pg_ctl's postmaster, a daemonized redis-server): no
platform process is their parent, so stopping or killing `paas server` leaves them
serving, like dynos and HAProxy, and whoever looks next (a provision, the supervisor, a
restarted platform) adopts them through their pidfiles.

Invariant: a record (what provision created, holding the add-on's secret) is written
whole at 0600 before its server is started, and removed only after everything it names is
gone; records are the only list of add-ons this side of the seam keeps.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
import secrets
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

from paas.domain import addressing
from paas.domain.errors import InvalidParams, PaasError
from paas.domain.settings import Settings
from paas.dynos import capability
from paas.host import procs
from paas.host.jsonfile import read_json, write_json
from paas.isolation import network

LOOPBACK = "127.0.0.1"
START_TIMEOUT_SECONDS = 30.0
ADDON_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class ServerUnavailable(PaasError):
    """An add-on's server did not answer in time; the message says where its log is."""

    id = "addon_server_unavailable"
    status = 503


def check_id(addon_id: str) -> str:
    """An add-on id names directories and files: letters, digits, `.`, `_`, `-` only."""
    if not ADDON_ID.fullmatch(addon_id) or ".." in addon_id:
        raise InvalidParams(
            f"add-on id {addon_id!r} is not valid: use 1-100 letters, digits, '.', '_' or '-'"
        )
    return addon_id


def root(settings: Settings) -> Path:
    return settings.home / "addons"


def service_dir(settings: Settings, service: str) -> Path:
    """PAAS_HOME/addons/SERVICE, made on first use: traversable (0711) so the account a
    server runs as reaches its own 0700 directory inside."""
    path = root(settings) / service
    for directory in (root(settings), path):
        directory.mkdir(mode=0o711, exist_ok=True)
        directory.chmod(0o711)
    return path


def containers(settings: Settings) -> bool:
    return capability.load(settings).containers


def listen_address(settings: Settings) -> str:
    """The dyno bridge's host address when dynos run in containers, else loopback: where
    dynos reach the host, and no other host address."""
    if containers(settings):
        return network.gateway(addressing.subnet(settings.dyno_subnet))
    return LOOPBACK


def client_networks(settings: Settings) -> list[str]:
    """The networks a server accepts password logins from: the dyno subnet, and loopback
    when dynos are plain processes (they connect from the host)."""
    nets = [str(addressing.subnet(settings.dyno_subnet))]
    if not containers(settings):
        nets.append(f"{LOOPBACK}/32")
    return nets


def free_port(address: str) -> int:
    """A TCP port free on `address` now (the kernel's pick); several platforms share the
    host, so no fixed port is safe."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        port: int = probe.getsockname()[1]
    return port


def answers(address: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, port), timeout):
        return True
    return False


def password() -> str:
    """A strong secret safe in a URL and a config file: 32 bytes, URL-safe base64."""
    return secrets.token_urlsafe(32)


def read_record(path: Path) -> dict[str, object] | None:
    return read_json(path)


def write_record(path: Path, data: dict[str, object]) -> None:
    write_json(path, data)


def text(record: dict[str, object], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise PaasError(f"add-on record is missing {key!r}: remove it and provision again")
    return value


def number(record: dict[str, object], key: str) -> int:
    value = record.get(key)
    if not isinstance(value, int):
        raise PaasError(f"add-on record is missing {key!r}: remove it and provision again")
    return value


def account(name: str) -> pwd.struct_passwd | None:
    """The unprivileged account a server runs as when the platform is root (Debian's own
    `postgres` and `redis`, made by their packages); None when the platform is not root
    and its servers run as its own uid."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise PaasError(
            f"user {name!r} is missing: install the server's Debian package (make setup)"
        ) from None


def as_account(user: pwd.struct_passwd | None, argv: list[str]) -> list[str]:
    if user is None:
        return argv
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", *argv]


def own(path: Path, user: pwd.struct_passwd | None, mode: int) -> None:
    path.chmod(mode)
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)


def private_dir(path: Path, user: pwd.struct_passwd | None) -> Path:
    """A 0700 directory the server's account owns."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    own(path, user, 0o700)
    return path


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One starter or stopper of a server at a time, across the API's workers and the
    supervisor."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def pid_from(pidfile: Path) -> int | None:
    """The first line of a pidfile (postmaster.pid, redis's), or None."""
    try:
        first = pidfile.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def exe_name(pid: int) -> str | None:
    """The file name of the program a process runs (`postgres`), or None."""
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")).name
    except OSError:
        return None


def cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def running(pidfile: Path, is_ours: Callable[[int], bool]) -> int | None:
    """The pid in pidfile if that process lives and is the server's (a pid the kernel
    reused for something else is not)."""
    pid = pid_from(pidfile)
    if pid is None or procs.start_time(pid) is None:
        return None
    return pid if is_ours(pid) else None


def wait_answering(check: Callable[[], bool], what: str, log: Path, timeout: float) -> None:
    if not procs.wait_until(check, timeout, interval=0.1):
        raise ServerUnavailable(f"{what} did not answer within {timeout:g}s: see {log} for why")
