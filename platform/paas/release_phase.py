"""The release phase: the Procfile's `release:` command, run once per release before rollout.

Per app, only the newest pending release runs its phase, in a one-off dyno `release.1`
that has the release's config and is isolated like any dyno. Exit 0 moves the release to
"deploying", so dynos roll over to it; any other exit, or the timeout, fails it and the
running release stays. A release overtaken by a newer one before it ran is "superseded",
and its phase dyno is stopped. Everything is read back each tick, so an agent restarted
mid-phase picks up where the last one was.
"""

from __future__ import annotations

from collections.abc import Callable

from paas.logs import LogStore
from paas.procfile import RELEASE_PHASE
from paas.runtime import DynoStatus, Runtime
from paas.store import App, Release, Store

PHASE_DYNO = f"{RELEASE_PHASE}.1"

StartDyno = Callable[[App, Release, str, set[int]], None]


class ReleasePhases:
    def __init__(
        self, store: Store, logs: LogStore, runtime: Runtime, start: StartDyno, timeout: float
    ) -> None:
        self.store = store
        self.logs = logs
        self.runtime = runtime
        self.start = start
        self.timeout = timeout

    def advance(self, phases: list[DynoStatus], used_ports: set[int], now: float) -> None:
        """One step for every app: start, watch or conclude its release phase."""
        kept: set[str] = set()
        for app in self.store.apps():
            target = self.retire_overtaken(app, now)
            if target is None:
                continue
            mine = [
                s for s in phases if s.spec.app == app.name and s.spec.release == target.version
            ]
            kept.update(s.spec.id for s in mine)
            self.step(app, target, mine, used_ports, now)
        for status in phases:
            if status.spec.id not in kept:
                self.discard(status)

    def retire_overtaken(self, app: App, now: float) -> Release | None:
        """Marks releases a newer one overtook; returns the release whose phase should run."""
        current = self.store.current_release(app)
        unsettled = self.store.unsettled_releases(app)
        if not unsettled:
            return None
        pending = [r for r in unsettled if r.status == "pending"]
        target = pending[-1] if pending else None
        if target is not None and current is not None and target.version < current.version:
            target = None
        newest = max(r.version for r in [*unsettled, *([current] if current else [])])
        for release in unsettled:
            if release is target or (current is not None and release.version == current.version):
                continue
            self.store.set_release_status(
                app, release.version, "superseded", f"v{newest} came first", now
            )
            self.logs.event(app.name, "api", f"Release v{release.version} superseded by v{newest}")
        return target

    def step(
        self,
        app: App,
        release: Release,
        mine: list[DynoStatus],
        used_ports: set[int],
        now: float,
    ) -> None:
        live = [s for s in mine if s.state != "exited"]
        if not mine:
            command = release.process_types[RELEASE_PHASE]
            self.logs.event(
                app.name, PHASE_DYNO, f"Running release command of v{release.version}: {command}"
            )
            self.start(app, release, PHASE_DYNO, used_ports)
        elif live:
            for status in live:
                if not status.stop_requested and now - (status.started_at or now) > self.timeout:
                    self.logs.event(app.name, PHASE_DYNO, "Release command timed out: stopping it")
                    self.runtime.stop(status.spec.id)
        else:
            self.conclude(app, release, mine[-1], now)
            for status in mine:
                self.runtime.forget(status.spec.id)

    def conclude(self, app: App, release: Release, ended: DynoStatus, now: float) -> None:
        code = ended.exit_status
        if code == 0:
            self.store.set_release_status(app, release.version, "deploying", None, now)
            self.logs.event(app.name, PHASE_DYNO, "Release command succeeded")
            return
        ran = now - (ended.started_at or now)
        detail = (
            f"release command timed out after {self.timeout:.0f}s"
            if ran > self.timeout
            else f"release command exited with status {code}"
        )
        self.store.set_release_status(app, release.version, "failed", detail, now)
        self.logs.event(
            app.name, "api", f"Release v{release.version} failed: {detail}; nothing was rolled out"
        )

    def discard(self, status: DynoStatus) -> None:
        """A phase dyno of a release that no longer needs it."""
        if status.state == "exited":
            self.runtime.forget(status.spec.id)
        elif not status.stop_requested:
            self.runtime.stop(status.spec.id)
