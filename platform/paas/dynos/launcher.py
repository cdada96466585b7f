"""The supervisor launcher: one long-lived process, with the supervisor already imported,
that forks a dyno supervisor for each dyno directory the agent sends it.

Why: a fresh `python -m paas.dynos.supervisor` costs about 50 ms of CPU in interpreter start and
imports before it does anything. Ten dynos starting at once on a 2-core host pay that
ten times while they compete for the same cores; a fork of this process costs about 1 ms.

Protocol: one dyno directory per line on the launcher's stdin. For each, the launcher
forks, and the child detaches exactly as `python -m paas.dynos.supervisor DIR` does (a second
fork, a session of its own, /dev/null for stdio), so the supervisor outlives both the
launcher and the control plane. EOF on stdin (the agent stopped or died) ends the
launcher; the supervisors it started keep running.

Invariants: the launcher is single-threaded and opens nothing before it forks (no
database connection, no thread), so each child starts from a clean copy; a child never
returns into the launcher's loop (it leaves by os._exit).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

import setproctitle

from paas.domain.errors import PaasError
from paas.dynos import supervisor

Supervise = Callable[[Path], int]  # paas.dynos.supervisor.run_detached


def serve(requests: IO[str], supervise: Supervise) -> None:
    for line in requests:
        directory = line.strip()
        if directory:
            launch(Path(directory), supervise)


def launch(directory: Path, supervise: Supervise) -> None:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = supervise(directory)
        except SystemExit as error:
            code = error.code if isinstance(error.code, int) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)  # the short-lived parent of the detached supervisor
    if status != 0:  # the dyno never started: the agent sees it exited and retries
        print(f"launcher: supervisor of {directory.name} failed ({status})", file=sys.stderr)


class SupervisorLauncher:
    """The agent's side: starts the launcher on first use and again if it died."""

    def __init__(self, dynos_dir: Path, env: dict[str, str]) -> None:
        self.dynos_dir = dynos_dir
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()

    def launch(self, directory: Path) -> None:
        request = f"{directory}\n".encode()
        with self.lock:
            for _ in range(2):  # a launcher that died is replaced once
                process = self._running()
                assert process.stdin is not None
                try:
                    process.stdin.write(request)
                    process.stdin.flush()
                    return
                except OSError:
                    self._reap(process)
        raise PaasError(f"the supervisor launcher does not run: cannot start {directory.name}")

    def close(self) -> None:
        """Ends the launcher (the supervisors it started keep running)."""
        with self.lock:
            if self.process is not None:
                self._reap(self.process)

    def _running(self) -> subprocess.Popen[bytes]:
        if self.process is not None and self.process.poll() is not None:
            self._reap(self.process)
        if self.process is None:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "paas.dynos.launcher", str(self.dynos_dir)],
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self.process

    def _reap(self, process: subprocess.Popen[bytes]) -> None:
        if process.stdin is not None:
            with contextlib.suppress(OSError):  # it died with our last request unread
                process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.process = None


def main() -> int:
    # The dynos directory says in `ps` whose launcher this is (several platforms may run).
    setproctitle.setproctitle(f"paas-launcher {sys.argv[1]}")
    serve(sys.stdin, supervisor.run_detached)
    return 0


if __name__ == "__main__":
    sys.exit(main())
