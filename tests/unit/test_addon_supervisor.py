"""The add-on servers' supervisor loop under faults it did not expect: a PostgreSQL side
that raises (a hand-written fault, not a real cluster) against real backup records in a
PAAS_HOME of the test's own."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from paas.addons.backups import Backups
from paas.addons.supervisor import Supervisor
from paas.domain.settings import Settings


class BrokenCluster:
    def addon_ids(self) -> list[str]:
        return ["pg-x"]

    def pid(self) -> int | None:
        raise RuntimeError("the pidfile is unreadable")

    def ensure_running(self) -> None:
        raise RuntimeError("cannot start")


class BrokenPostgreSQL:
    cluster = BrokenCluster()

    def __init__(self) -> None:
        self.release = threading.Event()
        self.release.set()

    def record(self, addon_id: str) -> dict[str, object]:
        assert self.release.wait(30)  # a pg_dump that takes its time
        raise RuntimeError("the record is unreadable")


def test_a_failing_unit_is_logged_and_a_failed_schedule_waits_a_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(home=tmp_path)
    now = datetime.now(UTC)
    Backups(settings, "pg-x").set_schedule(
        f"{now - timedelta(minutes=1):%H:%M} UTC", now - timedelta(days=1)
    )
    said: list[str] = []
    supervisor = Supervisor(settings, monotonic=lambda: 0.0, now=lambda: now, say=said.append)
    supervisor.postgresql = BrokenPostgreSQL()  # type: ignore[assignment]
    supervisor.step()  # raises nothing
    supervisor.finish_captures()
    supervisor.step()
    supervisor.finish_captures()
    assert "looking after PostgreSQL failed" in capsys.readouterr().err
    listed = Backups(settings, "pg-x").list()
    assert [(b.status, b.scheduled) for b in listed] == [("Failed", True)]  # tried once
    assert "the record is unreadable" in listed[0].detail
    assert sum("scheduled backup of pg-x failed" in line for line in said) == 1


def test_a_long_scheduled_capture_does_not_hold_up_the_loop(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    now = datetime.now(UTC)
    Backups(settings, "pg-x").set_schedule(
        f"{now - timedelta(minutes=1):%H:%M} UTC", now - timedelta(days=1)
    )
    supervisor = Supervisor(settings, monotonic=lambda: 0.0, now=lambda: now, say=print)
    slow = BrokenPostgreSQL()
    slow.release.clear()
    supervisor.postgresql = slow  # type: ignore[assignment]
    try:
        started = time.monotonic()
        supervisor.step()
        supervisor.step()  # the capture under way is not started twice
        assert time.monotonic() - started < 5
        assert len(supervisor.captures) == 1 and supervisor.captures["pg-x"].is_alive()
    finally:
        slow.release.set()
        supervisor.finish_captures()
    assert [b.status for b in Backups(settings, "pg-x").list()] == ["Failed"]
