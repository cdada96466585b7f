"""Small helpers over /proc and signals, shared by the runtime, supervisor and server.

A pid alone can be reused by the kernel: identity is (pid, start time in clock ticks).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path

from paas.domain.errors import PaasError

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


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


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


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


def run(argv: list[str], timeout: float = 30, input: bytes | None = None) -> bytes:
    """Runs a command to its end and returns its stdout. Any failure (non-zero exit, time
    out, program missing) is a PaasError naming the command and its first stderr line,
    the one way a subprocess failure enters the error hierarchy."""
    try:
        result = subprocess.run(argv, input=input, capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PaasError(f"{' '.join(argv)} failed: {error}") from None
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        detail = reason[0] if reason else f"exit status {result.returncode}"
        raise PaasError(f"{' '.join(argv)} failed: {detail}")
    return result.stdout
