"""The prober polls each starting web dyno in its own thread and wakes the agent."""

from __future__ import annotations

import threading
import time

from paas.domain.dyno import DynoSpec
from paas.reconcile.readiness import POLL_SECONDS, Prober


def spec(dyno_id: str) -> DynoSpec:
    return DynoSpec(dyno_id, "a", "web.1", "web", 1, 0, "serve", "/app", 5000)


def test_a_dyno_is_ready_once_its_probe_passes_and_the_agent_is_woken() -> None:
    calls: list[str] = []

    def probe(dyno: DynoSpec) -> bool:
        calls.append(dyno.id)
        return len(calls) >= 3

    wake = threading.Event()
    prober = Prober(probe, wake)
    assert not prober.ready(spec("d1"))
    assert wake.wait(5), "the prober never woke the agent"
    assert prober.ready(spec("d1")) and len(calls) == 3


def test_a_slow_probe_does_not_block_the_caller() -> None:
    release = threading.Event()
    prober = Prober(lambda _dyno: release.wait(5), threading.Event())
    started = time.monotonic()
    assert not prober.ready(spec("slow"))
    assert time.monotonic() - started < POLL_SECONDS
    release.set()


def test_dynos_no_longer_starting_stop_being_probed() -> None:
    calls: list[float] = []

    def probe(_dyno: DynoSpec) -> bool:
        calls.append(time.monotonic())
        return False

    prober = Prober(probe, threading.Event())
    prober.ready(spec("gone"))
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    prober.keep_only([])
    time.sleep(3 * POLL_SECONDS)  # long enough for a poll that should not happen
    count = len(calls)
    time.sleep(3 * POLL_SECONDS)
    assert len(calls) == count
