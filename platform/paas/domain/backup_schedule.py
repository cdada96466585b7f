"""pg:backups' rules (pure): a daily schedule (`--at '02:00 UTC'`), when a scheduled
backup is due, backup ids (`a001` scheduled, `b002` captured by hand, one counter) and
retention (the last N of each kind).

Invariant: a schedule runs at most once per occurrence, never for an occurrence before it
was set (setting one at 10:00 for 02:00 waits for tomorrow's 02:00), and a missed
occurrence (the platform was down) runs once as soon as it is looked at.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from paas.domain.errors import InvalidParams

KEEP_SCHEDULED = 7  # a week of daily backups
KEEP_MANUAL = 10
AT = re.compile(r"(\d{1,2}):(\d{2})(?:\s+(\S+))?")


@dataclass(frozen=True)
class Schedule:
    hour: int
    minute: int
    timezone: str  # an IANA name: "UTC", "Europe/Paris"
    created_at: datetime  # aware

    @property
    def at(self) -> str:
        return f"{self.hour:02d}:{self.minute:02d} {self.timezone}"


def parse_at(text: str, created_at: datetime) -> Schedule:
    """`02:00`, `02:00 UTC` or `2:30 America/New_York` to a Schedule."""
    match = AT.fullmatch(text.strip())
    if match is None:
        raise InvalidParams(f"--at {text!r} is not a time of day: use e.g. --at '02:00 UTC'")
    hour, minute, zone = int(match[1]), int(match[2]), match[3] or "UTC"
    if hour > 23 or minute > 59:
        raise InvalidParams(f"--at {text!r}: the time must be 00:00 to 23:59")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidParams(
            f"--at {text!r}: unknown time zone {zone!r}; use UTC or a name like Europe/Paris"
        ) from None
    return Schedule(hour, minute, zone, created_at)


def latest_occurrence(schedule: Schedule, now: datetime) -> datetime:
    """The last moment at or before `now` the schedule names (in its own time zone)."""
    local = now.astimezone(ZoneInfo(schedule.timezone))
    today = local.replace(hour=schedule.hour, minute=schedule.minute, second=0, microsecond=0)
    return today if today <= local else today - timedelta(days=1)


def due(schedule: Schedule, last_scheduled: datetime | None, now: datetime) -> bool:
    """Whether a scheduled backup should run now."""
    occurrence = latest_occurrence(schedule, now)
    if occurrence <= schedule.created_at:
        return False
    return last_scheduled is None or last_scheduled < occurrence


def next_id(counter: int, scheduled: bool) -> str:
    return f"{'a' if scheduled else 'b'}{counter:03d}"


def number(backup_id: str) -> int | None:
    """b007 → 7; None for anything that is not a backup id."""
    if re.fullmatch(r"[ab]\d{3,9}", backup_id) is None:
        return None
    return int(backup_id[1:])


def expired(ids_oldest_first: Sequence[str]) -> list[str]:
    """The backups retention removes: all but the last KEEP_SCHEDULED scheduled ones and
    the last KEEP_MANUAL manual ones."""
    scheduled = [i for i in ids_oldest_first if i.startswith("a")]
    manual = [i for i in ids_oldest_first if i.startswith("b")]
    return (
        scheduled[: max(0, len(scheduled) - KEEP_SCHEDULED)]
        + manual[: max(0, len(manual) - KEEP_MANUAL)]
    )
