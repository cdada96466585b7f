"""The reconcile plan: desired formation + observed dynos + now → actions (pure).

Rules, per app and process type with quantity N of release R:
- names TYPE.1 … TYPE.N each need one live dyno of R at the current restart generation;
  a missing one is started, unless its crash backoff says to wait;
- a dyno above N, of a type no longer declared, or of an app that is gone is stopped;
- a dyno of an older release or generation is replaced: for web, only once its replacement
  is up (so requests always have somewhere to go); for other types, at once;
- an exit nobody asked for is a crash: counted, and retried after a backoff (first at once,
  then doubling, capped); a dyno that stays up long enough clears its crash count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

BACKOFF_CAP_SECONDS = 300.0
STABLE_SECONDS = 60.0
LIVE_STATES = ("starting", "up")


@dataclass(frozen=True)
class Slot:
    crash_count: int = 0
    next_retry_at: float | None = None


@dataclass(frozen=True)
class DesiredApp:
    app: str
    release: int | None
    process_types: dict[str, str]
    quantities: dict[str, int]
    generations: dict[str, int] = field(default_factory=dict)
    slots: dict[str, Slot] = field(default_factory=dict)
    boot_timeout: float = 60.0

    def generation(self, name: str) -> int:
        kind = name.split(".", 1)[0]
        g = self.generations
        return max(g.get("", 0), g.get(kind, 0), g.get(name, 0))

    def quantity(self, kind: str) -> int:
        return self.quantities.get(kind, 0) if kind in self.process_types else 0


@dataclass(frozen=True)
class ObservedDyno:
    id: str
    app: str
    name: str
    type: str
    release: int
    generation: int
    state: str
    started_at: float | None
    exit_status: int | None
    stop_requested: bool


@dataclass(frozen=True)
class Start:
    app: str
    name: str
    type: str


@dataclass(frozen=True)
class Stop:
    dyno: ObservedDyno
    reason: str


@dataclass(frozen=True)
class Forget:
    dyno: ObservedDyno


@dataclass(frozen=True)
class Crash:
    app: str
    name: str
    exit_status: int | None
    slot: Slot
    reason: str


@dataclass(frozen=True)
class ResetSlot:
    app: str
    name: str


Action = Start | Stop | Forget | Crash | ResetSlot


def backoff_delay(crash_count: int) -> float:
    """0 s after the first crash, then 2, 4, 8 … seconds, capped at five minutes."""
    if crash_count <= 1:
        return 0.0
    return min(2.0 ** (crash_count - 1), BACKOFF_CAP_SECONDS)


def crashed(desired: DesiredApp, name: str, status: int | None, now: float, reason: str) -> Crash:
    count = desired.slots.get(name, Slot()).crash_count + 1
    return Crash(desired.app, name, status, Slot(count, now + backoff_delay(count)), reason)


def plan(
    desired: Iterable[DesiredApp], observed: Iterable[ObservedDyno], now: float
) -> list[Action]:
    by_app: dict[str, list[ObservedDyno]] = {}
    for dyno in observed:
        by_app.setdefault(dyno.app, []).append(dyno)
    actions: list[Action] = []
    wanted = {d.app: d for d in desired}
    for app, dynos in sorted(by_app.items()):
        if app not in wanted:
            actions += [Forget(d) for d in dynos if d.state == "exited"]
            actions += [Stop(d, "app destroyed") for d in dynos if d.state in LIVE_STATES]
    for app_desired in wanted.values():
        actions += plan_app(app_desired, by_app.get(app_desired.app, []), now)
    return actions


def is_current(desired: DesiredApp, dyno: ObservedDyno) -> bool:
    return dyno.release == desired.release and dyno.generation == desired.generation(dyno.name)


def plan_app(desired: DesiredApp, dynos: list[ObservedDyno], now: float) -> list[Action]:
    if not dynos and not any(desired.quantity(kind) for kind in desired.process_types):
        return []  # nothing runs, nothing is wanted: most of a thousand apps, every tick
    actions: list[Action] = []
    slots = dict(desired.slots)
    for dyno in dynos:
        if dyno.state != "exited":
            continue
        actions.append(Forget(dyno))
        if not dyno.stop_requested and is_current(desired, dyno):
            crash = crashed(desired, dyno.name, dyno.exit_status, now, "crashed")
            slots[dyno.name] = crash.slot
            actions.append(crash)
    live = [d for d in dynos if d.state in LIVE_STATES]
    kinds = sorted(set(desired.process_types) | {d.type for d in live})
    for kind in kinds:
        actions += plan_type(desired, kind, [d for d in live if d.type == kind], slots, now)
    return actions


def plan_type(
    desired: DesiredApp,
    kind: str,
    live: list[ObservedDyno],
    slots: dict[str, Slot],
    now: float,
) -> list[Action]:
    actions: list[Action] = []
    count = desired.quantity(kind)
    current_up = {d.name for d in live if is_current(desired, d) and d.state == "up"}
    kept: set[str] = set()
    for dyno in sorted(live, key=lambda d: (d.started_at or 0.0, d.id)):
        index = _index(dyno.name)
        if index is None or index > count:
            actions.append(Stop(dyno, "scaled down"))
        elif not is_current(desired, dyno):
            if kind != "web" or dyno.name in current_up:
                actions.append(Stop(dyno, "replaced"))
        elif dyno.name in kept:
            actions.append(Stop(dyno, "duplicate"))
        elif _boot_timed_out(desired, dyno, kind, now):
            actions.append(Stop(dyno, "boot timeout"))
            actions.append(crashed(desired, dyno.name, None, now, "Error R10 (Boot timeout)"))
        else:
            kept.add(dyno.name)
            slot = slots.get(dyno.name)
            stable = dyno.state == "up" and now - (dyno.started_at or now) > STABLE_SECONDS
            if slot is not None and slot.crash_count and stable:
                actions.append(ResetSlot(desired.app, dyno.name))
    for index in range(1, count + 1):
        name = f"{kind}.{index}"
        retry_at = slots.get(name, Slot()).next_retry_at
        if name not in kept and (retry_at is None or retry_at <= now):
            actions.append(Start(desired.app, name, kind))
    return actions


def _boot_timed_out(desired: DesiredApp, dyno: ObservedDyno, kind: str, now: float) -> bool:
    return (
        kind == "web"
        and dyno.state == "starting"
        and dyno.started_at is not None
        and now - dyno.started_at > desired.boot_timeout
    )


def _index(name: str) -> int | None:
    _, _, number = name.partition(".")
    return int(number) if number.isdigit() else None
