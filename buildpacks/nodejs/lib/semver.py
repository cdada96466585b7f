"""Semver ranges as npm writes them in `engines.node`, and choosing a version for one.

Pure: values in, values out. Supports what package.json files use: `^`, `~`, comparators
(`>=`, `>`, `<`, `<=`, `=`), x-ranges (`20`, `20.x`, `*`), hyphen ranges (`20 - 22`),
space-separated intersections and `||` unions. Versions are X.Y.Z of integers; a
pre-release tag in a range is dropped (the sources hold final releases only).

Invariant: a range is desugared into comparator sets over (major, minor, patch) tuples, so
matching is plain tuple comparison; anything unparsable raises RangeError.
"""

from __future__ import annotations

import re

Version = tuple[int, int, int]
Comparator = tuple[str, Version]

_PARTIAL = re.compile(
    r"^v?(?P<major>\d+|[xX*])(?:\.(?P<minor>\d+|[xX*]))?(?:\.(?P<patch>\d+|[xX*]))?"
    r"(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
)
_SIMPLE = re.compile(r"^(?P<op><=|>=|<|>|=|~>|~|\^)?(?P<rest>.*)$")
_FINAL = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
INFINITY = 1 << 62


class RangeError(ValueError):
    """A range that is not valid npm semver."""


def parse_version(text: str) -> Version | None:
    """X.Y.Z (optionally with a leading v) as a tuple; None for anything else."""
    match = _FINAL.match(text.strip())
    if not match:
        return None
    return (int(match[1]), int(match[2]), int(match[3]))


def _partial(text: str) -> tuple[int | None, int | None, int | None]:
    match = _PARTIAL.match(text)
    if not match:
        raise RangeError(f"not a version: {text!r}")
    parts: list[int | None] = []
    wild = False
    for key in ("major", "minor", "patch"):
        value = match[key]
        wild = wild or value is None or value in "xX*"
        parts.append(None if wild else int(value))
    return parts[0], parts[1], parts[2]


def _floor(major: int | None, minor: int | None, patch: int | None) -> Version:
    return (major or 0, minor or 0, patch or 0)


def _next_up(major: int | None, minor: int | None) -> Version:
    """The first version above the partial's wildcard part (`1` → 2.0.0, `1.2` → 1.3.0)."""
    if major is None:
        return (INFINITY, 0, 0)
    if minor is None:
        return (major + 1, 0, 0)
    return (major, minor + 1, 0)


def _simple(token: str) -> list[Comparator]:
    match = _SIMPLE.match(token)
    assert match is not None  # every string matches: the operator is optional
    op, rest = match["op"] or "", match["rest"]
    major, minor, patch = _partial(rest)
    low = _floor(major, minor, patch)
    if op in ("", "="):
        if patch is not None:
            return [("=", low)]
        return [(">=", low), ("<", _next_up(major, minor))]
    if op in ("~", "~>"):
        if major is None:
            return [(">=", (0, 0, 0))]
        return [(">=", low), ("<", _next_up(major, minor))]
    if op == "^":
        return [(">=", low), ("<", _caret_top(major, minor, patch))]
    if op == ">":
        if patch is not None:
            return [(">", low)]
        return [(">=", _next_up(major, minor))]
    if op == ">=":
        return [(">=", low)]
    if op == "<":
        return [("<", low)]
    # "<=": with a wildcard, everything up to the end of that wildcard
    if patch is not None:
        return [("<=", low)]
    return [("<", _next_up(major, minor))]


def _caret_top(major: int | None, minor: int | None, patch: int | None) -> Version:
    """The exclusive top of ^: bump the first non-zero part that was given."""
    if major is None:
        return (INFINITY, 0, 0)
    if major > 0 or minor is None:
        return (major + 1, 0, 0)
    if minor > 0 or patch is None:
        return (0, minor + 1, 0)
    return (0, 0, patch + 1)


def _hyphen(low_text: str, high_text: str) -> list[Comparator]:
    low = _floor(*_partial(low_text))
    major, minor, patch = _partial(high_text)
    if major is None:
        return [(">=", low)]
    if patch is None:
        return [(">=", low), ("<", _next_up(major, minor))]
    return [(">=", low), ("<=", (major, minor or 0, patch))]


def _tokens(part: str) -> list[str]:
    """Split one `||` alternative into simple ranges; `>= 20` counts as `>=20`."""
    joined = re.sub(r"(<=|>=|<|>|=|~>|~|\^)\s+", r"\1", part.strip())
    return joined.split()


def parse_range(text: str) -> list[list[Comparator]]:
    """The range as a union of intersections of comparators."""
    alternatives: list[list[Comparator]] = []
    for part in text.split("||"):
        words = _tokens(part)
        if len(words) == 3 and words[1] == "-":
            alternatives.append(_hyphen(words[0], words[2]))
            continue
        if "-" in words:
            raise RangeError(f"a hyphen range needs one version on each side: {part.strip()!r}")
        comparators: list[Comparator] = []
        for word in words or ["*"]:
            comparators.extend(_simple(word))
        alternatives.append(comparators)
    return alternatives


def _holds(version: Version, comparator: Comparator) -> bool:
    op, bound = comparator
    if op == "=":
        return version == bound
    if op == ">=":
        return version >= bound
    if op == ">":
        return version > bound
    if op == "<":
        return version < bound
    return version <= bound


def satisfies(version: Version, text: str) -> bool:
    """True when `version` is in the range `text`."""
    return any(
        all(_holds(version, comparator) for comparator in alternative)
        for alternative in parse_range(text)
    )


def newest_satisfying(versions: list[Version], text: str) -> Version | None:
    """The highest of `versions` in the range, or None when none is."""
    parse_range(text)  # a bad range is an error even when the list is empty
    matching = [v for v in versions if satisfies(v, text)]
    return max(matching) if matching else None


def newest_lts(versions: list[Version]) -> Version | None:
    """The highest version on an even major line, the lines Node.js makes LTS."""
    even = [v for v in versions if v[0] % 2 == 0]
    return max(even) if even else None


def show(version: Version) -> str:
    return ".".join(str(part) for part in version)
