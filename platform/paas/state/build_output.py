"""A running build's output, live: the push hook appends to a file, the API follows it.

The hook (paas.push.hook) writes each piece of output to RUN_DIR/build-output/BUILD_ID as
it tells the pusher; when the build ends, the store's build record holds the output and the
file is removed. A reader of a build's output stream (`output_stream_url`) follows the file
while the build is pending and is given the record's output once it is not.

Invariants: the file is private to root (0600 in a 0700 directory); it never outgrows
MAX_BYTES (past it, one line says the rest is in the build record); a follower always ends:
when the build is no longer pending and the file is read to its end, or at its deadline.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

MAX_BYTES = 8 * 1024 * 1024
POLL_SECONDS = 0.1  # how often a follower looks for more output of a build still running
CHUNK = 64 * 1024
CUT = "\n ...     (output cut here: `paas builds` keeps the end of it)\n"


def directory(run_dir: Path) -> Path:
    return run_dir / "build-output"


def path(run_dir: Path, build_id: str) -> Path:
    return directory(run_dir) / build_id


class Writer:
    """Appends a build's output to its file, bounded by MAX_BYTES; never fails the build:
    a file that cannot be written leaves the stream short, the push goes on."""

    def __init__(self, run_dir: Path, build_id: str) -> None:
        self.path = path(run_dir, build_id)
        self.written = 0
        self.cut = False  # past MAX_BYTES: the CUT line was written, nothing more is
        self.file: int | None = None
        with contextlib.suppress(OSError):
            directory(run_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
            self.file = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(self, text: str) -> None:
        if self.file is None or self.cut:
            return
        data = text.encode("utf-8", "replace")
        if self.written + len(data) > MAX_BYTES:
            data, self.cut = CUT.encode(), True
        self.written += len(data)
        with contextlib.suppress(OSError):
            os.write(self.file, data)

    def close(self) -> None:
        """Once the build record holds the output: the file goes (a follower that opened
        it reads on to its end)."""
        if self.file is not None:
            os.close(self.file)
            self.file = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def follow(
    run_dir: Path,
    build_id: str,
    running: Callable[[], bool],
    recorded: Callable[[], str],
    timeout: float,
) -> Iterator[bytes]:
    """The build's output from its start: the live file while `running()`, followed to
    its end; when there is no file (the build ended, or never ran here), `recorded()`."""
    try:
        live = open(path(run_dir, build_id), "rb")  # noqa: SIM115 (closed below, generator)
    except FileNotFoundError:
        yield recorded().encode()
        return
    deadline = time.monotonic() + timeout
    with live:
        while True:
            still_running = running()  # before the read: what it wrote first is read in full
            chunk = live.read(CHUNK)
            while chunk:
                yield chunk
                chunk = live.read(CHUNK)
            if not still_running or time.monotonic() > deadline:
                return
            time.sleep(POLL_SECONDS)  # a readiness poll: the writer is another process
