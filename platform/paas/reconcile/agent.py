"""The agent: reconciles desired formations with the dynos really running, forever.

Level-triggered: each tick re-reads the store and the runtime (observe, don't remember),
probes starting web dynos, runs release phases, applies the pure plan, judges releases
being rolled out, and publishes the route table for the router. A web dyno leaves the
router before it is stopped: it is drained first, and stopped only once the router reports
a route generation without it — never before, however long that takes: a router that is
down or stuck leaves HAProxy serving its last table, which still sends requests to the
dyno, so stopping it would turn them into errors. Such a dyno is logged once and stays.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from paas.artifacts import stacks
from paas.artifacts.slugs import SlugStore
from paas.domain import addressing, rollout, validation
from paas.domain import dyno_plan as planning
from paas.domain.dyno import DynoSpec, DynoStatus
from paas.domain.errors import PaasError
from paas.domain.models import ROLLED_OUT, ROLLOUT_FAILED, App, DynoSlot, Release
from paas.domain.procfile import RELEASE_PHASE, formation_types
from paas.domain.settings import Settings
from paas.domain.sizes import DEFAULT_SIZE, memory_mb
from paas.dynos import capability
from paas.dynos.runtime import Runtime
from paas.host.jsonfile import read_json, write_json
from paas.isolation import container, network, users
from paas.isolation.container import ContainerPlan
from paas.reconcile import readiness, routing
from paas.reconcile.readiness import Prober
from paas.reconcile.release_phase import ReleasePhases
from paas.state.logs import LogStore
from paas.state.store import Store

# The router drains a removed server for up to 10 s before it leaves HAProxy for good; a
# dyno still waiting for the router's word after this long is worth a line in its log.
DRAIN_TIMEOUT_SECONDS = 15.0


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


class Agent:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        logs: LogStore,
        runtime: Runtime,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.logs = logs
        self.runtime = runtime
        self.clock = clock
        self.slugs = SlugStore(settings.slugs_dir)
        self.draining: dict[str, int] = {}
        self.drain_started: dict[str, float] = {}
        self.drain_overdue: set[str] = set()
        self.failures_reported: dict[str, str] = {}  # app -> the reason last said
        self.routes_generation = self._published_generation()
        self.isolation = capability.load(settings)
        self.wake = threading.Event()
        self.prober = Prober(readiness.answers, self.wake, readiness.initial_delay)
        self.release_phases = ReleasePhases(
            store, logs, runtime, self.start_dyno, settings.release_timeout_seconds
        )

    # --- observe ----------------------------------------------------------------------
    def desired(self) -> tuple[list[planning.DesiredApp], dict[str, tuple[App, Release]]]:
        wanted, releases = [], {}
        for app in self.store.apps():
            release = self.store.current_release(app)
            slots = {
                name: planning.Slot(s.crash_count, s.next_retry_at)
                for name, s in self.store.slots(app).items()
            }
            wanted.append(
                planning.DesiredApp(
                    app=app.name,
                    release=release.version if release else None,
                    process_types=formation_types(release.process_types if release else {}),
                    quantities={f.type: f.quantity for f in self.store.formation(app)},
                    generations=self.store.restart_generations(app),
                    slots=slots,
                    boot_timeout=rollout.boot_timeout(release, self.settings.boot_timeout_seconds),
                )
            )
            if release is not None:
                releases[app.name] = (app, release)
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
        now = self.clock()
        statuses = self.probe(self.runtime.list())
        used_ports = {s.spec.port for s in statuses if s.spec.port}
        phases = [s for s in statuses if s.spec.type == RELEASE_PHASE]
        self.release_phases.advance(phases, used_ports, now)
        wanted, releases = self.desired()
        observed = [to_observed(s) for s in statuses if s.spec.type != RELEASE_PHASE]
        actions = planning.plan(wanted, observed, now)
        verdicts = self.judge_rollouts(releases, observed, actions, now)
        failed = self.record_verdicts(releases, verdicts, now)
        # A release that just failed was planned as current: its starts and stops are void;
        # the next tick plans for the release that serves again.
        actions = [a for a in actions if not (_moves_dynos(a) and _app_of(a) in failed)]
        self.keep_draining_only({a.dyno.id for a in actions if isinstance(a, planning.Stop)})
        for action in actions:
            try:
                self.apply(action, releases, used_ports)
            except (PaasError, OSError, KeyError, ValueError) as error:
                # One app's broken dyno must not stop every other app from reconciling.
                self.report_failure(action, error)
        self.publish_routes(statuses)
        self.finish_drains(now)

    def report_failure(self, action: planning.Action, error: Exception) -> None:
        """Says why an action failed once per app and reason, not on every tick (4 a
        second): in the platform's log, and in the app's own as a `paas` line."""
        app = _app_of(action)
        reason = error.message if isinstance(error, PaasError) else repr(error)
        if self.failures_reported.get(app) == reason:
            return
        self.failures_reported[app] = reason
        print(f"agent: {action!r} failed: {reason}", file=sys.stderr, flush=True)
        with contextlib.suppress(PaasError, OSError, ValueError):
            self.logs.event(app, "agent", f"Cannot {type(action).__name__.lower()}: {reason}")

    def keep_draining_only(self, stopping: set[str]) -> None:
        """A dyno the plan no longer stops (its replacement failed) is routed again."""
        for dyno_id in [d for d in self.draining if d not in stopping]:
            self.forget_drain(dyno_id)

    def forget_drain(self, dyno_id: str) -> None:
        self.draining.pop(dyno_id, None)
        self.drain_started.pop(dyno_id, None)
        self.drain_overdue.discard(dyno_id)

    def judge_rollouts(
        self,
        releases: dict[str, tuple[App, Release]],
        observed: list[planning.ObservedDyno],
        actions: list[planning.Action],
        now: float,
    ) -> dict[str, rollout.Verdict]:
        crashes = [a for a in actions if isinstance(a, planning.Crash)]
        verdicts = {}
        for app, release in releases.values():
            if release.status != "deploying":
                continue
            web = {f.type: f.quantity for f in self.store.formation(app)}.get("web", 0)
            deploying = rollout.Deploying(
                app=app.name,
                version=release.version,
                since=release.status_at or now,
                web_quantity=web if "web" in release.process_types else 0,
                boot_timeout=rollout.boot_timeout(release, self.settings.boot_timeout_seconds),
            )
            verdict = rollout.judge(deploying, observed, crashes, now)
            if verdict is not None:
                verdicts[app.name] = verdict
        return verdicts

    def record_verdicts(
        self,
        releases: dict[str, tuple[App, Release]],
        verdicts: dict[str, rollout.Verdict],
        now: float,
    ) -> set[str]:
        """Stores each verdict; returns the apps whose release just failed."""
        failed = set()
        for name, verdict in verdicts.items():
            app, release = releases[name]
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

    def apply(
        self,
        action: planning.Action,
        releases: dict[str, tuple[App, Release]],
        used_ports: set[int],
    ) -> None:
        if isinstance(action, planning.Start):
            self.start(action, releases, used_ports)
        elif isinstance(action, planning.Stop):
            self.stop(action)
        elif isinstance(action, planning.Forget):
            self.runtime.forget(action.dyno.id)
            self.forget_drain(action.dyno.id)
        elif isinstance(action, planning.Crash):
            self.record_crash(action, releases)
        elif isinstance(action, planning.ResetSlot) and action.app in releases:
            app = releases[action.app][0]
            self.store.save_slot(app, DynoSlot(action.name, 0, None, None))

    def start(
        self, action: planning.Start, releases: dict[str, tuple[App, Release]], used_ports: set[int]
    ) -> None:
        app, release = releases[action.app]
        self.start_dyno(app, release, action.name, used_ports)

    def start_dyno(self, app: App, release: Release, name: str, used_ports: set[int]) -> None:
        port = free_port(used_ports)
        used_ports.add(port)
        generations = self.store.restart_generations(app)
        kind = name.split(".", 1)[0]
        generation = max(generations.get("", 0), generations.get(kind, 0), generations.get(name, 0))
        account = users.app_account(self.store, app)
        spec = DynoSpec(
            # Checked: it names the dyno's directory and its server in HAProxy.
            id=validation.dyno_id(f"{app.name}.{name}.v{release.version}.{secrets.token_hex(4)}"),
            app=app.name,
            name=name,
            type=kind,
            release=release.version,
            generation=generation,
            command=release.process_types[kind],
            app_dir=str(self.slugs.unpacked(release.artifact)),
            port=port,
            env=dict(release.config),
            uid=account.uid if account else None,
            grace_seconds=self.settings.stop_grace_seconds,
            healthcheck=release.healthcheck if kind == "web" else None,
        )
        plan = self.container_plan(app, spec, account)
        if plan is not None:
            spec = replace(spec, app_dir="/app", host=plan.address, container=asdict(plan))
        self.logs.event(app.name, name, f"Starting process of release v{release.version}")
        self.runtime.start(spec)

    def container_plan(
        self, app: App, spec: DynoSpec, account: users.Account | None
    ) -> ContainerPlan | None:
        """How this dyno runs in a container, or None to run it as a plain process."""
        if not self.isolation.containers or account is None or self.isolation.runtime is None:
            return None
        stack_rootfs = stacks.rootfs(stacks.effective(app.stack))
        if stack_rootfs is None:  # never fall back to a plain process for one app
            stack = stacks.effective(app.stack)
            raise PaasError(
                f"{app.name}: stack {stack} is not built on this host; its dynos run only in "
                f"containers of it: run `paas stacks:build {stack}`"
            )
        sizes = {f.type: f.size for f in self.store.formation(app)}
        subnet = addressing.subnet(self.isolation.subnet)
        return ContainerPlan(
            runtime=self.isolation.runtime,
            state_root=str(self.settings.run_dir / "oci"),
            stack_rootfs=str(stack_rootfs),
            layer=str(container.app_layer(Path(spec.app_dir), account.uid, account.gid)),
            address=network.claim_address(subnet, spec.id),
            subnet=str(subnet),
            memory_mb=memory_mb(sizes.get(spec.type, DEFAULT_SIZE)),
            uid=account.uid,
            gid=account.gid,
            disk_mb=self.settings.dyno_disk_mb,
        )

    def stop(self, action: planning.Stop) -> None:
        dyno = action.dyno
        if dyno.type == "web" and dyno.state == "up":
            if dyno.id not in self.draining:
                self.draining[dyno.id] = self.routes_generation + 1
                self.drain_started[dyno.id] = self.clock()
            return  # stopped by finish_drains once the router no longer sends it requests
        self.logs.event(dyno.app, dyno.name, f"Stopping ({action.reason})")
        self.runtime.stop(dyno.id)

    def finish_drains(self, now: float) -> None:
        """Stops each draining dyno once the router serves a generation without it."""
        applied = self.applied_generation()
        for dyno_id, generation in list(self.draining.items()):
            if applied >= generation:
                self.runtime.stop(dyno_id)
                self.forget_drain(dyno_id)
                self.wake.set()  # the next tick judges the rollout that waited for it
                continue
            waited = now - self.drain_started.get(dyno_id, now)
            if waited > DRAIN_TIMEOUT_SECONDS and dyno_id not in self.drain_overdue:
                self.drain_overdue.add(dyno_id)
                app, _, rest = dyno_id.partition(".")
                self.logs.event(
                    app,
                    rest.split(".v", 1)[0],
                    f"Kept running after {waited:.0f}s of draining: the router has not "
                    f"confirmed it is routed out (it serves route generation {applied}, "
                    f"this needs {generation}); is `paas router` running?",
                )

    def record_crash(
        self, action: planning.Crash, releases: dict[str, tuple[App, Release]]
    ) -> None:
        if action.app not in releases:
            return
        app = releases[action.app][0]
        slot = action.slot
        self.store.save_slot(
            app, DynoSlot(action.name, slot.crash_count, action.exit_status, slot.next_retry_at)
        )
        wait = max(0.0, (slot.next_retry_at or 0) - self.clock())
        self.logs.event(
            app.name,
            action.name,
            f"State changed to crashed ({action.reason}, exit status {action.exit_status}); "
            f"crash {slot.crash_count}, restarting in {wait:.0f}s",
        )

    # --- routes -----------------------------------------------------------------------
    def route_table(self, statuses: list[DynoStatus]) -> dict[str, object]:
        apps = []
        for app in self.store.apps():
            servers = [
                {
                    "name": s.spec.name + "-" + s.spec.id.rsplit(".", 1)[-1],
                    "host": s.spec.host,
                    "port": s.spec.port,
                }
                for s in statuses
                if s.spec.app == app.name
                and s.spec.type == "web"
                and s.state == "up"
                and s.spec.id not in self.draining
                and not s.stop_requested
            ]
            hostnames = [f"{app.name}.{self.settings.domain}", *self.store.domains(app)]
            apps.append({"app": app.name, "hostnames": hostnames, "servers": servers})
        return {"apps": apps}

    def publish_routes(self, statuses: list[DynoStatus]) -> None:
        table = self.route_table(statuses)
        path = self.settings.routes_path
        previous = read_json(path) or {}
        if previous.get("apps") == table["apps"]:
            return
        self.routes_generation += 1
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {"generation": self.routes_generation, **table})
        self.log_route_changes(previous.get("apps"), table["apps"])

    def log_route_changes(self, before: object, after: object) -> None:
        """`paas[router]: Routing to web.1, web.2` whenever an app's routed dynos change."""

        def routed(apps: object) -> dict[str, list[str]]:
            if not isinstance(apps, list):
                return {}
            return {a["app"]: sorted(s["name"].split("-")[0] for s in a["servers"]) for a in apps}

        old, new = routed(before), routed(after)
        for app, dynos in new.items():
            if old.get(app) != dynos:
                target = ", ".join(dynos) if dynos else "no web dyno (requests get 503)"
                self.logs.event(app, "router", f"Routing to {target}")

    def _published_generation(self) -> int:
        value = (read_json(self.settings.routes_path) or {}).get("generation", 0)
        return value if isinstance(value, int) else 0

    def applied_generation(self) -> int:
        return routing.applied(self.settings).generation

    def run(self, stop: threading.Event, interval: float = 0.25, poll: float = 0.01) -> None:
        """Ticks every `interval`; at once when a dyno passes its readiness probe or a
        drained one was stopped; and within `poll` of a change to the state database (a
        scale, a release) or of the router applying a route generation (a drain may end),
        which a cheap stat of their files tells."""
        seen = None
        last_tick = float("-inf")
        applied = routing.applied_path(self.settings)
        while not stop.is_set():
            stamp = state_stamp(self.settings.db_path, applied)
            if self.wake.is_set() or stamp != seen or time.monotonic() - last_tick >= interval:
                self.wake.clear()
                seen, last_tick = stamp, time.monotonic()
                try:
                    self.tick()
                except Exception as error:
                    print(f"agent: tick failed: {error!r}", file=sys.stderr, flush=True)
            self.wake.wait(poll)


def state_stamp(db_path: Path, *others: Path) -> tuple[tuple[int, int], ...]:
    """Size and mtime of the database and its write-ahead log (any commit changes them),
    and of `others`."""
    stamps = []
    for path in (db_path, db_path.with_name(db_path.name + "-wal"), *others):
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        stamps.append((info.st_size, info.st_mtime_ns))
    return tuple(stamps)


def _moves_dynos(action: planning.Action) -> bool:
    return isinstance(action, planning.Start | planning.Stop)


def _app_of(action: planning.Action) -> str:
    return action.dyno.app if isinstance(action, planning.Stop | planning.Forget) else action.app


def free_port(used: set[int]) -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in used:
            return port


def supervisor_environment(settings: Settings) -> dict[str, str]:
    """What each dyno supervisor needs: where the logs go and how to import paas."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PAAS_LOGS_DB": str(settings.logs_db_path),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
