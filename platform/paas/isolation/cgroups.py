"""Reading a dyno's cgroup: OOM kills, memory working set, CPU time — v1 and v2.

runc/crun create the cgroup at `cgroupsPath` (`paas/ID`) under each v1 controller
(`ROOT/memory/paas/ID`…) or once under the v2 unified root (`ROOT/paas/ID`). Every function
takes the cgroup root as a parameter, so the v2 paths are tested against a fake tree on
hosts (like a hybrid v1 one) that cannot run them for real.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Cgroup:
    """Where one process's cgroup lives: per v1 controller, or one v2 path (key "")."""

    root: Path
    version: int
    paths: dict[str, str]

    def file(self, controller: str, name: str) -> Path:
        if self.version == 2:
            return self.root / self.paths.get("", "").strip("/") / name
        return self.root / controller / self.paths.get(controller, "").strip("/") / name


def version(root: Path = ROOT) -> int:
    """2 on a unified (cgroup2-only) host, else 1 (v1 or hybrid)."""
    return 2 if (root / "cgroup.controllers").exists() else 1


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """`/proc/PID/cgroup` lines (`4:memory:/a/b`, `0::/a/b`) → controller → path."""
    paths = {}
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            paths[controller] = path
    return paths


def of_process(pid: int, root: Path = ROOT, proc: Path = Path("/proc")) -> Cgroup | None:
    """The cgroup a process is in. Relative cgroupsPath values are resolved by the OCI
    runtime against its own cgroup, so the only reliable answer is the process's own."""
    try:
        text = (proc / str(pid) / "cgroup").read_text()
    except OSError:
        return None
    return Cgroup(root, version(root), parse_proc_cgroup(text))


def for_child(
    relative: str, root: Path = ROOT, proc: Path = Path("/proc"), pid: int | None = None
) -> Cgroup | None:
    """Where an OCI runtime started by this process puts a relative cgroupsPath: under
    this process's own cgroup, controller by controller."""
    own = of_process(pid or os.getpid(), root, proc)
    if own is None:
        return None
    paths = {c: f"{p.rstrip('/')}/{relative.strip('/')}" for c, p in own.paths.items()}
    return Cgroup(root, own.version, paths)


def _keyed(path: Path) -> dict[str, int]:
    """Parses `key value` lines (memory.stat, memory.events, memory.oom_control, cpu.stat)."""
    values = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def _number(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def oom_kills(group: Cgroup) -> int:
    """How many processes the kernel OOM-killed in this cgroup so far."""
    name = "memory.events" if group.version == 2 else "memory.oom_control"
    return _keyed(group.file("memory", name)).get("oom_kill", 0)


def memory_working_set(group: Cgroup) -> int | None:
    """Usage minus inactive file cache, as `docker stats` and kubelet count it."""
    usage_file = "memory.current" if group.version == 2 else "memory.usage_in_bytes"
    usage = _number(group.file("memory", usage_file))
    if usage is None:
        return None
    stat = _keyed(group.file("memory", "memory.stat"))
    inactive = stat.get("inactive_file" if group.version == 2 else "total_inactive_file", 0)
    return max(0, usage - inactive)


def cpu_usage_ns(group: Cgroup) -> int | None:
    if group.version == 2:
        usec = _keyed(group.file("cpu", "cpu.stat")).get("usage_usec")
        return None if usec is None else usec * 1000
    return _number(group.file("cpuacct", "cpuacct.usage"))
