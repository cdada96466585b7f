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
import fcntl
import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType

import setproctitle

from paas.domain import one_off
from paas.domain.dyno import DynoSpec
from paas.domain.errors import PaasError
from paas.dynos import session
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
DROP_GRACE_SECONDS = 2.0  # SIGTERM to SIGKILL of an attached dyno whose client went away
MAX_STDIN = 1 << 20  # client bytes buffered for a dyno's stdin before the client waits
# What a client may send an attached dyno (a non-terminal session's Ctrl-C: SIGINT).
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1)
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
        self.process = process
        self.pid = process.pid
        self.started = procs.start_time(process.pid)
        # -1 for an attached dyno: its supervisor reads the streams it kept (dynos.session).
        self.output = process.stdout.fileno() if process.stdout is not None else -1
        self.console: int | None = None

    def poll(self) -> int | None:
        code = self.process.poll()
        return None if code is None else procs.shell_status(code)


class ProcessLauncher:
    """A dyno as a plain process group on the host, as the dyno user."""

    def __init__(self, spec: DynoSpec) -> None:
        self.spec = spec

    def spawn(self, stdio: container.Stdio | None = None) -> ProcessChild:
        """`stdio`: an attached dyno's fds (a terminal's slave thrice when spec.tty)."""
        owner = dyno_owner(self.spec)
        return ProcessChild(
            subprocess.Popen(
                ["/bin/bash", "-c", PROFILE_SCRIPT + self.spec.command],
                cwd=self.spec.app_dir,
                env=dyno_environment(self.spec, self.spec.user),
                stdin=subprocess.DEVNULL if stdio is None else stdio.stdin,
                stdout=subprocess.PIPE if stdio is None else stdio.stdout,
                stderr=subprocess.STDOUT if stdio is None else stdio.stderr,
                start_new_session=True,
                # Its terminal becomes the session's controlling one: Ctrl-C reaches it.
                preexec_fn=take_terminal if self.spec.tty and stdio is not None else None,
                umask=DYNO_UMASK,
                user=owner[0] if owner else None,
                group=owner[1] if owner else None,
                extra_groups=[] if owner else None,
            )
        )

    def terminate(self, child: procs.Child) -> None:
        procs.signal_group(child.pid, signal.SIGTERM)

    def signal(self, child: procs.Child, signum: int) -> None:
        procs.signal_group(child.pid, signum)

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

    def spawn(self, stdio: container.Stdio | None = None) -> container.ContainerInit:
        env = dyno_environment(replace(self.spec, app_dir="/app"), None)
        return self.inner.spawn(self.spec.id, self.spec.command, env, stdio)

    def terminate(self, child: procs.Child) -> None:
        self.inner.terminate(child)

    def signal(self, child: procs.Child, signum: int) -> None:
        """To the container's pid 1 (tini), which passes it to the app's process group."""
        if child.poll() is None:
            os.kill(child.pid, signum)

    def kill(self, child: procs.Child) -> None:
        self.inner.kill(child)

    def oom_kills(self) -> int:
        return self.inner.oom_kills()

    def cleanup(self) -> None:
        self.inner.cleanup()


Launcher = ProcessLauncher | BoundContainerLauncher


def take_terminal() -> None:
    """In a plain-process dyno's child, after setsid: stdin (a terminal) becomes the new
    session's controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


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
        if self.spec.attach:
            return self.run_attached(wakeup)
        self.event(f"Starting process with command `{self.spec.command}`")
        try:
            child = self.launcher.spawn()
        except (OSError, PaasError) as error:
            return self.failed_to_start(error)
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
            self.tear_down(child)
        return self.exited(status)

    def failed_to_start(self, error: Exception) -> int:
        self.event(f"Process failed to start: {error}")
        self.launcher.cleanup()
        self.save(state="exited", exit_status=127, started_at=time.time())
        return 0

    def tear_down(self, child: procs.Child) -> None:
        """Nothing of the dyno outlives its supervisor."""
        self.launcher.kill(child)
        procs.reap_all(timeout=5.0)
        self.launcher.cleanup()

    def exited(self, status: int) -> int:
        self.event(f"Process exited with status {status}")
        self.save(state="exited", exit_status=status)
        return 0

    # --- an attached one-off dyno (paas.dynos.session) ---------------------------------
    def run_attached(self, wakeup: int) -> int:
        """Waits for the client, starts the command with the client's stdio, streams until
        the dyno ends (exit status to the client before the cleanup, so it need not wait
        for it) or the client goes away (then the dyno is stopped)."""
        try:
            listener = session.listen(self.directory)
        except (OSError, PaasError) as error:  # a socket path too long for AF_UNIX
            self.event(f"Process failed to start: {error}")
            self.save(state="exited", exit_status=127, started_at=time.time())
            return 0
        self.save()  # the runtime sees a live supervisor while it waits
        try:
            connection = session.accept(listener, wakeup, session.ATTACH_SECONDS)
        finally:
            listener.close()
            (self.directory / session.ATTACH_SOCKET).unlink(missing_ok=True)
        if connection is None:
            self.event("No client attached: the command did not run")
            self.save(state="exited", exit_status=None, started_at=time.time())
            return 0
        link = session.Link(connection)
        self.save(attached=True)  # a second client is told, not left waiting (paas.api.run)
        self.event(f"Starting process with command `{self.spec.command}`")
        # Before the start: a one-off as short as `true` may end before a later handler.
        signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
        try:
            child, streams = self.spawn_attached()
        except (OSError, PaasError) as error:
            link.send(one_off.MESSAGE, f"the dyno failed to start: {error}".encode())
            link.send(*split_exit(127))
            link.finish()
            return self.failed_to_start(error)
        self.save(state="running", pid=child.pid, pid_started=child.started, started_at=time.time())
        try:
            status = self.pump_attached(child, link, streams, wakeup)
            link.send(*split_exit(status))
            link.finish()
        finally:
            streams.close_all()
            self.tear_down(child)
        return self.exited(status)

    def spawn_attached(self) -> tuple[procs.Child, session.Streams]:
        """Starts the command on a terminal (spec.tty) or on three pipes, and returns the
        supervisor's ends of them, non-blocking."""
        spec, is_container = self.spec, isinstance(self.launcher, BoundContainerLauncher)
        kept: list[int] = []  # the child's ends, closed here once it has them
        streams = session.Streams()
        try:
            if spec.tty and is_container:
                errors, errors_w = os.pipe()
                null = os.open(os.devnull, os.O_RDONLY)
                kept += [errors_w, null]
                streams.stderr = errors
                console = str(self.directory / session.CONSOLE_SOCKET)
                stdio = container.Stdio(null, errors_w, errors_w, console, (spec.rows, spec.cols))
            elif spec.tty:
                master, slave = pty.openpty()
                kept.append(slave)
                streams.master = master
                session.set_window(master, spec.rows, spec.cols)
                stdio = container.Stdio(slave, slave, slave)
            else:
                stdin_r, stdin_w = os.pipe()
                out, out_w = os.pipe()
                err, err_w = os.pipe()
                kept += [stdin_r, out_w, err_w]
                streams.stdin, streams.stdout, streams.stderr = stdin_w, out, err
                stdio = container.Stdio(stdin_r, out_w, err_w)
            child = self.launcher.spawn(stdio)
        except BaseException:
            streams.close_all()
            raise
        finally:
            for fd in kept:
                os.close(fd)
        if child.console is not None:
            streams.master = child.console
        for stream in (streams.stdin, streams.stdout, streams.stderr, streams.master):
            if stream is not None:
                os.set_blocking(stream, False)
        return child, streams

    def pump_attached(
        self, child: procs.Child, link: session.Link, streams: session.Streams, wakeup: int
    ) -> int:
        """The attached dyno's loop: client frames to its stdin, terminal size and signals;
        its output to the client; stop, the grace deadline and a client gone (a stop with
        DROP_GRACE_SECONDS) as in `pump`."""
        stdin = session.StdinPipe()
        stopping = Stopping(self, child)
        while True:
            if not link.open and self.stop_deadline is None:
                self.event("The client went away: stopping the dyno")
                self.stop_deadline = time.monotonic() + min(
                    DROP_GRACE_SECONDS, self.spec.grace_seconds
                )
            stopping.step()
            code = child.poll()
            if code is not None:
                for fd, kind in streams.readable():  # what it wrote just before it ended
                    while chunk := session.read_chunk(fd):
                        link.send(kind, chunk)
                stopping.ended()
                return code
            target = streams.master if streams.master is not None else streams.stdin
            if target is not None and stdin.ended and not stdin.buffer and streams.stdin:
                streams.close(streams.stdin)  # stdin's EOF reaches the dyno
                target = None
            readers = [wakeup] + ([] if link.full else [fd for fd, _ in streams.readable()])
            readers += [link.fileno()] if link.open and len(stdin.buffer) < MAX_STDIN else []
            writers = [link.fileno()] if link.open and link.outgoing else []
            writers += [target] if target is not None and stdin.buffer else []
            timeout = stopping.sleep_seconds()
            ready, writable, _ = select.select(readers, writers, [], timeout)
            if wakeup in ready:
                drain(wakeup)
            if link.open and link.fileno() in ready:
                for frame in link.receive():
                    self.from_client(frame, child, streams, stdin)
            for fd, kind in streams.readable():
                if fd in ready:
                    chunk = session.read_chunk(fd)
                    if chunk is None:
                        streams.close(fd)
                    elif chunk:
                        link.send(kind, chunk)
            if target is not None and target in writable and not stdin.write(target):
                stdin.ended = True
            if link.open and link.fileno() in writable:
                link.flush()

    def from_client(
        self,
        frame: bytes,
        child: procs.Child,
        streams: session.Streams,
        stdin: session.StdinPipe,
    ) -> None:
        kind, payload = frame[:1], frame[1:]
        if kind == one_off.STDIN and not stdin.ended:
            stdin.buffer += payload
        elif kind == one_off.STDIN_END:
            stdin.ended = streams.master is None  # a terminal has no end of input
        elif kind == one_off.WINDOW and streams.master is not None:
            size = one_off.parse_window(payload)
            if size is not None:
                session.set_window(streams.master, *size)
        elif kind == one_off.SIGNAL and len(payload) == 1 and payload[0] in FORWARDED:
            self.launcher.signal(child, payload[0])

    def pump(self, child: procs.Child, wakeup: int) -> int:
        """Copies output to the log until the dyno ends; handles stop and its deadline.
        Sleeps until output, a signal on `wakeup` or the next poll or deadline."""
        stream = child.output
        os.set_blocking(stream, False)
        pending = b""
        open_stream = True
        stopping = Stopping(self, child)
        while True:
            stopping.step()
            code = child.poll()
            if code is not None:
                self.flush(pending + drain(stream) if open_stream else pending, final=True)
                stopping.ended()
                return code
            watched = [wakeup, stream] if open_stream else [wakeup]
            ready, _, _ = select.select(watched, [], [], stopping.sleep_seconds())
            if wakeup in ready:
                drain(wakeup)
            if stream in ready:
                chunk = os.read(stream, 65536)
                if chunk:
                    pending += chunk
                else:
                    open_stream = False
                pending = self.flush(pending)

    def flush(self, pending: bytes, final: bool = False) -> bytes:
        *lines, rest = pending.split(b"\n")
        if final and rest:
            lines, rest = [*lines, rest], b""
        if lines:
            self.log("app", [ln.decode(errors="replace") for ln in lines])
        return rest


class Stopping:
    """A running dyno's stop rules, one step per turn of either loop (`pump`, and
    `pump_attached`): R15 and SIGKILL on an OOM kill; SIGTERM once a stop is asked (the stop
    file, a signal, a client gone); R12 and SIGKILL past the grace deadline."""

    def __init__(self, supervisor: Supervisor, child: procs.Child) -> None:
        self.supervisor = supervisor
        self.child = child
        self.terminated = self.killed = False
        self.ooms = supervisor.launcher.oom_kills()

    def oom_killed(self) -> bool:
        return not self.killed and self.supervisor.launcher.oom_kills() > self.ooms

    def step(self) -> None:
        owner, launcher = self.supervisor, self.supervisor.launcher
        if self.oom_killed():
            owner.event("Error R15 (Memory quota vastly exceeded) -> restarting the dyno")
            launcher.kill(self.child)
            self.killed = True
        if (owner.directory / "stop").exists():
            owner.request_stop()
        if owner.stop_deadline is not None and not self.terminated:
            owner.event("Stopping all processes with SIGTERM")
            launcher.terminate(self.child)
            self.terminated = True
        if self.terminated and not self.killed and time.monotonic() > (owner.stop_deadline or 0):
            owner.event("Error R12 (Exit timeout) -> Stopping all processes with SIGKILL")
            launcher.kill(self.child)
            self.killed = True

    def ended(self) -> None:
        """Once the dyno ended: an OOM kill at its very end said too."""
        if self.oom_killed():
            self.supervisor.event("Error R15 (Memory quota vastly exceeded) -> the dyno ended")

    def sleep_seconds(self) -> float:
        """Until the next poll, or the grace deadline if that comes first."""
        deadline = self.supervisor.stop_deadline
        if self.terminated and not self.killed and deadline is not None:
            return max(0.0, min(POLL_SECONDS, deadline - time.monotonic()))
        return POLL_SECONDS


def split_exit(status: int) -> tuple[bytes, bytes]:
    """The exit frame's (kind, payload), as Link.send takes them."""
    frame = one_off.exit_frame(status)
    return frame[:1], frame[1:]


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
