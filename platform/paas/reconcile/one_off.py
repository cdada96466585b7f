"""One-off dynos in the agent: the one start path of `release.1` and `run.N`, and the
requests of `paas run` carried to their end.

`DynoStarter` is how every dyno starts — the formation's (the agent's plan) and every
one-off: the release phase's (paas.reconcile.release_phase) and each request's —
placement, then the runtime, said in the app's log.
`OneOffs.advance`, once a tick: starts each request of paas.state.one_offs on its app's
current release (or the one it waits for), records the exit status of each run dyno that
ended and forgets it, and fails requests whose dyno is gone. A run dyno is never
restarted, never routed and never stopped as an extra dyno: the plan never sees it.

Invariants: a request starts at most once (its row moves requested -> started before the
next tick reads it again); an ended run dyno leaves no directory behind past the tick
that records its status.
"""

from __future__ import annotations

from collections.abc import Callable

from paas.domain.dyno import DynoSpec, DynoStatus
from paas.domain.errors import PaasError
from paas.domain.models import AppState, DesiredState, Release
from paas.domain.one_off import OneOff, resolve
from paas.domain.procfile import RELEASE_PHASE
from paas.dynos import session
from paas.dynos.placement import Placement
from paas.dynos.runtime import Runtime
from paas.host import platform_log
from paas.state import one_offs
from paas.state.logs import LogStore
from paas.state.one_offs import OneOffRequest
from paas.state.store import Store

StartOneOff = Callable[[AppState, Release, OneOff, set[int]], DynoSpec]


class DynoStarter:
    """Starts a new dyno where placement puts it, saying so in the app's log: a formation
    dyno (called as the agent's StartDyno) or a one-off (`one_off`, a StartOneOff)."""

    def __init__(self, placement: Placement, runtime: Runtime, logs: LogStore) -> None:
        self.placement = placement
        self.runtime = runtime
        self.logs = logs

    def __call__(self, state: AppState, release: Release, name: str, used_ports: set[int]) -> None:
        self.start(state, release, name, used_ports, None)

    def one_off(
        self, state: AppState, release: Release, one_off: OneOff, used_ports: set[int]
    ) -> DynoSpec:
        return self.start(state, release, one_off.name, used_ports, one_off)

    def start(
        self,
        state: AppState,
        release: Release,
        name: str,
        used_ports: set[int],
        one_off: OneOff | None,
    ) -> DynoSpec:
        spec = self.placement.spec(state, release, name, used_ports, one_off)
        self.logs.event(state.app.name, name, f"Starting process of release v{release.version}")
        self.runtime.start(spec)
        return spec


def is_run_dyno(status: DynoStatus) -> bool:
    """A run.N dyno (not the release phase's): what OneOffs.advance looks after."""
    return status.spec.one_off and status.spec.type != RELEASE_PHASE


def release_for(request: OneOffRequest, state: AppState) -> tuple[Release | None, str | None]:
    """The release a request runs on now (None: not yet), or why it never will."""
    current = state.current
    if request.release is None:
        if current is None:
            return None, f"{state.app.name} has no release to run: push it first"
        return current, None
    if current is not None and current.version >= request.release:
        return current, None
    if any(r.version == request.release for r in state.unsettled):
        return None, None  # its release phase or rollout is still under way
    return None, f"release v{request.release} of {state.app.name} never ran"


class OneOffs:
    def __init__(self, store: Store, logs: LogStore, runtime: Runtime, start: StartOneOff) -> None:
        self.store = store
        self.logs = logs
        self.runtime = runtime
        self.start = start
        self.version: int | None = None  # the store's data version when last read
        self.pending: list[OneOffRequest] = []

    def advance(self, desired: DesiredState, dynos: list[DynoStatus], used_ports: set[int]) -> None:
        """`dynos`: the run dynos the runtime listed at this tick's start."""
        self.conclude(dynos)
        self.stop_orphans(desired, dynos)
        version = self.store.data_version()
        if version != self.version:  # an idle tick reads nothing
            self.version = version
            self.pending = one_offs.unended(self.store)
        if not self.pending:
            return
        listed = {s.spec.id for s in dynos}
        states = desired.by_name()
        for request in self.pending:
            try:
                self.advance_one(request, states.get(request.app), listed, used_ports)
            except (PaasError, OSError, KeyError, ValueError) as error:
                # One broken request must not keep the others (or the agent) from going on.
                platform_log.line(f"agent: one-off {request.app} {request.name}: {error!r}")
                self.fail(request, f"the dyno could not start: {error}")

    def advance_one(
        self,
        request: OneOffRequest,
        state: AppState | None,
        listed: set[str],
        used_ports: set[int],
    ) -> None:
        if request.state == one_offs.STARTED:
            if request.dyno_id not in listed:
                # Forgotten without a status (a `server --stop`, a dyno dir removed by hand).
                self.fail(request, "the dyno is gone")
            return
        if state is None:
            self.fail(request, "the app is gone")
            return
        release, refused = release_for(request, state)
        if refused is not None:
            self.fail(request, refused)
        if release is None:
            return
        command = resolve(request.command, release.process_types)
        spec = self.start(state, release, request.to_one_off(command), used_ports)
        if not one_offs.mark_started(self.store, request.id, spec.id):
            self.runtime.stop(spec.id)  # ended meanwhile (a ps:stop before it started)

    def conclude(self, dynos: list[DynoStatus]) -> None:
        """Each run dyno that ended: its exit status into its request, its directory gone."""
        for status in dynos:
            if status.state != "exited":
                continue
            found = [r for r in self.pending if r.dyno_id == status.spec.id]
            if not found:
                found = [r for r in one_offs.unended(self.store) if r.dyno_id == status.spec.id]
            for request in found:
                one_offs.mark_ended(
                    self.store, request.id, status.exit_status, _why(request, status)
                )
            self.runtime.forget(status.spec.id)

    def stop_orphans(self, desired: DesiredState, dynos: list[DynoStatus]) -> None:
        """Run dynos of an app that is gone (apps:destroy) are stopped, as its others are."""
        apps = {state.app.name for state in desired.apps}
        for status in dynos:
            live = status.state != "exited" and not status.stop_requested
            if live and status.spec.app not in apps:
                self.runtime.stop(status.spec.id)

    def fail(self, request: OneOffRequest, detail: str) -> None:
        if one_offs.mark_ended(self.store, request.id, None, detail):
            self.logs.event(request.app, request.name, f"Process failed to start: {detail}")


def _why(request: OneOffRequest, status: DynoStatus) -> str | None:
    """What a dyno that ended without an exit status says: an attached one's supervisor
    ends it so when no client came (paas.dynos.session.accept)."""
    if status.exit_status is None and request.attach:
        return f"no client attached within {session.ATTACH_SECONDS:g}s"
    return None
