"""The rollout verdict (pure): when a deploying release succeeded or failed."""

from __future__ import annotations

import pytest

from paas.domain.dyno_plan import Crash, ObservedDyno, Slot
from paas.domain.rollout import Deploying, judge

NOW = 1000.0
V2 = Deploying(app="a", version=2, since=NOW - 5, web_quantity=2, boot_timeout=60)


def web(name: str, release: int, state: str = "up", stopping: bool = False) -> ObservedDyno:
    return ObservedDyno(
        f"{name}-{release}", "a", name, "web", release, 0, state, NOW - 5, None, stopping
    )


def crash(name: str, status: int | None = 3) -> Crash:
    return Crash("a", name, status, Slot(1, NOW), "crashed")


@pytest.mark.parametrize(
    ("dynos", "expected"),
    [
        ([web("web.1", 2), web("web.2", 2)], "succeeded"),
        ([web("web.1", 2), web("web.2", 2, "starting")], None),
        ([web("web.1", 2), web("web.2", 2), web("web.1", 1)], None),  # old one still routed
        ([web("web.1", 2), web("web.2", 2), web("web.1", 1, stopping=True)], "succeeded"),
        ([web("web.1", 2), web("web.2", 1)], None),
    ],
)
def test_succeeds_once_every_web_dyno_is_up_and_the_old_ones_left(
    dynos: list[ObservedDyno], expected: str | None
) -> None:
    verdict = judge(V2, dynos, [], NOW)
    assert (verdict.status if verdict else None) == expected


def test_no_web_dyno_to_wait_for_succeeds_at_once() -> None:
    verdict = judge(Deploying("a", 2, NOW, 0, 60), [web("web.1", 1, stopping=True)], [], NOW)
    assert verdict is not None and verdict.status == "succeeded"


def test_a_web_crash_fails_the_release_naming_the_dyno() -> None:
    verdict = judge(V2, [web("web.1", 1)], [crash("web.2")], NOW)
    assert verdict is not None and verdict.status == "failed"
    assert verdict.detail == "web.2 exited (3) before the rollout ended"


def test_a_crash_of_another_type_does_not_fail_it() -> None:
    assert judge(V2, [web("web.1", 1)], [crash("worker.1")], NOW) is None


def test_boot_timeout_fails_it_naming_the_dynos_still_waiting() -> None:
    late = Deploying("a", 2, NOW - 61, 2, 60)
    verdict = judge(late, [web("web.1", 2), web("web.2", 2, "starting")], [], NOW)
    assert verdict is not None and verdict.status == "failed"
    assert verdict.detail.startswith("web.2 did not pass the health check within")
