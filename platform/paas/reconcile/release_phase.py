"""The release phase: the Procfile's `release:` command, run once per release before rollout.

Per app, one release phase runs at a time, in a one-off dyno `release.1` that has the
release's config and is isolated like any dyno, started by the one path of every one-off
dyno (paas.reconcile.one_off.DynoStarter, as `paas run`'s are). Exit 0 moves the
release to "deploying", so dynos roll over to it; any other exit, or the timeout, fails
it and the running release stays. A running phase is never cut short by a newer release:
the newer one waits its turn. A release overtaken by a newer one before its phase
started, or while it was deploying, is "superseded". Everything is read back each tick
(the agent's snapshot of the store and the runtime's dynos), so an agent restarted
mid-phase picks up where the last one was.
"""

from __future__ import annotations

from paas.domain.dyno import DynoStatus
from paas.domain.errors import PaasError
from paas.domain.models import (
    OVERTAKEN,
    PHASE_FAILED,
    PHASE_PASSED,
    App,
    AppState,
    DesiredState,
    Release,
)
from paas.domain.one_off import OneOff
from paas.domain.procfile import PHASE_DYNO, RELEASE_PHASE
from paas.dynos.runtime import Runtime
from paas.host import platform_log
from paas.reconcile.one_off import StartOneOff
from paas.state.logs import LogStore
from paas.state.store import Store


def phase_to_run(
    current: Release | None, unsettled: list[Release], live: set[int]
) -> tuple[Release | None, list[Release]]:
    """Which release runs its phase now, and which releases a newer one overtook (pure).

    `live`: versions whose phase dyno is still running; such a phase is never overtaken.
    """
    pending = [r for r in unsettled if r.status == "pending"]
    running = [r for r in pending if r.version in live]
    if running:
        target: Release | None = running[0]
    else:
        newer = [r for r in pending if current is None or r.version > current.version]
        target = newer[-1] if newer else None
    versions = [r.version for r in unsettled] + ([current.version] if current else [])
    newest = max(versions, default=0)
    overtaken = [
        r
        for r in unsettled
        if r is not target
        and r.version < newest
        and r.version not in live
        and (current is None or r.version != current.version)
        and (target is None or r.version < target.version or r.status == "deploying")
    ]
    return target, overtaken


class ReleasePhases:
    def __init__(
        self, store: Store, logs: LogStore, runtime: Runtime, start: StartOneOff, timeout: float
    ) -> None:
        self.store = store
        self.logs = logs
        self.runtime = runtime
        self.start = start
        self.timeout = timeout

    def advance(
        self, desired: DesiredState, phases: list[DynoStatus], used_ports: set[int], now: float
    ) -> bool:
        """One step for every app: start, watch or conclude its release phase. Returns
        whether the snapshot `desired` may be out of date (a phase ended, so a release
        moved on) or False when nothing here changed a release."""
        kept: set[str] = set()
        moved = False
        by_app: dict[str, list[DynoStatus]] = {}
        for status in phases:
            by_app.setdefault(status.spec.app, []).append(status)
        for state in desired.apps:
            mine = by_app.get(state.app.name, [])
            kept.update(s.spec.id for s in mine)
            if not mine and not state.unsettled:
                continue  # nothing to run, watch or settle: the common case, kept cheap
            try:
                moved |= self.advance_app(state, mine, used_ports, now)
            except (PaasError, OSError, KeyError, ValueError) as error:
                # One app's broken release must not stop the others from reconciling.
                platform_log.line(f"agent: release phase of {state.app.name}: {error!r}")
        for status in phases:
            if status.spec.id not in kept:
                self.discard(status)
        return moved

    def advance_app(
        self, state: AppState, phases: list[DynoStatus], used_ports: set[int], now: float
    ) -> bool:
        app, current, unsettled = state.app, state.current, list(state.unsettled)
        live = {s.spec.release for s in phases if s.state != "exited"}
        target, overtaken = phase_to_run(current, unsettled, live)
        moved = False
        for release in overtaken:
            newest = max(r.version for r in [*unsettled, *([current] if current else [])])
            if self.store.set_release_status(
                app, release.version, OVERTAKEN, f"v{newest} came first", now
            ):
                moved = True
                self.logs.event(
                    app.name, "api", f"Release v{release.version} superseded by v{newest}"
                )
        for status in phases:
            if target is None or status.spec.release != target.version:
                self.discard(status)
        if target is not None:
            mine = [s for s in phases if s.spec.release == target.version]
            try:
                moved |= self.step(state, target, mine, used_ports, now)
            except (PaasError, OSError, KeyError, ValueError) as error:
                detail = f"the release command could not start: {error}"
                self.store.set_release_status(app, target.version, PHASE_FAILED, detail, now)
                self.logs.event(app.name, "api", f"Release v{target.version} failed: {detail}")
                moved = True
        return moved

    def step(
        self,
        state: AppState,
        release: Release,
        mine: list[DynoStatus],
        used_ports: set[int],
        now: float,
    ) -> bool:
        """Starts, watches or concludes the phase; True once it concluded."""
        app = state.app
        live = [s for s in mine if s.state != "exited"]
        if not mine:
            command = release.process_types[RELEASE_PHASE]
            self.logs.event(
                app.name, PHASE_DYNO, f"Running release command of v{release.version}: {command}"
            )
            phase = OneOff(PHASE_DYNO, command, type=RELEASE_PHASE)
            self.start(state, release, phase, used_ports)
        elif live:
            for status in live:
                if not status.stop_requested and now - (status.started_at or now) > self.timeout:
                    self.logs.event(app.name, PHASE_DYNO, "Release command timed out: stopping it")
                    self.runtime.stop(status.spec.id)
        else:
            self.conclude(app, release, mine[-1], now)
            for status in mine:
                self.runtime.forget(status.spec.id)
            return True
        return False

    def conclude(self, app: App, release: Release, ended: DynoStatus, now: float) -> None:
        code = ended.exit_status
        if code == 0:
            self.store.set_release_status(app, release.version, PHASE_PASSED, None, now)
            self.logs.event(app.name, PHASE_DYNO, "Release command succeeded")
            return
        ran = now - (ended.started_at or now)
        detail = (
            f"release command timed out after {self.timeout:.0f}s"
            if ran > self.timeout
            else f"release command exited with status {code}"
        )
        self.store.set_release_status(app, release.version, PHASE_FAILED, detail, now)
        self.logs.event(
            app.name, "api", f"Release v{release.version} failed: {detail}; nothing was rolled out"
        )

    def discard(self, status: DynoStatus) -> None:
        """A phase dyno of a release that no longer needs it."""
        if status.state == "exited":
            self.runtime.forget(status.spec.id)
        elif not status.stop_requested:
            self.runtime.stop(status.spec.id)
