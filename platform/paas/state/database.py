"""SQLite connections as every paas database wants them: WAL, waiting on locks, closed
after use, and private: a database and its -wal and -shm files are 0600 (they hold config
vars, token hashes and app logs)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
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
    make_private(path)
    db = connect(path, autocommit=True)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
    finally:
        db.close()


def make_private(path: Path) -> None:
    """Creates the database file 0600 before SQLite does (which then gives its -wal and
    -shm the same mode), and tightens the files of a database made before."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            os.chmod(part, 0o600)
        except FileNotFoundError:
            continue


def stamp(*paths: Path) -> tuple[tuple[int, int], ...]:
    """Size and mtime of each database and its write-ahead log: any commit changes them,
    so a reader can poll this cheap stat instead of the database."""
    return file_stamps(p for path in paths for p in (path, path.with_name(path.name + "-wal")))


def file_stamps(paths: Iterable[Path]) -> tuple[tuple[int, int], ...]:
    """Size and mtime of each of these files that exists: what a write or a replace changes."""
    found = []
    for path in paths:
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        found.append((info.st_size, info.st_mtime_ns))
    return tuple(found)
