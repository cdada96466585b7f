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
