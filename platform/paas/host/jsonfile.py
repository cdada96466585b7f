"""Small JSON files on disk: read tolerantly (a missing or torn file is None), written
atomically and private (0600), since specs hold config vars.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def read_json(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: object) -> None:
    """Atomic and private (0600): specs hold config vars, which are secrets."""
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(data))
    os.replace(tmp, path)
