"""Processes: running a command to its end (`run`, the one way the control plane does),
and small helpers over /proc and signals, shared by the runtime, supervisor and server.

Invariants: a command's failure only ever leaves `run` as a CommandFailed (a PaasError);
a command gets the environment its caller gives, or host_env(), never the platform's
own. A pid alone can be reused by the kernel: identity is (pid, start time in clock ticks).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

from paas.domain.errors import CommandFailed

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


class Child(Protocol):
    """A started dyno as its supervisor holds it: a child of the supervisor's, whose pid
    stays its own until poll() has reaped it."""

    @property
    def pid(self) -> int: ...

    @property
    def started(self) -> int | None:
        """Its start time, read while the pid was still its own (None: it had ended)."""
        ...

    @property
    def output(self) -> int:
        """The read end of the pipe its stdout and stderr go to."""
        ...

    def poll(self) -> int | None:
        """Its exit status (128 + N for a death by signal N), or None while it runs."""
        ...


def start_time(pid: int) -> int | None:
    """The process's start time (field 22 of /proc/PID/stat), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def alive(pid: int | None, started: int | None) -> bool:
    return pid is not None and started is not None and start_time(pid) == started


def shell_status(code: int) -> int:
    """An exit code as Popen and os.waitstatus_to_exitcode give it (-N for a death by
    signal N) as a shell and the OCI runtimes report it: 128 + N."""
    return code if code >= 0 else 128 - code


def wait_exit(process: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The process's exit code once it ends, or None if it still runs after `timeout`.
    Woken by the kernel through a pidfd the moment it ends (Popen.wait(timeout) polls,
    every 50 ms once it has waited a while)."""
    if process.returncode is not None:  # reaped: its pid may be another process's now
        return process.returncode
    try:
        pidfd = os.pidfd_open(process.pid)
    except OSError:  # a kernel before 5.3
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    return process.wait() if ready else None


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _live_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, the /proc/PID/stat fields after the command name) of each live, non-zombie
    process: field 0 is the state, 1 the parent, 2 the process group, 19 the start time."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            yield int(entry.name), fields


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    return [pid for pid, fields in _live_stats() if int(fields[2]) == pgid]


def group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


Identity = tuple[int, int]  # (pid, start time): a process, even after its pid is reused


def identity(pid: int) -> Identity | None:
    """The process's identity now, or None if it is gone."""
    started = start_time(pid)
    return None if started is None else (pid, started)


def children(pid: int) -> list[Identity]:
    """The live (non-zombie) processes whose parent is `pid`."""
    return [(child, int(fields[19])) for child, fields in _live_stats() if int(fields[1]) == pid]


def stop_processes(targets: list[Identity], grace: float, kill_wait: float = 5.0) -> list[int]:
    """Stops processes that need not be this one's children: SIGTERM, up to `grace` seconds
    for them to end, SIGKILL for the rest, up to `kill_wait` more; the pids still alive."""

    def living() -> list[Identity]:
        return [(pid, started) for pid, started in targets if alive(pid, started)]

    for pid, _ in living():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    if not wait_until(lambda: not living(), grace):
        for pid, _ in living():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not living(), kill_wait)
    return [pid for pid, _ in living()]


def become_subreaper() -> None:
    """Orphans of this process's descendants are re-parented here, to be reaped."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1)


def reap_all(timeout: float) -> None:
    """Waits for every child (orphans included) until none is left or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.02)


def wait_until(predicate: object, timeout: float, interval: float = 0.05) -> bool:
    """Polls predicate() until true or timeout; returns its last answer."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def die_with_parent() -> None:
    """preexec_fn: the kernel sends SIGTERM to this child when its parent dies (even -9)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STDERR_TAIL_LINES = 3
STDERR_TAIL_CHARS = 400


def host_env() -> dict[str, str]:
    """A host command's environment unless its caller gives one: the platform's PATH and
    a fixed locale (messages read, and are parsed, the same on every host), nothing else
    of the platform's own environment (the admin token, the settings)."""
    return {"PATH": os.environ.get("PATH") or HOST_PATH, "LC_ALL": "C.UTF-8"}


def run(
    argv: list[str],
    timeout: float = 30,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> bytes:
    """Runs a command to its end and returns its stdout: the one way the control plane
    runs a command. Any failure (non-zero exit, time out, program missing) is a
    CommandFailed naming the command and the tail of its stderr. `env` is the whole
    environment of the command (host_env() when None): nothing is inherited."""
    try:
        result = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            timeout=timeout,
            env=host_env() if env is None else dict(env),
        )
    except subprocess.TimeoutExpired as expired:
        stderr = (expired.stderr or b"").decode(errors="replace")
        detail = f"timed out after {timeout:g}s"
        raise CommandFailed(argv, detail, None, stderr) from None
    except OSError as error:
        raise CommandFailed(argv, error.strerror or str(error)) from None
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace")
        detail = stderr_tail(stderr) or f"exit status {result.returncode}"
        raise CommandFailed(argv, detail, result.returncode, stderr)
    return result.stdout


def stderr_tail(stderr: str) -> str:
    """The last few lines of a command's stderr on one line: where tools say why they
    stopped (tar's first line names a file, its last says it gave up)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    tail = " / ".join(lines[-STDERR_TAIL_LINES:])
    return tail if len(tail) <= STDERR_TAIL_CHARS else "..." + tail[-STDERR_TAIL_CHARS:]
