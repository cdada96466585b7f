"""Running a build's child processes with bounds: a watchdog that kills their process
groups at a deadline, a capped copy from one pipe to another, and a command whose stderr
is kept as a bounded tail. Invariant: nothing here waits without a deadline a caller set,
nor keeps more than a fixed number of bytes of a child's output.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from paas.host import procs
from paas.isolation import users
from paas.isolation.users import Account

CHUNK = 65536
FETCH_OUTPUT_KEPT = 2048  # bytes of a failed command's stderr kept for its message


class Watchdog:
    """Kills process groups once `timeout` seconds have passed, unless cancelled first."""

    def __init__(
        self, timeout: float, pids: list[int], on_fire: Callable[[], object] | None = None
    ) -> None:
        self.pids = pids
        self.on_fire = on_fire
        self.expired = threading.Event()
        self.timer = threading.Timer(timeout, self.fire)
        self.timer.start()

    def fire(self) -> None:
        self.expired.set()
        for pid in self.pids:
            procs.signal_group(pid, signal.SIGKILL)
        if self.on_fire is not None:
            self.on_fire()

    @property
    def fired(self) -> bool:
        return self.expired.is_set()

    def cancel(self) -> None:
        self.timer.cancel()


def pipe(source: IO[bytes], sink: IO[bytes], limit: int) -> tuple[int, bool]:
    """Copies source to sink in chunks until EOF, more than `limit` bytes, or the sink
    closing; (bytes read, whether all of source went through). When not, the caller stops
    the writer, which would otherwise block on a pipe no one reads."""
    total = 0
    complete = False
    try:
        while chunk := source.read1(CHUNK):  # type: ignore[attr-defined]
            total += len(chunk)
            if total > limit:
                break
            sink.write(chunk)
        else:
            complete = True
    except BrokenPipeError:
        pass  # the reader failed: its exit status says why
    finally:
        with contextlib.suppress(BrokenPipeError):
            sink.close()
    return total, complete


def run_capped(
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    timeout: float,
    account: Account | None,
) -> tuple[int, str, bool]:
    """Runs a command with stdout discarded; (exit status, stderr's last bytes, expired)."""
    with subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        **users.run_as(account),
    ) as process:
        assert process.stderr is not None
        watchdog = Watchdog(timeout, [process.pid])
        tail = b""
        try:
            while chunk := process.stderr.read1(CHUNK):  # type: ignore[attr-defined]
                tail = (tail + chunk)[-FETCH_OUTPUT_KEPT:]
        finally:
            watchdog.cancel()
        code = process.wait()
    return code, tail.decode(errors="replace"), watchdog.fired


def first_line(file: IO[bytes]) -> str:
    """The first line of a command's captured stderr, for a message."""
    file.seek(0)
    lines = file.read(FETCH_OUTPUT_KEPT).decode(errors="replace").strip().splitlines()
    return lines[0][:300] if lines else "no error output"
