"""The per-dyno supervisor: `python -m paas.dynos.supervisor DYNO_DIR`.

It detaches (fork, own session), starts the dyno's command as the dyno user in a process
group of its own (or its container, whose pid 1 becomes the supervisor's child), writes
every output line to the app's log, and records pid, start time and exit status in
DYNO_DIR/status.json. SIGTERM (or a `stop` file) asks it to stop the dyno: SIGTERM to the
whole group, SIGKILL after the grace period. It never restarts the dyno: restarts are the
agent's decision. Idle, it sleeps in one select(): its output, or a signal (SIGTERM, or
SIGCHLD when the dyno ends) through a wakeup pipe, wakes it at once; the stop file and the
OOM counter are read every POLL_SECONDS. Invariant: when the supervisor exits, no process
of its dyno is left.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType

import setproctitle

from paas.domain.dyno import DynoSpec
from paas.domain.errors import PaasError
from paas.host import procs
from paas.host.jsonfile import read_json, write_json
from paas.isolation import container
from paas.isolation.users import dyno_owner
from paas.state.logs import LogStore

PROFILE_SCRIPT = 'for f in .profile.d/*.sh; do [ -f "$f" ] && . "$f"; done\n'
# How often an idle supervisor reads its stop file (the runtime signals it too; the file
# covers a stop asked before status.json named the supervisor) and the cgroup's OOM counter
# (an OOM kill that ends the dyno is seen at once, by its exit).
POLL_SECONDS = 1.0
DYNO_UMASK = 0o022  # what container runtimes give a dyno; its app dir is private anyway


def dyno_environment(spec: DynoSpec, user: str | None) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        **spec.env,
        "HOME": spec.app_dir,
        "DYNO": spec.name,
        "PAAS_APP": spec.app,
        "PAAS_RELEASE_VERSION": str(spec.release),
    }
    if spec.port is not None:
        env["PORT"] = str(spec.port)
    if user is not None:
        env["USER"] = env["LOGNAME"] = user
    return env


class ProcessChild:
    """A plain-process dyno: the Popen of its process group's leader."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self.process = process
        self.pid = process.pid
        self.started = procs.start_time(process.pid)
        self.output = process.stdout.fileno()

    def poll(self) -> int | None:
        code = self.process.poll()
        return None if code is None else procs.shell_status(code)


class ProcessLauncher:
    """A dyno as a plain process group on the host, as the dyno user."""

    def __init__(self, spec: DynoSpec) -> None:
        self.spec = spec

    def spawn(self) -> ProcessChild:
        owner = dyno_owner(self.spec)
        return ProcessChild(
            subprocess.Popen(
                ["/bin/bash", "-c", PROFILE_SCRIPT + self.spec.command],
                cwd=self.spec.app_dir,
                env=dyno_environment(self.spec, self.spec.user),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                umask=DYNO_UMASK,
                user=owner[0] if owner else None,
                group=owner[1] if owner else None,
                extra_groups=[] if owner else None,
            )
        )

    def terminate(self, child: procs.Child) -> None:
        procs.signal_group(child.pid, signal.SIGTERM)

    def kill(self, child: procs.Child) -> None:
        procs.signal_group(child.pid, signal.SIGKILL)

    def oom_kills(self) -> int:
        return 0

    def cleanup(self) -> None:
        pass


class BoundContainerLauncher:
    """ContainerLauncher with this dyno's hostname, command and environment."""

    def __init__(
        self,
        spec: DynoSpec,
        directory: Path,
        plan: container.ContainerPlan,
        warn: Callable[[str], None],
    ) -> None:
        self.spec = spec
        self.inner = container.ContainerLauncher(spec.id, directory, plan, warn)

    def spawn(self) -> container.ContainerInit:
        env = dyno_environment(replace(self.spec, app_dir="/app"), None)
        return self.inner.spawn(self.spec.id, self.spec.command, env)

    def terminate(self, child: procs.Child) -> None:
        self.inner.terminate(child)

    def kill(self, child: procs.Child) -> None:
        self.inner.kill(child)

    def oom_kills(self) -> int:
        return self.inner.oom_kills()

    def cleanup(self) -> None:
        self.inner.cleanup()


Launcher = ProcessLauncher | BoundContainerLauncher


def launcher_for(spec: DynoSpec, directory: Path, warn: Callable[[str], None]) -> Launcher:
    """`warn`: where a failure to clean up after the dyno is said."""
    plan = container.plan_from(spec.container)
    if plan is None:
        return ProcessLauncher(spec)
    return BoundContainerLauncher(spec, directory, plan, warn)


class Supervisor:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        raw = read_json(directory / "spec.json")
        if raw is None:
            raise SystemExit(f"no readable spec.json in {directory}")
        self.spec = DynoSpec(**raw)  # type: ignore[arg-type]
        self.logs = LogStore(Path(os.environ["PAAS_LOGS_DB"]))
        self.status: dict[str, object] = {
            "state": "starting",
            "supervisor_pid": os.getpid(),
            "supervisor_started": procs.start_time(os.getpid()),
        }
        self.stop_deadline: float | None = None
        # A supervisor's stderr is /dev/null: what its cleanup cannot undo goes to the app's log.
        self.launcher = launcher_for(self.spec, directory, self.event)

    def save(self, **changes: object) -> None:
        self.status.update(changes)
        write_json(self.directory / "status.json", self.status)

    def event(self, message: str) -> None:
        self.log("paas", [message])

    def log(self, source: str, lines: list[str]) -> None:
        """A log that cannot be written must never take the dyno's supervision down."""
        with contextlib.suppress(sqlite3.Error):
            self.logs.append(self.spec.app, source, self.spec.name, lines)

    def request_stop(self, _signum: int = 0, _frame: FrameType | None = None) -> None:
        if self.stop_deadline is None:
            self.stop_deadline = time.monotonic() + self.spec.grace_seconds

    def run(self) -> int:
        procs.become_subreaper()
        wakeup = wake_on_signals()
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        self.event(f"Starting process with command `{self.spec.command}`")
        try:
            child = self.launcher.spawn()
        except (OSError, PaasError) as error:
            self.event(f"Process failed to start: {error}")
            self.launcher.cleanup()
            self.save(state="exited", exit_status=127, started_at=time.time())
            return 0
        self.save(
            state="running",
            pid=child.pid,
            pid_started=child.started,  # a pid alone may be another process's later
            started_at=time.time(),
        )
        # The dyno's end wakes the loop (a handler, not SIG_IGN: that would reap it unseen).
        signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
        try:
            status = self.pump(child, wakeup)
        finally:
            # Nothing of the dyno outlives its supervisor.
            self.launcher.kill(child)
            procs.reap_all(timeout=5.0)
            self.launcher.cleanup()
        self.event(f"Process exited with status {status}")
        self.save(state="exited", exit_status=status)
        return 0

    def pump(self, child: procs.Child, wakeup: int) -> int:
        """Copies output to the log until the dyno ends; handles stop and its deadline.
        Sleeps until output, a signal on `wakeup` or the next poll or deadline."""
        stream = child.output
        os.set_blocking(stream, False)
        pending = b""
        terminated = killed = False
        open_stream = True
        ooms = self.launcher.oom_kills()
        while True:
            if not killed and self.launcher.oom_kills() > ooms:
                self.event("Error R15 (Memory quota vastly exceeded) -> restarting the dyno")
                self.launcher.kill(child)
                killed = True
            if (self.directory / "stop").exists():
                self.request_stop()
            if self.stop_deadline is not None and not terminated:
                self.event("Stopping all processes with SIGTERM")
                self.launcher.terminate(child)
                terminated = True
            if terminated and not killed and time.monotonic() > (self.stop_deadline or 0):
                self.event("Error R12 (Exit timeout) -> Stopping all processes with SIGKILL")
                self.launcher.kill(child)
                killed = True
            code = child.poll()
            if code is not None:
                self.flush(pending + drain(stream) if open_stream else pending, final=True)
                if not killed and self.launcher.oom_kills() > ooms:
                    self.event("Error R15 (Memory quota vastly exceeded) -> the dyno ended")
                return code
            watched = [wakeup, stream] if open_stream else [wakeup]
            ready, _, _ = select.select(watched, [], [], self.sleep_seconds(terminated, killed))
            if wakeup in ready:
                drain(wakeup)
            if stream in ready:
                chunk = os.read(stream, 65536)
                if chunk:
                    pending += chunk
                else:
                    open_stream = False
                pending = self.flush(pending)

    def sleep_seconds(self, terminated: bool, killed: bool) -> float:
        """Until the next poll, or the grace deadline if that comes first."""
        if terminated and not killed and self.stop_deadline is not None:
            return max(0.0, min(POLL_SECONDS, self.stop_deadline - time.monotonic()))
        return POLL_SECONDS

    def flush(self, pending: bytes, final: bool = False) -> bytes:
        *lines, rest = pending.split(b"\n")
        if final and rest:
            lines, rest = [*lines, rest], b""
        if lines:
            self.log("app", [ln.decode(errors="replace") for ln in lines])
        return rest


def wake_on_signals() -> int:
    """The read end of a pipe that each signal with a Python handler writes a byte to, so
    a select() on it ends at once (a handler alone would not end it: select is retried)."""
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    return read_end


def drain(stream: int) -> bytes:
    """What is in a non-blocking pipe now: what the dyno wrote just before it ended, or the
    bytes signals wrote to the wakeup pipe."""
    data = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(stream, 65536):
            data += chunk
    return data


def main(argv: list[str]) -> int:
    return run_detached(Path(argv[1]))


def process_title(spec: DynoSpec) -> str:
    """What `ps` and `top` show for a supervisor: the dyno it runs, e.g.
    `paas-supervisor demo web.1 v3`."""
    return f"paas-supervisor {spec.app} {spec.name} v{spec.release}"


def run_detached(directory: Path) -> int:
    """Supervises the dyno in `directory` from a detached child; the caller gets 0 at once
    and should exit, as this short-lived parent is all it waits for."""
    if os.fork():
        return 0
    os.setsid() if os.getsid(0) != os.getpid() else None
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    supervisor = Supervisor(directory)
    setproctitle.setproctitle(process_title(supervisor.spec))
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
