"""The dyno runtime behind one small interface: start, stop, list, stats, forget.

`ProcessRuntime` runs each dyno under its own supervisor (`paas.dynos.supervisor`), forked by
the supervisor launcher (`paas.dynos.launcher`) and detached in a session of its own so dynos
outlive the control plane.
Everything it knows is on disk under PAAS_HOME/dynos/ID/ (spec.json written here,
status.json written by the supervisor), so a restarted control plane observes the same
dynos again instead of remembering them. A container runtime will implement the same
interface.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Protocol

from paas.domain.dyno import DynoSpec, DynoStats, DynoStatus
from paas.dynos.launcher import SupervisorLauncher
from paas.host import cleanup, procs
from paas.host.jsonfile import read_json, write_json
from paas.isolation import cgroups, container
from paas.isolation.users import dyno_owner


class Runtime(Protocol):
    def start(self, spec: DynoSpec) -> None: ...
    def stop(self, dyno_id: str) -> None: ...
    def mark_up(self, dyno_id: str) -> None: ...
    def list(self) -> list[DynoStatus]: ...
    def forget(self, dyno_id: str) -> None: ...
    def stats(self, dyno_id: str) -> DynoStats | None: ...


def ephemeral_copy(slug: Path, target: Path, owner: tuple[int, int] | None) -> None:
    """A dyno's own writable app dir: hard links to the read-only slug files, in
    directories the dyno owns. The dyno can add, replace and delete files (the twelve-factor
    ephemeral filesystem) but cannot change the shared slug's files in place. The dir is
    its app's alone (0700): no other app's uid gets in."""
    procs.run(["cp", "-al", str(slug), str(target)], timeout=120)
    target.chmod(0o700)
    if owner is not None:
        for root, _dirs, _files in os.walk(target):
            os.chown(root, *owner)


class ProcessRuntime:
    def __init__(self, dynos_dir: Path, supervisor_env: dict[str, str]) -> None:
        self.dynos_dir = dynos_dir
        self.launcher = SupervisorLauncher(dynos_dir, supervisor_env)
        dynos_dir.mkdir(parents=True, exist_ok=True)
        dynos_dir.chmod(0o711)  # dynos may reach their own dir, never list the others

    def _dir(self, dyno_id: str) -> Path:
        return self.dynos_dir / dyno_id

    def start(self, spec: DynoSpec) -> None:
        directory = self._dir(spec.id)
        directory.mkdir(mode=0o700)
        if spec.container is None:
            directory.chmod(0o711)  # the dyno reaches its app dir; spec and status are 0600
        if spec.container is None:  # a container gets its own upper layer instead
            app_dir = directory / "app"
            ephemeral_copy(Path(spec.app_dir), app_dir, dyno_owner(spec))
            spec = replace(spec, app_dir=str(app_dir))
        write_json(directory / "spec.json", asdict(spec))
        self.launcher.launch(directory)

    def close(self) -> None:
        """Ends the supervisor launcher, if one was started; dynos keep running."""
        self.launcher.close()

    def stop(self, dyno_id: str) -> None:
        """Asks the supervisor to stop its dyno (SIGTERM, SIGKILL after the grace)."""
        directory = self._dir(dyno_id)
        (directory / "stop").touch()
        status = read_json(directory / "status.json") or {}
        pid, started = status.get("supervisor_pid"), status.get("supervisor_started")
        if isinstance(pid, int) and isinstance(started, int) and procs.alive(pid, started):
            os.kill(pid, signal.SIGTERM)

    def mark_up(self, dyno_id: str) -> None:
        (self._dir(dyno_id) / "up").touch()

    def forget(self, dyno_id: str) -> None:
        directory = self._dir(dyno_id)
        self._kill_orphan(read_json(directory / "status.json") or {})
        plan = container.plan_from((read_json(directory / "spec.json") or {}).get("container"))
        if plan is not None:
            container.remove(dyno_id, directory, plan)
        cleanup.remove_tree(directory)

    def list(self) -> list[DynoStatus]:
        found = []
        for directory in sorted(self.dynos_dir.iterdir()):
            status = self._observe(directory)
            if status is not None:
                found.append(status)
        return found

    def _observe(self, directory: Path) -> DynoStatus | None:
        raw_spec = read_json(directory / "spec.json")
        if raw_spec is None:
            return None
        spec = DynoSpec(**raw_spec)  # type: ignore[arg-type]
        status = read_json(directory / "status.json") or {}
        stop_requested = (directory / "stop").exists()
        exit_status = status.get("exit_status")
        started_at = status.get("started_at")
        pid = status.get("pid")
        if status.get("state") == "exited":
            state = "exited"
        elif not self._supervisor_alive(status):
            if not status and not _older_than(directory / "spec.json", 10.0):
                state = "starting"  # the supervisor has not written its status yet
            else:
                state, exit_status = "exited", exit_status if exit_status is not None else -9
        elif stop_requested:
            state = "stopping"
        elif (directory / "up").exists():
            state = "up"
        else:
            state = "starting"
        return DynoStatus(
            spec=spec,
            state=state,
            started_at=started_at if isinstance(started_at, float) else None,
            exit_status=exit_status if isinstance(exit_status, int) else None,
            stop_requested=stop_requested,
            pid=pid if isinstance(pid, int) else None,
        )

    @staticmethod
    def _supervisor_alive(status: dict[str, object]) -> bool:
        pid, started = status.get("supervisor_pid"), status.get("supervisor_started")
        return isinstance(pid, int) and isinstance(started, int) and procs.alive(pid, started)

    @staticmethod
    def _kill_orphan(status: dict[str, object]) -> None:
        """A supervisor killed by force may leave its dyno behind: end the dyno's group."""
        pid, started = status.get("pid"), status.get("pid_started")
        if isinstance(pid, int) and isinstance(started, int) and procs.alive(pid, started):
            procs.signal_group(pid, signal.SIGKILL)

    def stats(self, dyno_id: str) -> DynoStats | None:
        """Memory and CPU time from the dyno's cgroup (containers) or its processes."""
        directory = self._dir(dyno_id)
        plan = container.plan_from((read_json(directory / "spec.json") or {}).get("container"))
        if plan is not None:
            pid = container.init_pid(dyno_id, plan)
            group = None if pid is None else cgroups.of_process(pid)
            if group is None:
                return None
            memory = cgroups.memory_working_set(group)
            return DynoStats(memory or 0, cgroups.cpu_usage_ns(group) or 0)
        status = read_json(directory / "status.json") or {}
        pgid = status.get("pid")
        if not isinstance(pgid, int):
            return None
        rss, cpu_ticks = 0, 0
        for pid in procs.group_members(pgid):
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1]) * 1024
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                cpu_ticks += int(fields[11]) + int(fields[12])
            except (OSError, ValueError, IndexError):
                continue
        return DynoStats(rss, cpu_ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK"))


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return True
