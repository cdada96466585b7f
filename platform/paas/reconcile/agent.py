"""The agent: reconciles desired formations with the dynos really running, forever.

Level-triggered: each tick reads one snapshot of the store (`Store.desired_state()`, one
read transaction whatever the number of apps) and the runtime's dynos (observe, don't
remember), probes starting web dynos, runs release phases, applies the pure plan
(paas.domain.dyno_plan), judges releases being rolled out, publishes the route table and
finishes drains. Its collaborators are passed in (paas.server builds them): placement of
new dynos (paas.dynos.placement), routes (paas.reconcile.routes), drains
(paas.reconcile.drains), release phases, the readiness prober and one clock, so a test
drives every one of them, time included.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from paas.domain import dyno_plan as planning
from paas.domain import rollout
from paas.domain.clock import Clock
from paas.domain.dyno import DynoSpec, DynoStatus
from paas.domain.errors import PaasError
from paas.domain.models import (
    ROLLED_OUT,
    ROLLOUT_FAILED,
    AppState,
    DesiredState,
    DynoSlot,
    Release,
)
from paas.domain.procfile import RELEASE_PHASE, formation_types
from paas.domain.settings import Settings
from paas.dynos.runtime import Runtime
from paas.host import platform_log
from paas.reconcile import routes
from paas.reconcile.drains import Drains
from paas.reconcile.one_off import OneOffs, is_run_dyno
from paas.reconcile.release_phase import ReleasePhases
from paas.reconcile.routes import RoutePublisher
from paas.state import database
from paas.state.logs import LogStore
from paas.state.store import Store


@dataclass(frozen=True)
class DynoView:
    """One line of `paas ps`."""

    name: str
    type: str
    state: str
    release: int | None
    started_at: float | None
    crash_count: int
    last_exit_status: int | None
    next_retry_at: float | None
    command: str | None
    id: str | None = None


def to_observed(status: DynoStatus) -> planning.ObservedDyno:
    spec = status.spec
    return planning.ObservedDyno(
        id=spec.id,
        app=spec.app,
        name=spec.name,
        type=spec.type,
        release=spec.release,
        generation=spec.generation,
        state=status.state,
        started_at=status.started_at,
        exit_status=status.exit_status,
        stop_requested=status.stop_requested,
    )


def describe_dynos(statuses: list[DynoStatus], slots: dict[str, DynoSlot]) -> list[DynoView]:
    """Running dynos plus crashed names waiting for their retry, sorted by name."""
    views: dict[str, DynoView] = {}
    for status in sorted(statuses, key=lambda s: s.started_at or 0.0):
        spec = status.spec
        slot = slots.get(spec.name)
        if status.state == "exited" or (spec.name in views and status.state == "stopping"):
            continue  # the newest live dyno of a name is the one to show
        views[spec.name] = DynoView(
            spec.name,
            spec.type,
            status.state,
            spec.release,
            status.started_at,
            slot.crash_count if slot else 0,
            slot.last_exit_status if slot else None,
            slot.next_retry_at if slot else None,
            spec.command,
            spec.id,
        )
    for name, slot in slots.items():
        if name not in views and slot.crash_count:
            views[name] = DynoView(
                name,
                name.split(".")[0],
                "crashed",
                None,
                None,
                slot.crash_count,
                slot.last_exit_status,
                slot.next_retry_at,
                None,
            )
    return sorted(views.values(), key=lambda v: (v.type, _number(v.name)))


def _number(name: str) -> int:
    tail = name.rpartition(".")[2]
    return int(tail) if tail.isdigit() else 0


class ReadinessProbe(Protocol):
    """Whether a starting web dyno passed its readiness probe (paas.reconcile.readiness)."""

    def ready(self, spec: DynoSpec) -> bool: ...
    def keep_only(self, starting: Iterable[str]) -> None: ...


StartDyno = Callable[[AppState, Release, str, set[int]], None]


def to_desired(state: AppState, default_boot_timeout: float) -> planning.DesiredApp:
    """One app of the snapshot as the plan reads it."""
    release = state.current
    return planning.DesiredApp(
        app=state.app.name,
        release=release.version if release else None,
        process_types=formation_types(release.process_types if release else {}),
        quantities=state.quantities,
        generations=dict(state.generations),
        slots={
            name: planning.Slot(s.crash_count, s.next_retry_at) for name, s in state.slots.items()
        },
        boot_timeout=rollout.boot_timeout(release, default_boot_timeout),
    )


Releases = dict[str, tuple[AppState, Release]]  # app name -> its state and current release


class Agent:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        logs: LogStore,
        runtime: Runtime,
        *,
        prober: ReadinessProbe,
        release_phases: ReleasePhases,
        routes: RoutePublisher,
        drains: Drains,
        start: StartDyno,
        clock: Clock,
        wake: threading.Event,
        one_offs: OneOffs | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.logs = logs
        self.runtime = runtime
        self.prober = prober
        self.release_phases = release_phases
        self.routes = routes
        self.drains = drains
        self.start_dyno = start
        self.one_offs = one_offs
        self.clock = clock
        self.wake = wake
        self.failures_reported: dict[str, str] = {}  # app -> the reason last said
        # The last snapshot and what the plan reads of it, by the store's data version:
        # an idle tick (nothing committed since) reads and decodes nothing again.
        self.snapshot: tuple[int, DesiredState, list[planning.DesiredApp], Releases] | None = None

    # --- observe ----------------------------------------------------------------------
    def read_snapshot(
        self, fresh: bool = False
    ) -> tuple[DesiredState, list[planning.DesiredApp], Releases]:
        """The store's desired state and the plan's view of it; read again only when a
        commit happened since (the version is taken first: a commit during the read
        makes the next tick read again, never keeps a stale snapshot)."""
        version = self.store.data_version()
        if fresh or self.snapshot is None or self.snapshot[0] != version:
            state = self.store.desired_state()
            self.snapshot = (version, state, *self.desired(state))
        return self.snapshot[1], self.snapshot[2], self.snapshot[3]

    def desired(self, state: DesiredState) -> tuple[list[planning.DesiredApp], Releases]:
        wanted = [to_desired(a, self.settings.boot_timeout_seconds) for a in state.apps]
        releases = {a.app.name: (a, a.current) for a in state.apps if a.current is not None}
        return wanted, releases

    def probe(self, statuses: list[DynoStatus]) -> list[DynoStatus]:
        """Marks starting dynos up: web once its readiness probe passed, others once running."""
        starting = {s.spec.id for s in statuses if s.state == "starting" and s.pid is not None}
        self.prober.keep_only(starting)
        probed = []
        for status in statuses:
            spec = status.spec
            if spec.id in starting and (spec.type != "web" or self.prober.ready(spec)):
                self.runtime.mark_up(spec.id)
                self.logs.event(spec.app, spec.name, "State changed from starting to up")
                status = replace(status, state="up")
            probed.append(status)
        return probed

    # --- act --------------------------------------------------------------------------
    def tick(self) -> None:
        """One snapshot of the store (two when a release phase moved a release on), the
        runtime's dynos, the pure plan, then its actions, the routes and the drains."""
        now = self.clock.now()
        statuses = self.probe(self.runtime.list())
        used_ports = {s.spec.port for s in statuses if s.spec.port}
        phases = [s for s in statuses if s.spec.type == RELEASE_PHASE]
        snapshot, wanted, releases = self.read_snapshot()
        if self.release_phases.advance(snapshot, phases, used_ports, now):
            # A release moved on: plan for it now.
            snapshot, wanted, releases = self.read_snapshot(fresh=True)
        if self.one_offs is not None:
            self.one_offs.advance(snapshot, [s for s in statuses if is_run_dyno(s)], used_ports)
        # One-off dynos (release.1, run.N) are never planned: not restarted, not "extra".
        observed = [
            to_observed(s) for s in statuses if s.spec.type != RELEASE_PHASE and not s.spec.one_off
        ]
        actions = planning.plan(wanted, observed, now)
        verdicts = self.judge_rollouts(releases, observed, actions, now)
        failed = self.record_verdicts(releases, verdicts, now)
        # A release that just failed was planned as current: its starts and stops are void;
        # the next tick plans for the release that serves again.
        actions = [a for a in actions if not (_moves_dynos(a) and _app_of(a) in failed)]
        self.drains.keep_only({a.dyno.id for a in actions if isinstance(a, planning.Stop)})
        for action in actions:
            try:
                self.apply(action, releases, used_ports)
            except (PaasError, OSError, KeyError, ValueError) as error:
                # One app's broken dyno must not stop every other app from reconciling.
                self.report_failure(action, error)
        self.publish_routes(snapshot, statuses)
        if self.drains.finish(self.routes.applied_generation(), now):
            self.wake.set()  # the next tick judges the rollout that waited for it

    def report_failure(self, action: planning.Action, error: Exception) -> None:
        """Says why an action failed once per app and reason, not on every tick (4 a
        second): in the platform's log, and in the app's own as a `paas` line."""
        app = _app_of(action)
        reason = error.message if isinstance(error, PaasError) else repr(error)
        if self.failures_reported.get(app) == reason:
            return
        self.failures_reported[app] = reason
        platform_log.line(f"agent: {action!r} failed: {reason}")
        # Said in the platform log just above: an app log that cannot take it loses nothing.
        with contextlib.suppress(PaasError, OSError, ValueError):
            self.logs.event(app, "agent", f"Cannot {type(action).__name__.lower()}: {reason}")

    def judge_rollouts(
        self,
        releases: Releases,
        observed: list[planning.ObservedDyno],
        actions: list[planning.Action],
        now: float,
    ) -> dict[str, rollout.Verdict]:
        crashes = [a for a in actions if isinstance(a, planning.Crash)]
        verdicts = {}
        for state, release in releases.values():
            if release.status != "deploying":
                continue
            web = state.quantities.get("web", 0)
            deploying = rollout.Deploying(
                app=state.app.name,
                version=release.version,
                since=release.status_at or now,
                web_quantity=web if "web" in release.process_types else 0,
                boot_timeout=rollout.boot_timeout(release, self.settings.boot_timeout_seconds),
            )
            verdict = rollout.judge(deploying, observed, crashes, now)
            if verdict is not None:
                verdicts[state.app.name] = verdict
        return verdicts

    def record_verdicts(
        self, releases: Releases, verdicts: dict[str, rollout.Verdict], now: float
    ) -> set[str]:
        """Stores each verdict; returns the apps whose release just failed."""
        failed = set()
        for name, verdict in verdicts.items():
            app, release = releases[name][0].app, releases[name][1]
            move = ROLLED_OUT if verdict.status == "succeeded" else ROLLOUT_FAILED
            if not self.store.set_release_status(app, release.version, move, verdict.detail, now):
                continue  # settled meanwhile by someone else (the push gave up)
            if verdict.status == "succeeded":
                self.logs.event(app.name, "api", f"Release v{release.version} is serving")
                continue
            failed.add(name)
            self.store.reset_slots(app)
            before = self.store.current_release(app)
            outcome = (
                f"v{before.version} keeps serving" if before else "no release was serving before"
            )
            self.logs.event(
                app.name, "api", f"Release v{release.version} failed: {verdict.detail}; {outcome}"
            )
        return failed

    def apply(self, action: planning.Action, releases: Releases, used_ports: set[int]) -> None:
        if isinstance(action, planning.Start):
            self.start(action, releases, used_ports)
        elif isinstance(action, planning.Stop):
            self.stop(action)
        elif isinstance(action, planning.Forget):
            self.runtime.forget(action.dyno.id)
            self.drains.forget(action.dyno.id)
        elif isinstance(action, planning.Crash):
            self.record_crash(action, releases)
        elif isinstance(action, planning.ResetSlot) and action.app in releases:
            app = releases[action.app][0].app
            self.store.save_slot(app, DynoSlot(action.name, 0, None, None))

    def start(self, action: planning.Start, releases: Releases, used_ports: set[int]) -> None:
        state, release = releases[action.app]
        self.start_dyno(state, release, action.name, used_ports)

    def stop(self, action: planning.Stop) -> None:
        dyno = action.dyno
        if dyno.type == "web" and dyno.state == "up":
            # Stopped by the drains once the router no longer sends it requests.
            self.drains.begin(dyno.id, self.routes.generation + 1)
            return
        self.logs.event(dyno.app, dyno.name, f"Stopping ({action.reason})")
        self.runtime.stop(dyno.id)

    def record_crash(self, action: planning.Crash, releases: Releases) -> None:
        if action.app not in releases:
            return
        app = releases[action.app][0].app
        slot = action.slot
        self.store.save_slot(
            app, DynoSlot(action.name, slot.crash_count, action.exit_status, slot.next_retry_at)
        )
        wait = max(0.0, (slot.next_retry_at or 0) - self.clock.now())
        self.logs.event(
            app.name,
            action.name,
            f"State changed to crashed ({action.reason}, exit status {action.exit_status}); "
            f"crash {slot.crash_count}, restarting in {wait:.0f}s",
        )

    # --- routes -----------------------------------------------------------------------
    def publish_routes(self, snapshot: DesiredState, statuses: list[DynoStatus]) -> None:
        table, refused = routes.route_table(
            snapshot, statuses, self.drains, self.settings.domain, self.routes.routes
        )
        self.routes.publish(table, refused)

    def run(self, stop: threading.Event, interval: float = 0.25, poll: float = 0.01) -> None:
        """Ticks every `interval`; at once when a dyno passes its readiness probe or a
        drained one was stopped; and within `poll` of a change to the state database (a
        scale, a release) or of the router applying a route generation (a drain may end),
        which a cheap stat of their files tells."""
        seen = None
        last_tick = float("-inf")
        failing = ""  # the failure of the ticks before, said once (not 4 times a second)
        applied = routes.applied_path(self.settings)
        while not stop.is_set():
            stamp = database.stamp(self.settings.db_path) + database.file_stamps([applied])
            if (
                self.wake.is_set()
                or stamp != seen
                or self.clock.monotonic() - last_tick >= interval
            ):
                self.wake.clear()
                seen, last_tick = stamp, self.clock.monotonic()
                try:
                    self.tick()
                    failing = ""
                except Exception as error:  # the top of the agent: the next tick retries
                    if repr(error) != failing:
                        platform_log.exception(f"agent: tick failed: {error!r}")
                    failing = repr(error)
            self.wake.wait(poll)


def _moves_dynos(action: planning.Action) -> bool:
    return isinstance(action, planning.Start | planning.Stop)


def _app_of(action: planning.Action) -> str:
    return action.dyno.app if isinstance(action, planning.Stop | planning.Forget) else action.app


def supervisor_environment(settings: Settings) -> dict[str, str]:
    """What each dyno supervisor needs: where the logs go and how to import paas."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PAAS_LOGS_DB": str(settings.logs_db_path),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
