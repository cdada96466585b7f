"""pg:backups of one postgresql add-on: capture (pg_dump -Fc), list, restore (pg_restore
--clean --if-exists into the add-on's database), the dump file for download, and the
daily schedule the supervisor runs (rules in paas.domain.backup_schedule).

Files: PAAS_HOME/addons/postgresql/backups/ADDON/ (0700, root's) holds ID.dump and ID.json
(created_at, size, status, scheduled), counter.json (the last number given) and
schedule.json; every file is 0600.

Invariant: a dump is written to a temporary name and renamed once pg_dump succeeded, so a
listed Completed backup is always a whole archive; a failed capture is listed as Failed,
with no dump.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from paas.addons import hosting
from paas.addons.postgresql import Cluster, PostgreSQL
from paas.domain import backup_schedule
from paas.domain.backup_schedule import Schedule
from paas.domain.errors import CommandFailed, InvalidParams, NotFound
from paas.domain.settings import Settings
from paas.host import procs

DUMP_TIMEOUT = 3600.0
COMPLETED = "Completed"
FAILED = "Failed"


@dataclass(frozen=True)
class Backup:
    id: str
    created_at: str  # ISO 8601, UTC
    size: int
    status: str
    scheduled: bool
    detail: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "size": self.size,
            "status": self.status,
            "scheduled": self.scheduled,
            "detail": self.detail,
        }


class Backups:
    def __init__(self, settings: Settings, addon_id: str) -> None:
        self.settings = settings
        self.addon_id = addon_id
        self.directory = Cluster(settings).backups_dir(addon_id)

    def _dir(self) -> Path:
        self.directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory.mkdir(mode=0o700, exist_ok=True)
        return self.directory

    def list(self) -> list[Backup]:
        """Oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for meta in self.directory.glob("*.json"):
            if backup_schedule.number(meta.stem) is None:
                continue
            data = hosting.read_record(meta)
            if data is not None:
                found.append(_backup(meta.stem, data))
        return sorted(found, key=lambda b: backup_schedule.number(b.id) or 0)

    def get(self, backup_id: str | None) -> Backup:
        """The backup named, or the latest completed one."""
        done = [b for b in self.list() if b.status == COMPLETED]
        if backup_id is None:
            if not done:
                raise NotFound(f"add-on {self.addon_id} has no backup: run pg:backups:capture")
            return done[-1]
        for backup in self.list():
            if backup.id == backup_id:
                if backup.status != COMPLETED:
                    raise InvalidParams(f"backup {backup_id} failed: it cannot be used")
                return backup
        raise NotFound(f"no backup {backup_id!r} of add-on {self.addon_id}: see pg:backups")

    def dump_path(self, backup: Backup) -> Path:
        return self.directory / f"{backup.id}.dump"

    def capture(self, postgresql: PostgreSQL, scheduled: bool, now: datetime) -> Backup:
        record = postgresql.record(self.addon_id)
        postgresql.cluster.ensure_running()
        backup_id = backup_schedule.next_id(self._next_number(), scheduled)
        target = self._dir() / f"{backup_id}.dump"
        partial = target.with_name(f".{backup_id}.partial")
        argv = [
            *postgresql.cluster.admin_argv(
                "pg_dump", hosting.text(record, "database"), hosting.text(record, "role")
            ),
            "--format", "custom", "--file", str(partial),
        ]  # fmt: skip
        created = now.astimezone(UTC).isoformat(timespec="seconds")
        try:
            procs.run(argv, DUMP_TIMEOUT, env=procs.host_env())
        except CommandFailed as error:
            partial.unlink(missing_ok=True)
            backup = Backup(backup_id, created, 0, FAILED, scheduled, error.message)
        else:
            partial.chmod(0o600)
            os.replace(partial, target)
            backup = Backup(backup_id, created, target.stat().st_size, COMPLETED, scheduled)
        hosting.write_record(self.directory / f"{backup_id}.json", backup.as_json())
        self._retain()
        return backup

    def record_failure(self, scheduled: bool, now: datetime, detail: str) -> Backup:
        """A capture that failed before it could record itself, listed as Failed (so a
        scheduled one waits for its next day instead of being tried again at once)."""
        backup_id = backup_schedule.next_id(self._next_number(), scheduled)
        created = now.astimezone(UTC).isoformat(timespec="seconds")
        backup = Backup(backup_id, created, 0, FAILED, scheduled, detail)
        hosting.write_record(self._dir() / f"{backup_id}.json", backup.as_json())
        self._retain()
        return backup

    def restore(self, postgresql: PostgreSQL, backup_id: str | None) -> Backup:
        """Replaces the add-on database's objects with the backup's; the app's sessions on
        it are ended first (they would hold locks the restore waits for)."""
        backup = self.get(backup_id)
        record = postgresql.record(self.addon_id)
        database = hosting.text(record, "database")
        postgresql.cluster.ensure_running()
        postgresql.cluster.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid <> pg_backend_pid();\n"
        )
        argv = [
            *postgresql.cluster.admin_argv("pg_restore", database, hosting.text(record, "role")),
            # As the add-on's role, keeping its ownership and grants: a dump's ALTER OWNER
            # or GRANT may name any role of the cluster.
            "--no-owner", "--no-privileges",
            "--clean", "--if-exists", "--single-transaction", "--exit-on-error",
            str(self.dump_path(backup)),
        ]  # fmt: skip
        procs.run(argv, DUMP_TIMEOUT, env=procs.host_env())
        return backup

    def _next_number(self) -> int:
        counter = self._dir() / "counter.json"
        kept = (hosting.read_record(counter) or {}).get("last")
        listed = max((backup_schedule.number(b.id) or 0 for b in self.list()), default=0)
        last = max(kept if isinstance(kept, int) else 0, listed)
        hosting.write_record(counter, {"last": last + 1})
        return last + 1

    def _retain(self) -> None:
        for backup_id in backup_schedule.expired([b.id for b in self.list()]):
            (self.directory / f"{backup_id}.dump").unlink(missing_ok=True)
            (self.directory / f"{backup_id}.json").unlink(missing_ok=True)

    # -- the daily schedule -----------------------------------------------------------

    def schedule(self) -> Schedule | None:
        data = hosting.read_record(self.directory / "schedule.json")
        if data is None:
            return None
        try:
            return backup_schedule.parse_at(
                str(data["at"]), datetime.fromisoformat(str(data["created_at"]))
            )
        except (KeyError, ValueError, InvalidParams):
            return None

    def set_schedule(self, at: str, now: datetime) -> Schedule:
        schedule = backup_schedule.parse_at(at, now.astimezone(UTC))
        hosting.write_record(
            self._dir() / "schedule.json",
            {"at": schedule.at, "created_at": schedule.created_at.isoformat()},
        )
        return schedule

    def unschedule(self) -> None:
        (self.directory / "schedule.json").unlink(missing_ok=True)

    def due(self, now: datetime) -> bool:
        schedule = self.schedule()
        if schedule is None:
            return False
        last = [b for b in self.list() if b.scheduled]
        moment = datetime.fromisoformat(last[-1].created_at) if last else None
        return backup_schedule.due(schedule, moment, now)


def _backup(backup_id: str, data: dict[str, object]) -> Backup:
    size = data.get("size")
    return Backup(
        backup_id,
        str(data.get("created_at", "")),
        size if isinstance(size, int) else 0,
        str(data.get("status", FAILED)),
        bool(data.get("scheduled")),
        str(data.get("detail", "")),
    )
