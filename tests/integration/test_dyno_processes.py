"""What a container dyno keeps on the host, through the whole platform: its supervisor and
the container's pid 1 (tini), the supervisor's own child; no OCI runtime process waits for
the container. And what rests on that shape: the app's process dying is seen and the dyno
replaced, and a stop ends the container within its grace and drops the runtime's state.

Skipped unless root (only root's platform runs dynos in containers).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from platform_harness import Platform, cmdline, wait_for

from paas.host import procs

APP = "shape"
RUNTIMES = ("runc", "crun")
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dynos run in containers as root")


def stat(pid: int) -> tuple[str, int]:
    """The command name and parent pid of a process."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return raw[raw.index("(") + 1 : raw.rindex(")")], int(fields[1])


def processes() -> dict[int, tuple[str, int]]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                found[int(entry)] = stat(int(entry))
            except (OSError, ValueError):
                continue
    return found


def children(pid: int, table: dict[int, tuple[str, int]]) -> list[int]:
    return [p for p, (_, parent) in table.items() if parent == pid]


def descendants(pid: int, table: dict[int, tuple[str, int]]) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop(), table):
            found.append(child)
            todo.append(child)
    return found


def running_web(platform: Platform) -> dict[str, object]:
    def one() -> dict[str, object] | None:
        found = [d for d in platform.dyno_statuses(APP) if d.get("state") == "running"]
        return found[0] if len(found) == 1 and platform.get_json(APP) else None

    return wait_for(one, 60, "one running web dyno that serves")


def containers(dyno: dict[str, object]) -> list[str]:
    """The ids of the containers the OCI runtime of `dyno` holds state of."""
    plan = dyno["container"]
    assert isinstance(plan, dict)
    listing = subprocess.run(
        [plan["runtime"], "--root", plan["state_root"], "list", "-q"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return listing.stdout.split()


@pytest.fixture(scope="module")
def shaped(platform: Platform) -> Platform:
    platform.paas("apps:create", APP, "--no-remote")
    repo = platform.new_repo("shape-repo")
    push = platform.push(APP, repo)
    assert push.returncode == 0, push.stderr[-2000:]
    running_web(platform)
    return platform


def test_the_containers_pid_1_is_the_supervisors_child_and_no_runtime_stays(
    shaped: Platform,
) -> None:
    dyno = running_web(shaped)
    supervisor, init = dyno["supervisor_pid"], dyno["pid"]
    assert isinstance(supervisor, int) and isinstance(init, int)
    table = processes()
    assert table[init] == ("tini", supervisor)  # what status.json names is the container
    tree = descendants(supervisor, table)
    assert [table[p][0] for p in tree if table[p][0] in RUNTIMES] == []
    assert [p for p in table if table[p][0] in RUNTIMES and str(dyno["id"]) in cmdline(p)] == []
    assert children(init, table)  # the app's process, under tini


def test_the_app_process_dying_is_seen_and_the_dyno_replaced(shaped: Platform) -> None:
    dyno = running_web(shaped)
    init = dyno["pid"]
    assert isinstance(init, int)
    (app,) = children(init, processes())  # the app's main process (gunicorn's master)
    os.kill(app, signal.SIGKILL)

    def replaced() -> dict[str, object] | None:
        now = running_web(shaped)
        return now if now["id"] != dyno["id"] else None

    wait_for(replaced, 60, "a replacement dyno")
    (listed,) = json.loads(shaped.paas("ps", "-a", APP, "--json").stdout)
    assert listed["crash_count"] >= 1 and listed["last_exit_status"] == 137
    assert not procs.alive(init, dyno["pid_started"])  # type: ignore[arg-type]


def test_a_stop_ends_the_container_in_its_grace_and_drops_its_state(shaped: Platform) -> None:
    dyno = running_web(shaped)
    init, supervisor = dyno["pid"], dyno["supervisor_pid"]
    assert str(dyno["id"]) in containers(dyno)
    shaped.paas("ps:scale", "web=0", "-a", APP)
    wait_for(
        lambda: (
            not procs.alive(init, dyno["pid_started"])  # type: ignore[arg-type]
            and not procs.alive(supervisor, dyno["supervisor_started"])  # type: ignore[arg-type]
            and str(dyno["id"]) not in containers(dyno)
        ),
        60,
        "the container, its supervisor and the runtime's state of it to go",
    )
    events = shaped.paas("logs", "-a", APP, "-n", "200").stdout
    assert "Stopping all processes with SIGTERM" in events
    assert "R12" not in events  # tini got the SIGTERM: gunicorn ended before the grace
