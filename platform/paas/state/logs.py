"""Per-app logs, logplex style, in their own SQLite database (WAL).

Every writer (dyno supervisors, agent, API, builds) appends whole lines with timestamp,
source (`app` for dyno output, `paas` for platform events) and process (`web.1`, `api`,
`router`). The log is bounded per app, survives deploys and platform restarts, and is read
by cursor so `paas logs --tail` can follow it.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from paas.state import database

MAX_LINES_PER_APP = 20_000
MAX_LINE_BYTES = 10_000
PRUNE_CHANCE = 0.02

SCHEMA = """
CREATE TABLE IF NOT EXISTS lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app TEXT NOT NULL,
    ts TEXT NOT NULL,
    source TEXT NOT NULL,
    process TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lines_by_app ON lines (app, id);
"""


@dataclass(frozen=True)
class LogLine:
    id: int
    ts: str
    source: str
    process: str
    message: str

    def format(self) -> str:
        return f"{self.ts} {self.source}[{self.process}]: {self.message}"


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def split_long(message: str) -> list[str]:
    """Splits a line into pieces of at most MAX_LINE_BYTES bytes, as logplex does."""
    data = message.encode(errors="replace")
    if len(data) <= MAX_LINE_BYTES:
        return [message]
    return [
        data[i : i + MAX_LINE_BYTES].decode(errors="replace")
        for i in range(0, len(data), MAX_LINE_BYTES)
    ]


class LogStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        database.create(path, SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return database.connect(self.path)

    def append(self, app: str, source: str, process: str, messages: list[str]) -> None:
        ts = timestamp()
        rows = [(app, ts, source, process, piece) for m in messages for piece in split_long(m)]
        if not rows:
            return
        db = self._connect()
        try:
            with db:
                db.executemany(
                    "INSERT INTO lines (app, ts, source, process, message) VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                if random.random() < PRUNE_CHANCE:
                    self._prune(db, app)
        finally:
            db.close()

    def event(self, app: str, process: str, message: str) -> None:
        """A platform event: `paas[web.1]: State changed from starting to up`."""
        self.append(app, "paas", process, [message])

    @staticmethod
    def _prune(db: sqlite3.Connection, app: str) -> None:
        db.execute(
            "DELETE FROM lines WHERE app = ? AND id <= (SELECT id FROM lines WHERE app = ? "
            "ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (app, app, MAX_LINES_PER_APP),
        )

    def read(
        self,
        app: str,
        num: int = 100,
        after: int | None = None,
        process: str | None = None,
        source: str | None = None,
    ) -> tuple[list[LogLine], int]:
        """The last `num` lines (or every line after `after`), filtered; plus a cursor."""
        where = ["app = ?"]
        args: list[object] = [app]
        if process and "." in process:
            where.append("process = ?")
            args.append(process)
        elif process:  # a process type: each of its dynos (web.1, web.2…), as logplex does
            where.append("(process = ? OR substr(process, 1, ?) = ?)")
            args += [process, len(process) + 1, f"{process}."]
        if source:
            where.append("source = ?")
            args.append(source)
        if after is not None:
            where.append("id > ?")
            args.append(after)
        sql = f"SELECT id, ts, source, process, message FROM lines WHERE {' AND '.join(where)}"
        db = self._connect()
        try:
            if after is None:
                rows = db.execute(f"{sql} ORDER BY id DESC LIMIT ?", [*args, num]).fetchall()
                rows.reverse()
                last = db.execute("SELECT MAX(id) FROM lines WHERE app = ?", (app,)).fetchone()
                cursor = int(last[0] or 0)
            else:
                rows = db.execute(f"{sql} ORDER BY id LIMIT 1000", args).fetchall()
                cursor = rows[-1][0] if rows else after
        finally:
            db.close()
        return [LogLine(*r) for r in rows], cursor

    def rename_app(self, old: str, new: str) -> None:
        """The app's lines are now under its new name (`apps:rename`)."""
        db = self._connect()
        try:
            with db:
                db.execute("UPDATE lines SET app = ? WHERE app = ?", (new, old))
        finally:
            db.close()

    def delete_app(self, app: str) -> None:
        db = self._connect()
        try:
            with db:
                db.execute("DELETE FROM lines WHERE app = ?", (app,))
        finally:
            db.close()
