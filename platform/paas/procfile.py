"""Procfile parsing: `TYPE: COMMAND` lines into an ordered mapping (pure).

Blank lines and `#` comments are allowed; any other malformed line or a duplicate type
raises InvalidParams naming the line, so a bad Procfile fails the build, never a dyno.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from paas.errors import InvalidParams

# The release phase: runs once per release, before rollout; never part of the formation.
RELEASE_PHASE = "release"

LINE = re.compile(r"^([A-Za-z0-9_-]{1,63})[ \t]*:[ \t]*(\S.*?)\s*$")


def formation_types(process_types: Mapping[str, str]) -> dict[str, str]:
    """The process types dynos run: the Procfile without its release phase."""
    return {k: v for k, v in process_types.items() if k != RELEASE_PHASE}


def parse(text: str) -> dict[str, str]:
    processes: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = LINE.match(line)
        if not match:
            raise InvalidParams(f"Procfile line {number} is not `TYPE: COMMAND`: {line.strip()!r}")
        name, command = match.groups()
        if name in processes:
            raise InvalidParams(f"Procfile line {number} repeats process type {name!r}")
        processes[name] = command
    return processes
