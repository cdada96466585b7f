"""Data-driven tests of the pure reconcile plan."""

from paas.domain import dyno_plan as plan
from paas.domain.dyno_plan import DesiredApp, ObservedDyno, Slot

NOW = 1000.0


def dyno(
    name: str,
    state: str = "up",
    release: int = 1,
    *,
    started_at: float = NOW - 10,
    exit_status: int | None = None,
    stop_requested: bool = False,
) -> ObservedDyno:
    return ObservedDyno(
        id=f"a.{name}.v{release}.{state}",
        app="a",
        name=name,
        type=name.split(".")[0],
        release=release,
        generation=0,
        state=state,
        started_at=started_at,
        exit_status=exit_status,
        stop_requested=stop_requested,
    )


def desired(
    web: int = 1,
    release: int = 1,
    *,
    quantities: dict[str, int] | None = None,
    generations: dict[str, int] | None = None,
    slots: dict[str, Slot] | None = None,
) -> DesiredApp:
    return DesiredApp(
        app="a",
        release=release,
        process_types={"web": "serve", "worker": "work"},
        quantities={"web": web, "worker": 0} if quantities is None else quantities,
        generations={} if generations is None else generations,
        slots={} if slots is None else slots,
    )


def kinds(actions: list[plan.Action]) -> list[tuple[str, str]]:
    named = []
    for action in actions:
        if isinstance(action, plan.Start):
            named.append(("start", action.name))
        elif isinstance(action, plan.Stop | plan.Forget):
            named.append((type(action).__name__.lower(), action.dyno.name))
        elif isinstance(action, plan.Crash):
            named.append(("crash", action.name))
        else:
            named.append(("reset", action.name))
    return named


def test_starts_missing_dynos() -> None:
    actions = plan.plan([desired(web=3)], [dyno("web.1")], NOW)
    assert kinds(actions) == [("start", "web.2"), ("start", "web.3")]


def test_scale_down_stops_highest_numbers() -> None:
    actions = plan.plan([desired(web=1)], [dyno("web.1"), dyno("web.2")], NOW)
    assert kinds(actions) == [("stop", "web.2")]


def test_new_release_starts_first_and_keeps_old_web_until_new_is_up() -> None:
    old = dyno("web.1", release=1)
    assert kinds(plan.plan([desired(release=2)], [old], NOW)) == [("start", "web.1")]
    starting = dyno("web.1", state="starting", release=2)
    assert kinds(plan.plan([desired(release=2)], [old, starting], NOW)) == []
    up = dyno("web.1", release=2)
    assert kinds(plan.plan([desired(release=2)], [old, up], NOW)) == [("stop", "web.1")]


def test_old_worker_is_replaced_at_once() -> None:
    old = dyno("worker.1", release=1)
    want = desired(release=2, quantities={"web": 0, "worker": 1})
    assert kinds(plan.plan([want], [old], NOW)) == [("stop", "worker.1"), ("start", "worker.1")]


def test_restart_generation_replaces_dynos() -> None:
    want = desired(generations={"web.1": 1})
    assert kinds(plan.plan([want], [dyno("web.1")], NOW)) == [("start", "web.1")]


def test_crash_is_counted_and_first_restart_is_immediate() -> None:
    dead = dyno("web.1", state="exited", exit_status=1)
    actions = plan.plan([desired()], [dead], NOW)
    assert kinds(actions) == [("forget", "web.1"), ("crash", "web.1"), ("start", "web.1")]
    crash = actions[1]
    assert isinstance(crash, plan.Crash)
    assert crash.slot == Slot(1, NOW)


def test_repeated_crash_waits_for_backoff() -> None:
    dead = dyno("web.1", state="exited", exit_status=1)
    want = desired(slots={"web.1": Slot(3, NOW - 100)})
    actions = plan.plan([want], [dead], NOW)
    assert kinds(actions) == [("forget", "web.1"), ("crash", "web.1")]
    crash = actions[1]
    assert isinstance(crash, plan.Crash)
    assert crash.slot == Slot(4, NOW + 8.0)


def test_requested_stop_is_not_a_crash() -> None:
    stopped = dyno("web.2", state="exited", exit_status=0, stop_requested=True)
    assert kinds(plan.plan([desired()], [dyno("web.1"), stopped], NOW)) == [("forget", "web.2")]


def test_dynos_of_a_destroyed_app_are_stopped() -> None:
    assert kinds(plan.plan([], [dyno("web.1")], NOW)) == [("stop", "web.1")]


def test_web_boot_timeout_counts_as_crash() -> None:
    slow = dyno("web.1", state="starting", started_at=NOW - 61)
    actions = kinds(plan.plan([desired()], [slow], NOW))
    assert actions[:2] == [("stop", "web.1"), ("crash", "web.1")]


def test_stable_dyno_clears_its_crash_count() -> None:
    up = dyno("web.1", started_at=NOW - 120)
    want = desired(slots={"web.1": Slot(2, NOW - 200)})
    assert kinds(plan.plan([want], [up], NOW)) == [("reset", "web.1")]


def test_backoff_is_capped() -> None:
    assert plan.backoff_delay(1) == 0
    assert plan.backoff_delay(2) == 2
    assert plan.backoff_delay(50) == plan.BACKOFF_CAP_SECONDS
