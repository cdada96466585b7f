"""SQLite connections as every paas database wants them: WAL, waiting on locks, closed
after use."""

from __future__ import annotations

import sqlite3
from pathlib import Path

BUSY_TIMEOUT_SECONDS = 30


def connect(path: Path, autocommit: bool = False) -> sqlite3.Connection:
    """autocommit=True leaves transactions to explicit BEGIN/COMMIT statements."""
    db = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None if autocommit else "DEFERRED"
    )
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
    return db


def create(path: Path, schema: str) -> None:
    """Creates the file, its directory and its tables if missing, in WAL mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = connect(path, autocommit=True)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
    finally:
        db.close()
