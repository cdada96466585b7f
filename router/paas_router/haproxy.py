"""Drive the one HAProxy master-worker process that serves a run directory.

Invariants:
- At most one master per run directory. It is found through its pidfile, and a pid only
  counts as ours while /proc says it is a live haproxy started on this run directory's
  config, so a recycled pid is never signalled.
- A change the runtime API cannot make is applied by reloading the master (new worker
  takes over the listening sockets, old workers finish their requests) — never by stopping
  and starting, which would refuse connections. A change made through the runtime API is
  installed on disk without a reload, so the next reload serves the same.
- The config and map on disk are always the last ones HAProxy accepted: a candidate is
  validated with ``haproxy -c`` in a scratch directory first, and put back if the reload
  still fails, so a later reload or restart can only load a good config.
- Every wait is bounded by a deadline read from the injected clock.
"""

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from paas_router import fileio, layout
from paas_router.errors import RouterError

DEFAULT_BINARY = Path(shutil.which("haproxy") or "/usr/sbin/haproxy")
# HAProxy needs nothing from the caller's environment; an explicit one keeps a stray
# variable from changing how the config is read.
_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
_POLL_S = 0.05


@dataclass(frozen=True)
class ProcStatus:
    """What the master CLI's ``show proc`` says about the master and its workers."""

    master_pid: int
    reloads: int
    failed_reloads: int
    workers: tuple[int, ...]
    old_workers: tuple[int, ...]


def parse_show_proc(text: str) -> ProcStatus:
    """Parse HAProxy 2.6's ``show proc`` table; raises RouterError if it has no master line.

    The table has a header line, the master line ("PID master RELOADS [failed: N] ..."),
    then sections introduced by "# workers", "# old workers" and "# programs".
    """
    master: ProcStatus | None = None
    section = ""
    workers: list[int] = []
    old: list[int] = []
    for line in text.splitlines():
        if line.startswith("#"):
            section = line.lstrip("#").strip()
            continue
        fields = line.split()
        if len(fields) < 2 or not fields[0].isdigit():
            continue
        if fields[1] == "master":
            failed = 0
            if "[failed:" in line:
                failed = int(line.split("[failed:", 1)[1].split("]", 1)[0])
            master = ProcStatus(int(fields[0]), int(fields[2]), failed, (), ())
        elif fields[1] == "worker" and section == "workers":
            workers.append(int(fields[0]))
        elif fields[1] == "worker" and section == "old workers":
            old.append(int(fields[0]))
    if master is None:
        raise RouterError(f"unexpected answer to 'show proc': {text.strip()[:200]!r}")
    return ProcStatus(
        master.master_pid, master.reloads, master.failed_reloads, tuple(workers), tuple(old)
    )


def _proc_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` from /proc, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may itself contain ") ".
    return stat.rsplit(")", 1)[1].split()[0]


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _is_haproxy(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) haproxy process."""
    state = _proc_state(pid)
    if state is None or state in ("Z", "X"):
        return False
    argv = _cmdline(pid)
    return bool(argv) and os.path.basename(argv[0]).startswith("haproxy")


def _error_lines(output: str) -> str:
    """HAProxy's alerts and warnings from ``output``, joined into one line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    wanted = [ln for ln in lines if "[ALERT]" in ln or "[WARNING]" in ln] or lines
    return " | ".join(wanted)[:2000] or "(no output)"


class HAProxy:
    """The HAProxy master serving ``run_dir``: check, apply (start or reload), stop.

    Seams: ``binary`` (the haproxy executable), ``run_dir``, ``clock`` and ``sleep`` (for
    every bounded wait) and ``timeout`` (seconds allowed for a start, reload or check).
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        binary: Path = DEFAULT_BINARY,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 10.0,
    ) -> None:
        self.run_dir = run_dir.resolve()
        self.binary = binary
        self._clock = clock
        self._sleep = sleep
        self._timeout = timeout
        for name in (layout.ADMIN_SOCKET_FILE, layout.MASTER_SOCKET_FILE):
            if not layout.socket_path_fits(self.run_dir / name):
                raise RouterError(
                    f"run directory {self.run_dir} is too long for a unix socket path; "
                    "use a shorter one"
                )

    @property
    def config_path(self) -> Path:
        return self.run_dir / layout.CONFIG_FILE

    @property
    def hosts_map_path(self) -> Path:
        return self.run_dir / layout.HOSTS_MAP_FILE

    @property
    def admin_socket(self) -> Path:
        return self.run_dir / layout.ADMIN_SOCKET_FILE

    @property
    def master_socket(self) -> Path:
        return self.run_dir / layout.MASTER_SOCKET_FILE

    @property
    def pid_path(self) -> Path:
        return self.run_dir / layout.PID_FILE

    # -- validation and apply ---------------------------------------------------------

    def check(self, text: str, hosts_map_text: str = "") -> None:
        """Raise RouterError with HAProxy's own messages unless it accepts ``text``.

        The config names its map by a relative path, so the candidate is checked in a
        scratch directory holding the candidate map beside it; the live files are not
        touched.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="check-", dir=self.run_dir))
        try:
            (scratch / layout.HOSTS_MAP_FILE).write_text(hosts_map_text, encoding="utf-8")
            cfg = scratch / layout.CONFIG_FILE
            cfg.write_text(text, encoding="utf-8")
            argv = [str(self.binary), "-c", "-C", str(scratch), "-f", str(cfg)]
            try:
                done = subprocess.run(
                    argv,
                    cwd=scratch,
                    env=_ENV,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=self._timeout,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as err:
                raise RouterError(f"could not run {self.binary} -c: {err}") from None
            if done.returncode != 0:
                raise RouterError(
                    "haproxy rejected the config: " + _error_lines(done.stdout + done.stderr)
                )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _ensure_chroot(self) -> None:
        """The workers' chroot (when the config drops privileges): an empty directory that
        only its owner can change, so a worker cannot plant anything in its own root."""
        chroot = self.run_dir / layout.CHROOT_DIR
        chroot.mkdir(mode=0o755, exist_ok=True)
        info = chroot.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or any(chroot.iterdir()):
            raise RouterError(f"{chroot} must be an empty directory owned by this user")
        if stat.S_IMODE(info.st_mode) != 0o755:
            chroot.chmod(0o755)

    def installed(self) -> tuple[str, str] | None:
        """The (config, hosts map) currently on disk, or None if there are none yet."""
        config = fileio.read_text(self.config_path)
        hosts = fileio.read_text(self.hosts_map_path)
        if config is None or hosts is None:
            return None
        return config, hosts

    def apply(self, text: str, hosts_map_text: str) -> None:
        """Make HAProxy serve ``text``: validate, install, then start or reload.

        On any failure the previous config stays on disk and keeps serving.
        """
        self.check(text, hosts_map_text)
        self._ensure_chroot()
        with self._locked():
            previous = self.installed()
            self._install(text, hosts_map_text)
            try:
                pid = self.master_pid()
                if pid is None:
                    self._start()
                else:
                    self._reload(pid)
            except BaseException:
                if previous is not None:
                    self._install(*previous)
                raise

    def install(self, text: str, hosts_map_text: str) -> None:
        """Write ``text`` and its map without reloading or validating them again.

        For a change made in the running HAProxy through the runtime API: the files on disk
        must say the same, or the next reload would undo it. Such a change only adds or
        removes server lines and map entries, built from a validated route table, to a
        config whose every other line passed ``check`` at the last reload; a second
        ``haproxy -c`` per change would cost a process and tens of milliseconds of CPU
        while dynos are starting, for no new assurance.
        """
        with self._locked():
            self._install(text, hosts_map_text)

    def _install(self, text: str, hosts_map_text: str) -> None:
        # The map first: a reload racing with this reads a new map with the old config at
        # worst, which only routes to backends the old config already has or to the 404.
        fileio.write_atomic(self.hosts_map_path, hosts_map_text)
        fileio.write_atomic(self.config_path, text)

    def _start(self) -> None:
        argv = [
            str(self.binary),
            "-W",
            "-D",
            "-S",
            f"{self.master_socket},mode,600",
            "-p",
            str(self.pid_path),
            "-C",
            str(self.run_dir),
            "-f",
            str(self.config_path),
        ]
        with tempfile.TemporaryFile() as err:
            try:
                # Its own session: the master must outlive a router that is SIGKILLed.
                launcher = subprocess.Popen(
                    argv,
                    cwd=self.run_dir,
                    env=_ENV,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    start_new_session=True,
                )
            except OSError as exc:
                raise RouterError(f"could not run {self.binary}: {exc}") from None
            try:
                # With -D the launcher exits as soon as the master is daemonized.
                rc = launcher.wait(timeout=self._timeout)
            except subprocess.TimeoutExpired:
                launcher.kill()
                launcher.wait()
                raise RouterError(f"haproxy did not daemonize within {self._timeout:g}s") from None
            if rc != 0:
                err.seek(0)
                output = err.read().decode(errors="replace")
                raise RouterError(f"haproxy failed to start: {_error_lines(output)}")
        deadline = self._clock() + self._timeout
        while True:
            if self.master_pid() is not None:
                with contextlib.suppress(RouterError):
                    if self.status().workers:
                        return
            if self._clock() >= deadline:
                raise RouterError(
                    f"haproxy started but no worker was running after {self._timeout:g}s"
                )
            self._sleep(_POLL_S)

    def _reload(self, master: int) -> None:
        before = self.status()
        known = set(before.workers) | set(before.old_workers)
        # Debian's 2.6 answers nothing to "reload" and drops the connection while the
        # master re-executes; success is a worker we have not seen before. A reset while
        # sending is therefore not proof of failure: the poll below decides.
        send_error = ""
        try:
            self.master_command("reload")
        except RouterError as err:
            send_error = f" ({err})"
        deadline = self._clock() + self._timeout
        while True:
            # By pid, not through the pidfile, which the re-executing master may rewrite; and
            # by liveness only: while it re-executes, /proc/PID/cmdline can read empty.
            if _proc_state(master) in (None, "Z", "X"):
                raise RouterError("the haproxy master exited during a reload")
            try:
                now = self.status()
            except RouterError:
                now = None  # the master is re-executing and not listening yet
            if now is not None:
                if any(pid not in known for pid in now.workers):
                    return
                if now.reloads > before.reloads and now.failed_reloads > before.failed_reloads:
                    raise RouterError(
                        "haproxy could not load the new config on reload; "
                        "the previous workers keep serving"
                    )
            if self._clock() >= deadline:
                raise RouterError(
                    f"no new haproxy worker appeared within {self._timeout:g}s of a reload"
                    + send_error
                )
            self._sleep(_POLL_S)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Two routers on one run directory must not interleave install and reload.
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / layout.LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # -- observing ----------------------------------------------------------------------

    def master_pid(self) -> int | None:
        """The pid of the live master serving this run directory, or None.

        Adopts a master started by another HAProxy object or an earlier router process.
        """
        text = fileio.read_text(self.pid_path)
        if text is None:
            return None
        try:
            pid = int(text.split()[0])
        except (ValueError, IndexError):
            return None
        if pid <= 0 or not _is_haproxy(pid):
            return None
        # Guard against pid reuse by another haproxy: ours was started on our config.
        if str(self.config_path) not in _cmdline(pid):
            return None
        return pid

    def running(self) -> bool:
        """Whether a master for this run directory is alive."""
        return self.master_pid() is not None

    def status(self) -> ProcStatus:
        """The master's ``show proc`` answer, parsed."""
        return parse_show_proc(self.master_command("show proc"))

    def master_command(self, command: str) -> str:
        """Send one command to the master CLI socket and return its answer."""
        return self._cli(self.master_socket, command)

    def runtime_command(self, command: str) -> str:
        """Send one runtime API command (``set server``, ``add server``...) to the worker."""
        return self._cli(self.admin_socket, command)

    def _cli(self, path: Path, command: str) -> str:
        if "\n" in command or ";" in command:
            # One command per call: the CLI would otherwise run what follows as well.
            raise RouterError(f"refusing a multi-command CLI line: {command!r}")
        chunks: list[bytes] = []
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self._timeout)
                sock.connect(str(path))
                sock.sendall(command.encode() + b"\n")
                # The master CLI answers only once it sees the end of the request.
                sock.shutdown(socket.SHUT_WR)
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as err:
            raise RouterError(f"haproxy CLI {path} did not answer {command!r}: {err}") from None
        return b"".join(chunks).decode(errors="replace")

    # -- stopping -----------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the master and all its workers; return only once none is left.

        SIGUSR1 first (workers finish what they serve), SIGTERM after ``timeout``, SIGKILL
        after a further grace; raises RouterError if a process survives even that.
        """
        with self._locked():
            master = self.master_pid()
            if master is None:
                self.pid_path.unlink(missing_ok=True)
                return
            pids = {master, *self._worker_pids(master)}
            self._signal(pids, signal.SIGUSR1)
            if not self._wait_gone(pids, timeout):
                self._signal(pids, signal.SIGTERM)
                if not self._wait_gone(pids, min(timeout, 5.0)):
                    self._signal(pids, signal.SIGKILL)
                    if not self._wait_gone(pids, 2.0):
                        left = sorted(p for p in pids if _is_haproxy(p))
                        raise RouterError(f"haproxy processes {left} survived SIGKILL")
            self.pid_path.unlink(missing_ok=True)

    def _worker_pids(self, master: int) -> set[int]:
        pids: set[int] = set()
        with contextlib.suppress(RouterError):
            status = self.status()
            pids.update(status.workers, status.old_workers)
        # /proc as well, in case the CLI is busy or a worker is not listed yet.
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{master}/task/{master}/children").read_text()
            pids.update(int(p) for p in children.split())
        return pids

    @staticmethod
    def _signal(pids: Iterable[int], sig: signal.Signals) -> None:
        for pid in pids:
            if _is_haproxy(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)

    def _wait_gone(self, pids: Iterable[int], timeout: float) -> bool:
        pending = set(pids)
        deadline = self._clock() + timeout
        while True:
            pending = {p for p in pending if _is_haproxy(p)}
            if not pending:
                return True
            if self._clock() >= deadline:
                return False
            self._sleep(_POLL_S)
