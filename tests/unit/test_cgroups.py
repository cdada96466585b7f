"""cgroup v1 and v2 readings against fake trees (this host is hybrid: v2 cannot run here)."""

from pathlib import Path

from paas.isolation import cgroups

V1_PROC = "4:memory:/sandbox/paas/d1\n2:cpuacct,cpu:/paas/d1\n0::/paas/d1\n"
V2_PROC = "0::/paas/d1\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_v1_tree(tmp_path: Path) -> None:
    (tmp_path / "proc" / "7").mkdir(parents=True)
    write(tmp_path / "proc" / "7" / "cgroup", V1_PROC)
    memory = tmp_path / "cg" / "memory" / "sandbox" / "paas" / "d1"
    write(memory / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    write(memory / "memory.usage_in_bytes", "1000\n")
    write(memory / "memory.stat", "cache 10\ntotal_inactive_file 300\n")
    write(tmp_path / "cg" / "cpuacct" / "paas" / "d1" / "cpuacct.usage", "123456\n")
    group = cgroups.of_process(7, tmp_path / "cg", tmp_path / "proc")
    assert group is not None and group.version == 1
    assert cgroups.oom_kills(group) == 2
    assert cgroups.memory_working_set(group) == 700
    assert cgroups.cpu_usage_ns(group) == 123456


def test_v2_tree(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    write(root / "cgroup.controllers", "cpu memory pids\n")
    write(tmp_path / "proc" / "7" / "cgroup", V2_PROC)
    group_dir = root / "paas" / "d1"
    write(group_dir / "memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    write(group_dir / "memory.current", "5000\n")
    write(group_dir / "memory.stat", "anon 4000\ninactive_file 1000\n")
    write(group_dir / "cpu.stat", "usage_usec 250\nuser_usec 200\n")
    group = cgroups.of_process(7, root, tmp_path / "proc")
    assert group is not None and group.version == 2
    assert cgroups.oom_kills(group) == 1
    assert cgroups.memory_working_set(group) == 4000
    assert cgroups.cpu_usage_ns(group) == 250_000


def test_missing_files_read_as_nothing(tmp_path: Path) -> None:
    group = cgroups.Cgroup(tmp_path, 1, {"memory": "/gone"})
    assert cgroups.oom_kills(group) == 0
    assert cgroups.memory_working_set(group) is None
    assert cgroups.of_process(99, tmp_path, tmp_path) is None
