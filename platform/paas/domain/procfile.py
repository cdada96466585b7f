"""Procfile parsing: `TYPE: COMMAND` lines into an ordered mapping (pure).

Blank lines and `#` comments are allowed; any other malformed line or a duplicate type
raises InvalidParams naming the line, so a bad Procfile fails the build, never a dyno.

Invariant: parsing is linear in the text (string splits, no backtracking regex over a
whole line) and bounded: at most MAX_BYTES of text, MAX_LINES lines and MAX_TYPES types.
Every process type name, from a Procfile or a buildpack's bin/release, passes `type_name`.
"""

from __future__ import annotations

from collections.abc import Mapping

from paas.domain import validation
from paas.domain.errors import InvalidParams

# The release phase: runs once per release, before rollout; never part of the formation.
RELEASE_PHASE = "release"
PHASE_DYNO = f"{RELEASE_PHASE}.1"  # the one-off dyno a release phase runs in

MAX_BYTES = 128 * 1024
MAX_LINES = 2000
MAX_TYPES = 100
SHOWN = 60  # characters of a bad line quoted in an error


def formation_types(process_types: Mapping[str, str]) -> dict[str, str]:
    """The process types dynos run: the Procfile without its release phase."""
    return {k: v for k, v in process_types.items() if k != RELEASE_PHASE}


def type_name(name: str) -> bool:
    """Whether `name` may name a process type (it becomes part of dyno ids and paths)."""
    # The length check first keeps the validator's regex on short strings only.
    if not 0 < len(name) <= 63:
        return False
    try:
        validation.process_type(name)
    except InvalidParams:
        return False
    return name.isascii() and "\n" not in name


def split_line(line: str) -> tuple[str, str] | None:
    """`TYPE: COMMAND` → (TYPE, COMMAND), or None when the line is not of that form."""
    name, colon, rest = line.partition(":")
    name = name.rstrip(" \t")
    command = rest.lstrip(" \t")
    if not colon or not type_name(name) or not command or command[0].isspace():
        return None
    return name, command.rstrip()


def parse(text: str) -> dict[str, str]:
    if len(text) > MAX_BYTES:
        raise InvalidParams(f"Procfile is larger than {MAX_BYTES // 1024} KiB")
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        raise InvalidParams(f"Procfile has {len(lines)} lines; at most {MAX_LINES}")
    processes: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        entry = split_line(line)
        if entry is None:
            raise InvalidParams(
                f"Procfile line {number} is not `TYPE: COMMAND`: {shorten(line.strip())!r}"
            )
        name, command = entry
        if name in processes:
            raise InvalidParams(f"Procfile line {number} repeats process type {name!r}")
        processes[name] = command
    if len(processes) > MAX_TYPES:
        raise InvalidParams(
            f"Procfile declares {len(processes)} process types; at most {MAX_TYPES}"
        )
    return processes


def shorten(text: str) -> str:
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."
