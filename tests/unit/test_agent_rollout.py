"""The agent's tick against a fake runtime, a fake prober, a fake clock and a real store:
around a failing rollout (a new release whose web dyno crashes after the old one started
draining must leave the old dyno routed and running), drains and crash backoff, all driven
by moving the clock, never by sleeping."""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from paas.artifacts.slugs import SlugStore
from paas.domain.dyno import DynoSpec, DynoStatus
from paas.domain.models import App
from paas.domain.settings import Settings
from paas.dynos.capability import Isolation
from paas.dynos.placement import Placement
from paas.reconcile.agent import Agent
from paas.reconcile.drains import DRAIN_TIMEOUT_SECONDS, Drains
from paas.reconcile.one_off import DynoStarter
from paas.reconcile.release_phase import ReleasePhases
from paas.reconcile.routes import RoutePublisher
from paas.release import releases
from paas.state.logs import LogStore
from paas.state.store import Store


class FakeClock:
    """Wall and monotonic time that move only when the test says."""

    def __init__(self, at: float) -> None:
        self.at = at

    def now(self) -> float:
        return self.at

    def monotonic(self) -> float:
        return self.at


class FakeRuntime:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.dynos: dict[str, DynoStatus] = {}

    def start(self, spec: DynoSpec) -> None:
        self.dynos[spec.id] = DynoStatus(spec, "starting", self.clock.now(), None, False, 1)

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

    def live(self) -> builtins.list[tuple[str, int, str]]:  # `list` is the method above
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


class Unpacked(SlugStore):
    """Every slug is already unpacked at one directory."""

    def __init__(self, tree: Path) -> None:
        self.tree = tree

    def unpacked(self, digest: str) -> Path:
        return self.tree


class World:
    def __init__(self, home: Path) -> None:
        self.clock = FakeClock(1000.0)
        settings = Settings(home=home, containers=False)
        self.store = Store(settings.db_path)
        self.logs = LogStore(settings.logs_db_path)
        self.runtime = FakeRuntime(self.clock)
        self.probe = ReadyWhenTold()
        plain = Isolation(None, "plain processes", settings.dyno_subnet)
        start = DynoStarter(
            Placement(settings, self.store, plain, Unpacked(home)), self.runtime, self.logs
        )
        self.routes = RoutePublisher(settings, self.logs)
        self.agent = Agent(
            settings,
            self.store,
            self.logs,
            self.runtime,
            prober=self.probe,
            release_phases=ReleasePhases(
                self.store,
                self.logs,
                self.runtime,
                start.one_off,
                60.0,
            ),
            routes=self.routes,
            drains=Drains(self.runtime, self.logs, self.clock),
            start=start,
            clock=self.clock,
            wake=threading.Event(),
        )
        self.app: App = self.store.create_app("demo", "paas-host", domain="paas.localhost")

    def deploy(self, artifact: str) -> int:
        built = releases.Build(artifact, {"web": "serve"})
        return releases.deploy(self.store, self.logs, self.app, built, "abcdef12").version

    def tick(self, times: int = 1) -> None:
        for _ in range(times):
            self.clock.at += 1
            self.agent.tick()

    def routed(self) -> list[str]:
        """The web dynos of the routes.json the agent last published."""
        (app,) = json.loads(self.agent.settings.routes_path.read_text())["apps"]
        return [str(s["name"]).split("-")[0] for s in app["servers"]]

    def events(self) -> list[str]:
        return [line.format() for line in self.logs.read("demo", num=100)[0]]


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
    world.clock.at += 60  # far past the drain timeout
    world.tick(3)
    assert world.runtime.live() == [("web.1", v1, "up")]
    assert world.routed() == ["web.1"]


def _confirm_routes(world: World) -> None:
    """What the router does once HAProxy serves the newest table: applied.json."""
    router_dir = world.agent.settings.router_dir
    router_dir.mkdir(parents=True, exist_ok=True)
    applied = {"generation": world.routes.generation, "rejected": []}
    (router_dir / "applied.json").write_text(json.dumps(applied))


def v2_up_and_v1_draining(world: World) -> tuple[int, int]:
    """v1 serves; v2 is deployed and its web.1 passes its check, so v1's web.1 leaves the
    route table and drains (the router has not confirmed it yet)."""
    v1 = world.deploy("sha256:a")
    world.tick()
    world.probe.ready_ones.add(("web.1", v1))
    world.tick(2)
    v2 = world.deploy("sha256:b")
    world.tick()
    world.probe.ready_ones.add(("web.1", v2))
    world.tick()
    return v1, v2


def test_a_drained_dyno_is_never_stopped_before_the_router_confirms_it_is_routed_out(
    world: World,
) -> None:
    v1, _ = v2_up_and_v1_draining(world)
    assert world.routed() == ["web.1"]
    # The router is down (or stuck on an old table): HAProxy still sends v1's web.1
    # requests, so it must keep running, however long that lasts.
    world.clock.at += 600
    world.tick(3)
    assert ("web.1", v1, "up") in world.runtime.live()
    assert sum("has not confirmed it is routed out" in e for e in world.events()) == 1
    _confirm_routes(world)
    world.tick()
    assert ("web.1", v1, "stopping") in world.runtime.live()


def test_the_drain_timeout_is_said_once_the_clock_passes_it_not_before(world: World) -> None:
    v2_up_and_v1_draining(world)
    world.clock.at += DRAIN_TIMEOUT_SECONDS - 2  # with the tick's own second: just inside
    world.tick()
    assert not any("has not confirmed" in e for e in world.events())
    world.tick(2)
    assert sum("has not confirmed" in e for e in world.events()) == 1


def test_a_crashing_dyno_is_restarted_after_its_backoff_on_the_clock(world: World) -> None:
    v1 = world.deploy("sha256:a")
    world.tick()
    world.probe.ready_ones.add(("web.1", v1))
    world.tick(2)
    world.runtime.crash("web.1", v1)
    world.tick()  # the first crash: restarted at once
    assert world.runtime.live() == [("web.1", v1, "starting")]
    world.runtime.crash("web.1", v1)
    world.tick()  # the second: 2 s of backoff, on the agent's clock
    assert world.runtime.live() == []
    assert world.store.slots(world.app)["web.1"].next_retry_at == world.clock.now() + 2
    world.tick()
    assert world.runtime.live() == []
    world.tick()
    assert world.runtime.live() == [("web.1", v1, "starting")]


def test_a_tick_reads_the_store_in_one_transaction_and_an_idle_one_not_at_all(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    connect = Store._connect

    def traced(store: Store) -> sqlite3.Connection:
        db = connect(store)
        db.set_trace_callback(statements.append)
        return db

    def tick_statements() -> list[str]:
        statements.clear()
        world.tick()
        return list(statements)

    def settled_with(apps: int) -> None:
        for i in range(len(world.store.apps()), apps):
            app = world.store.create_app(f"app{i}", "paas-host", domain="paas.localhost")
            built = releases.Build(f"sha256:{i}", {"web": "serve"})
            releases.deploy(world.store, world.logs, app, built, "abcdef12")
            releases.scale(world.store, world.logs, app, [{"type": "web", "quantity": 0}])
        world.tick(2)  # every release settles: no web dyno to wait for

    def after_a_commit(hostname: str) -> list[str]:
        """What the tick after a commit (a domain added through the API, say) reads."""
        tick_statements()  # what the ticks before committed (a release settling)
        assert tick_statements() == []  # nothing committed since: nothing read
        world.store.add_domain(world.app, hostname, domain="paas.localhost")
        return tick_statements()

    monkeypatch.setattr(Store, "_connect", traced)
    settled_with(2)
    few = after_a_commit("one.example.com")
    assert few[0] == "BEGIN" and few[-1] == "COMMIT" and few.count("BEGIN") == 1
    settled_with(20)
    # As many statements for 20 apps as for 2:
    assert len(after_a_commit("two.example.com")) == len(few)


def test_the_router_confirming_a_drain_settles_the_rollout_at_once(world: World) -> None:
    """The running agent does not wait for its next interval tick to stop a dyno the
    router has routed out, nor once more to judge the rollout that waited for it."""
    v1, v2 = v2_up_and_v1_draining(world)
    # v2 waits for the router to confirm v1 is routed out
    # Read now, not while the agent runs: the last connection closing checkpoints the
    # database, which changes its files and so would wake the agent by itself.
    assert world.store.release(world.app, v2).status == "deploying"
    ticks: list[int] = []
    settled: list[int] = []
    tick, record = world.agent.tick, world.store.set_release_status

    def counted_tick() -> None:
        tick()
        ticks.append(1)

    def recorded(
        app: App, version: int, change: tuple[tuple[str, ...], str], detail: str | None, at: float
    ) -> bool:
        settled.append(version)
        return record(app, version, change, detail, at)

    world.agent.tick = counted_tick  # type: ignore[method-assign]
    world.store.set_release_status = recorded  # type: ignore[method-assign]
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
