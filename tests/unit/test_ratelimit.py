"""The failed-authentication limit's counting, and how a generated token is announced."""

from __future__ import annotations

from pathlib import Path

from paas.server import generated_token_notice
from paas.state import ratelimit

POLICY = ratelimit.Policy(limit=3, window_seconds=60, block_seconds=30)


def failures(times: list[float]) -> ratelimit.Failures:
    record = None
    for now in times:
        record = ratelimit.after_failure(record, now, POLICY)
    assert record is not None
    return record


def test_the_failure_past_the_limit_starts_a_block() -> None:
    assert failures([0, 1, 2]).refused_for(2) == 0
    assert failures([0, 1, 2, 3]).refused_for(3) == 30


def test_a_block_is_not_extended_by_the_failures_it_refuses() -> None:
    assert failures([0, 1, 2, 3, 20, 25]).refused_for(25) == 8


def test_a_new_window_starts_the_count_again() -> None:
    assert failures([0, 1, 2, 61, 62, 63]).refused_for(63) == 0
    assert failures([0, 1, 2, 3, 40]).count == 1  # block over, window over


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert ratelimit.retry_after(0.2) == "1"
    assert ratelimit.retry_after(29.1) == "30"


def test_a_generated_token_is_shown_on_a_terminal_only() -> None:
    path = Path("/var/lib/paas/admin-token")
    assert "tok3n" in generated_token_notice("tok3n", path, terminal=True)
    quiet = generated_token_notice("tok3n", path, terminal=False)
    assert "tok3n" not in quiet and str(path) in quiet
