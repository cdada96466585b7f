"""Dyno sizes: Heroku's names (standard-1x…) or `<N>M`, and the memory each one gets."""

from __future__ import annotations

from paas.domain.errors import InvalidParams

SIZES_MB = {
    "standard-1x": 512,
    "standard-2x": 1024,
    "performance-m": 2560,
    "performance-l": 14336,
}
DEFAULT_SIZE = "standard-1x"


def memory_mb(size: str) -> int:
    """A named size (standard-1x…) or `<N>M`."""
    if size in SIZES_MB:
        return SIZES_MB[size]
    if size.endswith("M") and size[:-1].isdigit() and 64 <= int(size[:-1]) <= 65536:
        return int(size[:-1])
    raise InvalidParams(
        f"invalid dyno size {size!r}: use one of {', '.join(SIZES_MB)} or <N>M (64-65536)"
    )


# Heroku's older names for the standard sizes, still accepted by its API.
_ALIASES = {"1x": "standard-1x", "2x": "standard-2x"}


def canonical(size: object) -> str:
    """A size as paas stores it, from Heroku's spelling in any case (Standard-2X, 2X,
    performance-m) or `<N>M`; an unknown one is InvalidParams naming the choices."""
    if not isinstance(size, str):
        raise InvalidParams(f"invalid dyno size {size!r}: {_choices()}")
    lowered = size.strip().lower()
    named = _ALIASES.get(lowered, lowered)
    if named in SIZES_MB:
        return named
    custom = size.strip().upper()
    if custom.endswith("M") and custom[:-1].isdigit() and 64 <= int(custom[:-1]) <= 65536:
        return custom
    raise InvalidParams(f"invalid dyno size {size!r}: {_choices()}")


def display(size: str) -> str:
    """A stored size as Heroku names it (standard-2x → Standard-2X); `<N>M` as it is."""
    if size not in SIZES_MB:
        return size
    family, _, grade = size.partition("-")
    return f"{family.capitalize()}-{grade.upper()}"


def _choices() -> str:
    names = ", ".join(display(name) for name in SIZES_MB)
    return f"use one of {names} (in any case) or <N>M (64-65536)"
