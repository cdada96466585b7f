"""procs.children and procs.stop_processes on real processes: what a stop of the platform
uses to end processes that are not its own children (the server's, once it is gone)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from paas.host import procs

IGNORES_TERM = "trap '' TERM; sleep 30 & wait; sleep 30"


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        procs.signal_group(process.pid, 9)
        process.wait(5)


def spawn(processes: list[subprocess.Popen[bytes]], script: str) -> procs.Identity:
    process = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    processes.append(process)
    found = procs.identity(process.pid)
    assert found is not None
    return found


def test_children_are_the_live_processes_a_process_started(
    started: list[subprocess.Popen[bytes]],
) -> None:
    pid, _ = spawn(started, "sleep 30 & sleep 30 & wait")
    assert procs.wait_until(lambda: len(procs.children(pid)) == 2, 5)
    assert all(procs.alive(*child) for child in procs.children(pid))
    assert procs.children(started[0].pid + 10**7) == []


def test_a_stop_terms_then_kills_what_ignores_term_and_says_what_is_left(
    started: list[subprocess.Popen[bytes]],
) -> None:
    polite, stubborn = spawn(started, "exec sleep 30"), spawn(started, IGNORES_TERM)
    # Its sleep runs once sh has set the trap (a TERM before would end it at once).
    assert procs.wait_until(lambda: procs.children(stubborn[0]), 5)
    began = time.monotonic()
    assert procs.stop_processes([polite, stubborn], grace=0.5) == []
    assert 0.5 <= time.monotonic() - began < 5
    assert not procs.alive(*polite) and not procs.alive(*stubborn)
    assert started[1].wait(5) == -9  # it took the SIGKILL


def test_a_process_already_gone_or_a_reused_pid_is_left_alone(
    started: list[subprocess.Popen[bytes]],
) -> None:
    pid, began = spawn(started, "exec sleep 30")
    assert procs.stop_processes([(pid, began + 1)], grace=0.1) == []  # not that process
    assert procs.alive(pid, began)
