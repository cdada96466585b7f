"""Which release runs its release phase, and which ones a newer release overtook (pure)."""

from __future__ import annotations

from paas.domain.models import Release
from paas.reconcile.release_phase import phase_to_run


def release(version: int, status: str) -> Release:
    return Release(f"id{version}", "app", version, "", "sha256:a", {}, {}, "", status=status)


def versions(result: tuple[Release | None, list[Release]]) -> tuple[int | None, list[int]]:
    target, overtaken = result
    return (target.version if target else None, [r.version for r in overtaken])


def test_the_newest_pending_release_runs_and_older_pending_ones_are_overtaken() -> None:
    v5 = release(5, "succeeded")
    assert versions(phase_to_run(v5, [release(6, "pending"), release(7, "pending")], set())) == (
        7,
        [6],
    )


def test_a_running_phase_is_never_cut_short_by_a_newer_release() -> None:
    v5 = release(5, "succeeded")
    assert versions(phase_to_run(v5, [release(6, "pending"), release(7, "pending")], {6})) == (
        6,
        [],
    )


def test_a_deploying_release_keeps_deploying_while_the_next_phase_runs() -> None:
    v6 = release(6, "deploying")
    assert versions(phase_to_run(v6, [v6, release(7, "pending")], set())) == (7, [])


def test_a_newer_rollback_overtakes_a_pending_release_that_has_not_started() -> None:
    v3 = release(3, "deploying")  # a rollback, no release phase
    assert versions(phase_to_run(v3, [release(2, "pending"), v3], set())) == (None, [2])


def test_an_older_deploying_release_is_overtaken_once_a_newer_one_deploys() -> None:
    v7 = release(7, "deploying")
    assert versions(phase_to_run(v7, [release(6, "deploying"), v7], set())) == (None, [6])


def test_nothing_to_do_without_unsettled_releases() -> None:
    assert versions(phase_to_run(release(5, "succeeded"), [], set())) == (None, [])
