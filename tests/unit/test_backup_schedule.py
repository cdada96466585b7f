"""pg:backups' pure rules with a given clock: the daily schedule, ids and retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from paas.domain import backup_schedule
from paas.domain.backup_schedule import due, expired, latest_occurrence, next_id, parse_at
from paas.domain.errors import InvalidParams

SET_AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


def test_parse_at_reads_heroku_style_times() -> None:
    assert parse_at("02:00 UTC", SET_AT).at == "02:00 UTC"
    assert parse_at("2:30", SET_AT).at == "02:30 UTC"
    assert parse_at(" 23:59 Europe/Paris ", SET_AT).at == "23:59 Europe/Paris"


@pytest.mark.parametrize("text", ["", "2am", "24:00", "12:60", "02:00 Mars/Olympus", "0200"])
def test_parse_at_refuses_what_is_not_a_time_of_day(text: str) -> None:
    with pytest.raises(InvalidParams, match="--at"):
        parse_at(text, SET_AT)


def test_a_schedule_set_after_its_hour_waits_for_the_next_day() -> None:
    schedule = parse_at("02:00 UTC", SET_AT)
    assert not due(schedule, None, at(1, 10, 1))
    assert not due(schedule, None, at(2, 1, 59))
    assert due(schedule, None, at(2, 2, 0))


def test_it_runs_once_per_occurrence() -> None:
    schedule = parse_at("02:00 UTC", SET_AT)
    ran = at(
        2,
        2,
        0,
    ) + timedelta(seconds=3)
    assert not due(schedule, ran, at(2, 2, 1))
    assert not due(schedule, ran, at(3, 1, 59))
    assert due(schedule, ran, at(3, 2, 0))


def test_a_missed_occurrence_runs_once_when_looked_at() -> None:
    schedule = parse_at("02:00 UTC", SET_AT)
    ran = at(2, 2, 0)
    # Down from the 3rd to the 5th at noon: one backup then, not three.
    assert due(schedule, ran, at(5, 12, 0))
    assert not due(schedule, at(5, 12, 0), at(5, 12, 1))


def test_the_schedule_keeps_its_own_time_zone() -> None:
    schedule = parse_at("02:00 America/New_York", SET_AT)
    # 02:00 in New York in December is 07:00 UTC.
    assert latest_occurrence(schedule, at(2, 7, 0)) == at(2, 7, 0)
    assert not due(schedule, None, at(2, 6, 59))
    assert due(schedule, None, at(2, 7, 0))


def test_ids_count_up_with_the_kind_as_prefix() -> None:
    assert next_id(1, scheduled=False) == "b001"
    assert next_id(12, scheduled=True) == "a012"
    assert backup_schedule.number("b007") == 7
    assert backup_schedule.number("counter") is None
    assert backup_schedule.number("b1") is None


def test_retention_keeps_the_last_of_each_kind() -> None:
    scheduled = [next_id(n, scheduled=True) for n in range(1, 10)]  # a001..a009
    manual = [next_id(n, scheduled=False) for n in range(10, 22)]  # b010..b021
    assert expired(scheduled + manual) == ["a001", "a002", "b010", "b011"]
    assert expired(scheduled[:7]) == []
