"""Atomic file replacement.

Invariant: a reader (HAProxy re-reading its config on reload, the control plane reading
applied.json) sees either the whole old file or the whole new one, never a torn write:
the data goes to a temporary file in the same directory, is flushed, then os.replace()d.
"""

import os
from pathlib import Path


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` so readers never see a partial file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_text(path: Path) -> str | None:
    """The file's text, or None when it does not exist."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes whenever ``path`` is replaced or written: inode, size, mtime."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)
