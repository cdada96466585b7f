"""The agent's tick around a failing rollout, against a fake runtime and a real store:
a new release whose web dyno crashes after the old one started draining must leave the
old dyno routed and running."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from paas.domain.dyno import DynoSpec, DynoStatus
from paas.domain.models import App
from paas.domain.settings import Settings
from paas.reconcile.agent import Agent
from paas.release import releases
from paas.state.logs import LogStore
from paas.state.store import Store


class FakeRuntime:
    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.dynos: dict[str, DynoStatus] = {}

    def start(self, spec: DynoSpec) -> None:
        self.dynos[spec.id] = DynoStatus(spec, "starting", self.clock[0], None, False, 1)

    def stop(self, dyno_id: str) -> None:
        self.dynos[dyno_id] = replace(self.dynos[dyno_id], state="stopping", stop_requested=True)

    def mark_up(self, dyno_id: str) -> None:
        self.dynos[dyno_id] = replace(self.dynos[dyno_id], state="up")

    def list(self) -> list[DynoStatus]:
        return list(self.dynos.values())

    def forget(self, dyno_id: str) -> None:
        self.dynos.pop(dyno_id, None)

    def stats(self, dyno_id: str) -> None:
        return None

    def crash(self, name: str, release: int) -> None:
        for dyno_id, status in self.dynos.items():
            if status.spec.name == name and status.spec.release == release:
                self.dynos[dyno_id] = replace(status, state="exited", exit_status=1)

    def live(self) -> list[tuple[str, int, str]]:
        return sorted(
            (s.spec.name, s.spec.release, s.state)
            for s in self.dynos.values()
            if s.state != "exited"
        )


class ReadyWhenTold:
    def __init__(self) -> None:
        self.ready_ones: set[tuple[str, int]] = set()

    def keep_only(self, _ids: object) -> None:
        pass

    def ready(self, spec: DynoSpec) -> bool:
        return (spec.name, spec.release) in self.ready_ones


class World:
    def __init__(self, home: Path) -> None:
        self.clock = [1000.0]
        settings = Settings(home=home, containers=False, dyno_user=None)
        self.store = Store(settings.db_path)
        self.logs = LogStore(settings.logs_db_path)
        self.runtime = FakeRuntime(self.clock)
        self.agent = Agent(
            settings, self.store, self.logs, self.runtime, clock=lambda: self.clock[0]
        )
        self.probe = ReadyWhenTold()
        self.agent.prober = self.probe  # type: ignore[assignment]
        self.agent.slugs.unpacked = lambda _digest: home  # type: ignore[method-assign]
        self.app: App = self.store.create_app("demo", "paas-host", domain="paas.localhost")

    def deploy(self, artifact: str) -> int:
        built = releases.Build(artifact, {"web": "serve"})
        return releases.deploy(self.store, self.logs, self.app, built, "abcdef12").version

    def tick(self, times: int = 1) -> None:
        for _ in range(times):
            self.clock[0] += 1
            self.agent.tick()

    def routed(self) -> list[str]:
        (app,) = self.agent.route_table(self.runtime.list())["apps"]  # type: ignore[index]
        return [str(s["name"]).split("-")[0] for s in app["servers"]]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_a_crash_during_the_drain_keeps_the_old_dyno_routed_and_running(world: World) -> None:
    v1 = world.deploy("sha256:a")
    world.tick()
    world.probe.ready_ones.add(("web.1", v1))
    world.tick(2)
    assert world.store.release(world.app, v1).status == "succeeded"
    v2 = world.deploy("sha256:b")
    world.tick()
    world.probe.ready_ones.add(("web.1", v2))
    world.tick()  # v2's web.1 is up: v1's web.1 starts draining
    assert ("web.1", v1, "up") in world.runtime.live() and world.routed() == ["web.1"]
    world.runtime.crash("web.1", v2)
    world.tick()
    assert world.store.release(world.app, v2).status == "failed"
    world.clock[0] += 60  # far past the drain timeout
    world.tick(3)
    assert world.runtime.live() == [("web.1", v1, "up")]
    assert world.routed() == ["web.1"]


def _confirm_routes(world: World) -> None:
    """What the router does once HAProxy serves the newest table: applied.json."""
    router_dir = world.agent.settings.router_dir
    router_dir.mkdir(parents=True, exist_ok=True)
    applied = {"generation": world.agent.routes_generation, "rejected": []}
    (router_dir / "applied.json").write_text(json.dumps(applied))


def test_a_drained_dyno_is_never_stopped_before_the_router_confirms_it_is_routed_out(
    world: World,
) -> None:
    v1 = world.deploy("sha256:a")
    world.tick()
    world.probe.ready_ones.add(("web.1", v1))
    world.tick(2)
    v2 = world.deploy("sha256:b")
    world.tick()
    world.probe.ready_ones.add(("web.1", v2))
    world.tick()  # v2's web.1 is up: v1's web.1 leaves the route table and drains
    assert world.routed() == ["web.1"]
    # The router is down (or stuck on an old table): HAProxy still sends v1's web.1
    # requests, so it must keep running, however long that lasts.
    world.clock[0] += 600
    world.tick(3)
    assert ("web.1", v1, "up") in world.runtime.live()
    events = [line.format() for line in world.logs.read("demo", num=100)[0]]
    assert sum("has not confirmed it is routed out" in e for e in events) == 1
    _confirm_routes(world)
    world.tick()
    assert ("web.1", v1, "stopping") in world.runtime.live()


def test_the_router_confirming_a_drain_settles_the_rollout_at_once(world: World) -> None:
    """The running agent does not wait for its next interval tick to stop a dyno the
    router has routed out, nor once more to judge the rollout that waited for it."""
    v1 = world.deploy("sha256:a")
    world.tick()
    world.probe.ready_ones.add(("web.1", v1))
    world.tick(2)
    v2 = world.deploy("sha256:b")
    world.tick()
    world.probe.ready_ones.add(("web.1", v2))
    world.tick()  # v2's web.1 is up, v1's drains: v2 waits for the router
    # Read now, not while the agent runs: the last connection closing checkpoints the
    # database, which changes its files and so would wake the agent by itself.
    assert world.store.release(world.app, v2).status == "deploying"
    ticks, settled = [], []
    tick, record = world.agent.tick, world.store.set_release_status
    world.agent.tick = lambda: (tick(), ticks.append(1))  # type: ignore[method-assign]
    world.store.set_release_status = (  # type: ignore[method-assign]
        lambda app, version, *rest: settled.append(version) or record(app, version, *rest)
    )
    stop = threading.Event()
    runner = threading.Thread(target=world.agent.run, args=(stop,), kwargs={"interval": 60.0})
    runner.start()
    try:
        wait_until(lambda: bool(ticks), "the first tick")
        _confirm_routes(world)
        wait_until(lambda: ("web.1", v1, "stopping") in world.runtime.live(), "v1 stopped")
        wait_until(lambda: settled == [v2], "v2 settled")
    finally:
        stop.set()
        world.agent.wake.set()
        runner.join(10)
    assert world.store.release(world.app, v2).status == "succeeded"


def wait_until(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
