"""One-off dynos: the pure rules (paas.domain.one_off) and the agent's side
(paas.reconcile.one_off) driven tick by tick on a real store with a fake runtime."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest
from test_agent_rollout import FakeClock, FakeRuntime, ReadyWhenTold, Unpacked

from paas.domain import one_off, validation
from paas.domain.errors import InvalidParams, PaasError
from paas.domain.models import App
from paas.domain.settings import Settings
from paas.dynos import session
from paas.dynos.capability import Isolation
from paas.dynos.placement import Placement
from paas.isolation import oci
from paas.reconcile.agent import Agent
from paas.reconcile.drains import Drains
from paas.reconcile.one_off import DynoStarter, OneOffs
from paas.reconcile.release_phase import ReleasePhases
from paas.reconcile.routes import RoutePublisher
from paas.release import releases
from paas.state import one_offs
from paas.state.logs import LogStore
from paas.state.store import Store

# --- pure -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "resolved"),
    [
        ("worker", "python worker.py"),
        ("worker --once", "python worker.py --once"),
        ("workers", "workers"),  # a whole word only
        ("echo worker", "echo worker"),
        ("bash", "bash"),
    ],
)
def test_a_procfile_name_first_runs_that_processs_command(command: str, resolved: str) -> None:
    assert one_off.resolve(command, {"web": "serve", "worker": "python worker.py"}) == resolved


def test_the_command_line_of_several_arguments_quotes_each() -> None:
    assert one_off.command_line(["sh", "-c", "exit 3"]) == "sh -c 'exit 3'"
    assert one_off.command_line(["ls -la | wc -l"]) == "ls -la | wc -l"
    with pytest.raises(InvalidParams):
        one_off.command_line([])


def test_frames_come_out_whole_however_the_stream_is_cut() -> None:
    stream = b"".join(
        [one_off.framed(one_off.STDOUT, b"x" * 70_000), one_off.framed(one_off.EXIT, b"3")]
    )
    reader = one_off.FrameReader()
    frames = []
    for i in range(0, len(stream), 1000):
        frames += reader.feed(stream[i : i + 1000])
    assert frames == [one_off.STDOUT + b"x" * 70_000, one_off.EXIT + b"3"]
    assert one_off.parse_exit(frames[1][1:]) == 3
    with pytest.raises(ValueError):
        one_off.FrameReader().feed(b"\0\0\0\0")  # an empty frame: no peer of ours sends one


def test_window_sizes_and_their_bounds() -> None:
    assert one_off.parse_window(one_off.window(33, 111)[1:]) == (33, 111)
    assert one_off.parse_window(b"\0") is None
    with pytest.raises(InvalidParams):
        one_off.check_window(70_000, 10)
    with pytest.raises(InvalidParams):
        one_off.check_window(True, 10)


def test_the_size_is_given_else_the_types_else_the_default() -> None:
    sizes = {"web": "standard-2x", "worker": "performance-m"}
    assert one_off.OneOff("run.1", "x", size="1024M").size_of(sizes) == "1024M"
    assert one_off.OneOff("run.1", "x", type="worker").size_of(sizes) == "performance-m"
    assert one_off.OneOff("run.1", "x").size_of(sizes) == "standard-1x"


# --- the agent ------------------------------------------------------------------------


class World:
    def __init__(self, home: Path) -> None:
        self.clock = FakeClock(1000.0)
        settings = Settings(home=home, containers=False)
        self.store = Store(settings.db_path)
        self.logs = LogStore(settings.logs_db_path)
        self.runtime = FakeRuntime(self.clock)
        plain = Isolation(None, "plain processes", settings.dyno_subnet)
        placement = Placement(settings, self.store, plain, Unpacked(home))
        start = DynoStarter(placement, self.runtime, self.logs)
        start_one_off = start.one_off
        self.agent = Agent(
            settings,
            self.store,
            self.logs,
            self.runtime,
            prober=ReadyWhenTold(),
            release_phases=ReleasePhases(self.store, self.logs, self.runtime, start_one_off, 60),
            routes=RoutePublisher(settings, self.logs),
            drains=Drains(self.runtime, self.logs, self.clock),
            start=start,
            clock=self.clock,
            wake=threading.Event(),
            one_offs=OneOffs(self.store, self.logs, self.runtime, start_one_off),
        )
        self.app: App = self.store.create_app("demo", "paas-host", domain="paas.localhost")

    def deploy(self, process_types: dict[str, str]) -> int:
        built = releases.Build("sha256:" + "ab" * 32, process_types)
        return releases.deploy(self.store, self.logs, self.app, built, "abcdef12").version

    def run_dynos(self) -> list[tuple[str, str, str]]:
        return sorted(
            (s.spec.name, s.spec.command, s.state)
            for s in self.runtime.dynos.values()
            if s.spec.one_off
        )

    def end(self, name: str, status: int) -> None:
        for dyno_id, found in self.runtime.dynos.items():
            if found.spec.name == name:
                self.runtime.dynos[dyno_id] = replace(found, state="exited", exit_status=status)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_a_request_starts_once_as_run_n_with_its_env_and_ends_with_its_status(
    world: World,
) -> None:
    world.deploy({"web": "serve", "worker": "work hard"})
    asked = one_offs.request(world.store, world.app, "worker", env={"EXTRA": "1"})
    world.agent.tick()
    world.agent.tick()
    assert world.run_dynos() == [("run.1", "work hard", "up")]
    spec = next(s.spec for s in world.runtime.dynos.values() if s.spec.one_off)
    assert spec.type == "run" and spec.env["EXTRA"] == "1" and not spec.attach
    assert one_offs.get(world.store, world.app, asked.id).state == one_offs.STARTED
    world.end("run.1", 3)
    world.agent.tick()
    ended = one_offs.get(world.store, world.app, asked.id)
    assert (ended.state, ended.exit_status) == (one_offs.EXITED, 3)
    world.agent.tick()
    assert world.run_dynos() == []  # forgotten, never restarted


def test_a_run_dyno_is_no_extra_dyno_to_the_plan(world: World) -> None:
    world.deploy({"web": "serve"})
    one_offs.request(world.store, world.app, "sleep 100")
    for _ in range(3):
        world.agent.tick()
    assert world.run_dynos() == [("run.1", "sleep 100", "up")]  # not stopped as "scaled down"


def test_a_request_waits_for_its_release_and_fails_when_it_never_runs(world: World) -> None:
    version = world.deploy({"web": "serve", "release": "migrate"})  # pending: its phase runs
    after = one_offs.request(world.store, world.app, "seed", release=version)
    never = one_offs.request(world.store, world.app, "true", release=version + 5)
    world.agent.tick()
    assert world.run_dynos() == [("release.1", "migrate", "starting")]  # the phase, not seed
    assert one_offs.get(world.store, world.app, after.id).state == one_offs.REQUESTED
    assert one_offs.get(world.store, world.app, never.id).state == one_offs.FAILED
    world.agent.tick()
    world.end("release.1", 0)
    world.agent.tick()
    world.agent.tick()
    assert ("run.1", "seed", "up") in world.run_dynos()  # once its release deploys
    assert one_offs.get(world.store, world.app, after.id).state == one_offs.STARTED


def test_a_request_without_a_release_fails_and_a_gone_dyno_fails_its_request(
    world: World,
) -> None:
    early = one_offs.request(world.store, world.app, "true")
    world.agent.tick()
    failed = one_offs.get(world.store, world.app, early.id)
    assert failed.state == one_offs.FAILED and "no release" in (failed.detail or "")
    world.deploy({"web": "serve"})
    asked = one_offs.request(world.store, world.app, "sleep 100")
    world.agent.tick()
    world.runtime.dynos.clear()  # its directory removed behind the agent's back
    world.agent.tick()
    gone = one_offs.get(world.store, world.app, asked.id)
    assert gone.state == one_offs.FAILED and gone.detail == "the dyno is gone"


def test_requests_are_numbered_per_app_and_checked(world: World) -> None:
    first = one_offs.request(world.store, world.app, "true")
    second = one_offs.request(world.store, world.app, "true")
    assert (first.name, second.name) == ("run.1", "run.2")
    assert one_offs.by_name(world.store, world.app, "run.2") == second
    with pytest.raises(InvalidParams):
        one_offs.request(world.store, world.app, "true", size="huge")
    with pytest.raises(InvalidParams):
        one_offs.request(world.store, world.app, "true", env={"1BAD": "x"})
    assert one_offs.by_name(world.store, world.app, "run.3") is None  # nothing half-written


def test_the_run_dynos_of_a_destroyed_app_are_stopped(world: World) -> None:
    world.deploy({"web": "serve"})
    one_offs.request(world.store, world.app, "sleep 100")
    world.agent.tick()
    world.agent.tick()
    world.store.delete_app(world.app)
    world.agent.tick()
    assert ("run.1", "sleep 100", "stopping") in world.run_dynos()


def test_an_attached_terminal_is_the_runtimes_with_its_size_from_the_start() -> None:
    base = oci.ContainerSpec("h", "bash", {}, 1000, 1000, 512, "paas/x", None)
    plain = oci.runtime_config(base)["process"]
    assert isinstance(plain, dict) and plain["terminal"] is False and "consoleSize" not in plain
    tty = oci.runtime_config(replace(base, terminal=True, console_size=(33, 111)))["process"]
    assert isinstance(tty, dict) and tty["terminal"] is True
    assert tty["consoleSize"] == {"height": 33, "width": 111}
    unknown = oci.runtime_config(replace(base, terminal=True, console_size=(0, 0)))["process"]
    assert isinstance(unknown, dict) and "consoleSize" not in unknown


def test_after_run_9999_the_next_one_off_is_run_10000_and_starts(world: World) -> None:
    world.deploy({"web": "serve"})
    last = one_offs.request(world.store, world.app, "true")
    with world.store.transaction() as tx:
        tx.execute("UPDATE one_off_dynos SET number = 9999 WHERE id = ?", (last.id,))
    asked = one_offs.request(world.store, world.app, "sleep 100")
    assert asked.name == "run.10000"
    world.agent.tick()
    world.agent.tick()
    assert ("run.10000", "sleep 100", "up") in world.run_dynos()
    assert one_offs.get(world.store, world.app, asked.id).state == one_offs.STARTED


def test_an_attached_dyno_nobody_attached_to_says_so(world: World) -> None:
    world.deploy({"web": "serve"})
    asked = one_offs.request(world.store, world.app, "bash", attach=True)
    world.agent.tick()
    world.agent.tick()
    for dyno_id, found in world.runtime.dynos.items():  # as its supervisor leaves it
        if found.spec.name == "run.1":
            world.runtime.dynos[dyno_id] = replace(found, state="exited", exit_status=None)
    world.agent.tick()
    ended = one_offs.get(world.store, world.app, asked.id)
    assert (ended.state, ended.detail) == (one_offs.FAILED, "no client attached within 10s")


def test_env_past_the_config_size_limit_is_refused(world: World) -> None:
    big = {"BIG": "x" * validation.MAX_CONFIG_BYTES}
    with pytest.raises(InvalidParams, match="config vars total"):
        one_offs.request(world.store, world.app, "true", env=big)
    assert one_offs.by_name(world.store, world.app, "run.1") is None


def test_an_attach_socket_is_private_from_its_bind_and_a_too_long_path_is_said(
    tmp_path: Path,
) -> None:
    listener = session.listen(tmp_path)
    try:
        assert (tmp_path / session.ATTACH_SOCKET).stat().st_mode & 0o777 == 0o600
    finally:
        listener.close()
    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    with pytest.raises(PaasError, match="shorter path"):
        session.listen(deep)
