"""procs.run: the one way a command's failure becomes the platform's own error; and the
cleanup helpers over it, whose failures are one line, never an exception."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from paas.domain.errors import CommandFailed, PaasError
from paas.host import cleanup, procs


def test_a_command_that_succeeds_gives_its_output() -> None:
    assert procs.run(["printf", "ok"]) == b"ok"


def test_a_failing_command_is_a_paas_error_naming_it_and_its_stderr_tail() -> None:
    script = "for n in 1 2 3 4 5; do echo line $n >&2; done; exit 3"
    with pytest.raises(PaasError) as raised:
        procs.run(["sh", "-c", script])
    assert raised.value.message == (
        f"sh -c '{script}' failed: line 3 / line 4 / line 5"  # the last lines say why
    )
    assert isinstance(raised.value, CommandFailed)
    assert raised.value.returncode == 3 and "line 1" in raised.value.stderr


def test_a_silent_failure_names_its_exit_status_and_a_long_tail_is_cut() -> None:
    with pytest.raises(CommandFailed, match=r"^false failed: exit status 1$"):
        procs.run(["false"])
    with pytest.raises(CommandFailed) as raised:
        procs.run(["sh", "-c", "head -c 5000 /dev/zero | tr '\\0' x >&2; exit 1"])
    detail = raised.value.message.partition(" failed: ")[2]
    assert detail.startswith("...") and len(detail) == 3 + procs.STDERR_TAIL_CHARS


def test_a_missing_program_or_a_timeout_is_a_paas_error_too() -> None:
    with pytest.raises(PaasError, match="no-such-program failed: No such file or directory"):
        procs.run(["no-such-program"])
    with pytest.raises(PaasError, match=r"sleep 5 failed: timed out after 0.2s"):
        procs.run(["sleep", "5"], timeout=0.2)


def test_the_environment_is_the_callers_never_the_platforms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAAS_ADMIN_TOKEN", "a-secret-of-the-platform")
    inherited = procs.run(["env"]).decode().splitlines()
    assert sorted(line.partition("=")[0] for line in inherited) == ["LC_ALL", "PATH"]
    assert procs.run(["env"], env={"ONLY": "this"}).decode().splitlines() == ["ONLY=this"]


def test_input_reaches_the_command() -> None:
    assert procs.run(["cat"], input=b"piped") == b"piped"


def test_a_failed_cleanup_command_is_one_line_and_no_exception() -> None:
    said: list[str] = []
    assert not cleanup.command(["sh", "-c", "echo device busy >&2; exit 32"], said.append)
    assert said == ["cleanup: sh -c 'echo device busy >&2; exit 32' failed: device busy"]


def test_what_is_already_gone_is_no_failure_worth_a_line(tmp_path: Path) -> None:
    said: list[str] = []
    assert not cleanup.command(["umount", str(tmp_path)], said.append, gone=("not mounted",))
    assert cleanup.remove_tree(tmp_path / "never-made", said.append)
    assert cleanup.remove_file(tmp_path / "never-made", said.append)
    assert said == []


def test_a_tree_that_cannot_be_removed_is_said_once(tmp_path: Path) -> None:
    """As root, a mount point in the tree (EBUSY); otherwise, a directory without write
    permission."""
    tree = tmp_path / "tree"
    stuck = tree / "stuck"
    stuck.mkdir(parents=True)
    for n in range(2):
        (tree / f"f{n}").mkdir()
    root = os.geteuid() == 0
    if root:
        procs.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(stuck)])
    else:
        (stuck / "file").write_text("x")
        stuck.chmod(0o500)
    said: list[str] = []
    try:
        assert not cleanup.remove_tree(tree, said.append)
    finally:
        if root:
            procs.run(["umount", str(stuck)])
        else:
            stuck.chmod(0o700)
    assert len(said) == 1 and said[0].startswith(f"cleanup: cannot remove {tree}: ")
    assert str(stuck) in said[0] and not (tree / "f0").exists()  # the rest went


def test_wait_exit_gives_the_exit_code_or_none_at_its_timeout() -> None:
    quick = subprocess.Popen(["sh", "-c", "sleep 0.2; exit 4"])
    assert procs.wait_exit(quick, timeout=10) == 4
    assert procs.wait_exit(quick, timeout=10) == 4  # reaped already: Popen's own answer
    slow = subprocess.Popen(["sleep", "10"])
    try:
        assert procs.wait_exit(slow, timeout=0.1) is None
    finally:
        slow.kill()
        slow.wait()
    assert procs.shell_status(-9) == 137 and procs.shell_status(3) == 3
