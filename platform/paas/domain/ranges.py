"""Heroku's Range-header pagination, as pure functions over lists of JSON objects.

A client asks `Range: FIELD [START]..[END][; max=N, order=asc|desc]` (`]START` excludes
START); the answer holds at most N items sorted by FIELD, says which in `Content-Range`, and
when more remain gives `Next-Range` (`FIELD ]LAST..; max=N…`) for the client to send back
as its next Range.
Invariant: every item of the sorted list appears on exactly one page of a walk.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from paas.domain.errors import InvalidParams

DEFAULT_MAX = 200
LARGEST_MAX = 1000
_RANGE = re.compile(
    r"\s*(?P<field>[a-z_]+)\s*(?:(?P<excl>\])?(?P<first>[^.;\s]*)\s*\.\.\s*(?P<last>[^;\s]*))?"
    r"\s*(?:;\s*(?P<options>.*))?$"
)

Item = dict[str, object]


@dataclass(frozen=True)
class Range:
    field: str
    first: str | None = None
    exclusive: bool = False
    last: str | None = None
    max: int = DEFAULT_MAX
    descending: bool = False


@dataclass(frozen=True)
class Page:
    items: list[Item]
    content_range: str
    next_range: str | None  # None: this page is the last one


def parse(header: str | None, fields: Sequence[str]) -> Range:
    """The Range a client sent; no header: the first field ascending, DEFAULT_MAX a page."""
    if not header or not header.strip():
        return Range(fields[0])
    match = _RANGE.fullmatch(header)
    if match is None or match["field"] not in fields:
        raise InvalidParams(
            f"bad Range header {header!r}: use `FIELD ..; max=N, order=asc|desc` with FIELD "
            f"one of {', '.join(fields)}"
        )
    size, descending = _options(match["options"] or "", header)
    return Range(
        match["field"], match["first"] or None, bool(match["excl"]), match["last"] or None,
        size, descending,
    )  # fmt: skip


def _options(text: str, header: str) -> tuple[int, bool]:
    size, descending = DEFAULT_MAX, False
    # Heroku's CLI separates options by commas and may end them with ";" (`max=1000;`)
    for option in filter(None, (o.strip() for o in re.split(r"[,;]", text))):
        key, _, value = option.partition("=")
        if key.strip() == "max" and value.strip().isdigit():
            size = min(max(int(value), 1), LARGEST_MAX)
        elif key.strip() == "order" and value.strip() in ("asc", "desc"):
            descending = value.strip() == "desc"
        else:
            raise InvalidParams(f"bad Range option {option!r} in {header!r}: use max=N, order=")
    return size, descending


def page(items: Sequence[Item], wanted: Range) -> Page:
    """The page of `items` that `wanted` asks for."""
    ordered = sorted(items, key=lambda item: _key(item, wanted.field), reverse=wanted.descending)
    chosen = [item for item in ordered if _inside(item, wanted)]
    shown, more = chosen[: wanted.max], len(chosen) > wanted.max
    first, last = (
        (_text(shown[0][wanted.field]), _text(shown[-1][wanted.field])) if shown else ("", "")
    )
    options = f"max={wanted.max}" + (", order=desc" if wanted.descending else "")
    next_range = f"{wanted.field} ]{last}..; {options}" if more else None
    return Page(shown, f"{wanted.field} {first}..{last}; {options}", next_range)


def _key(item: Item, field: str) -> tuple[int, int, str]:
    """Numbers sort as numbers and before text; a missing value sorts first."""
    value = item.get(field)
    if isinstance(value, bool) or value is None:
        return (0, 0, "")
    if isinstance(value, int):
        return (1, value, "")
    return (2, 0, str(value))


def _inside(item: Item, wanted: Range) -> bool:
    key = _key(item, wanted.field)
    before, after = (wanted.first, wanted.last)
    if wanted.descending:  # the range is walked from high to low
        low, high = after, before
        low_open, high_open = False, wanted.exclusive
    else:
        low, high = before, after
        low_open, high_open = wanted.exclusive, False
    if low is not None and (key < _bound(low, key) or (low_open and key == _bound(low, key))):
        return False
    return not (
        high is not None and (key > _bound(high, key) or (high_open and key == _bound(high, key)))
    )


def _bound(text: str, like: tuple[int, int, str]) -> tuple[int, int, str]:
    """A bound from the header, compared like the items' values (numbers as numbers)."""
    if like[0] == 1 and re.fullmatch(r"-?\d+", text):
        return (1, int(text), "")
    return (2, 0, text)


def _text(value: object) -> str:
    return "" if value is None else str(value)
