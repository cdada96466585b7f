"""Which buildpack a `BUILDPACK_URL` or `.buildpacks` line names, against the operator's
allow-list (pure).

A line is either `heroku/NAME`, a buildpack shipped with the platform, or a git URL with an
optional `#REF`, fetched by the build user. The operator lists the accepted prefixes in
PAAS_BUILDPACK_SOURCES (default `heroku/,https://,git://,ssh://`), e.g. to add a local
mirror such as `file:///srv/buildpacks/`.

Invariant: `parse` returns a Source only for a line that starts with an allowed prefix,
has no `..` or `.` path segment (also once percent-decoded, as git decodes it), no blank or
control character, and, for a built-in, names one by a plain identifier. A bare local path
is never a source: the platform never copies a host directory because a push asked for it.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

from paas.domain.errors import BuildFailed

BUILTIN_PREFIX = "heroku/"
DEFAULT_PREFIXES = ("heroku/", "https://", "git://", "ssh://")
MAX_LINE = 2048
MAX_BUILDPACKS = 10
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}")
SCHEMES = frozenset({"https", "http", "git", "ssh", "file"})


@dataclass(frozen=True)
class Builtin:
    name: str


@dataclass(frozen=True)
class Remote:
    url: str
    ref: str | None


Source = Builtin | Remote


def parse_prefixes(text: str) -> tuple[str, ...]:
    """PAAS_BUILDPACK_SOURCES: comma-separated prefixes, each `heroku/` or `SCHEME://...`."""
    prefixes = tuple(p.strip() for p in text.split(",") if p.strip())
    for prefix in prefixes:
        scheme = prefix.split("://", 1)[0]
        if prefix != BUILTIN_PREFIX and ("://" not in prefix or scheme not in SCHEMES):
            raise ValueError(
                f"{prefix!r} is not a buildpack source prefix: use heroku/ or a URL prefix "
                f"such as file:///srv/buildpacks/ (schemes: {', '.join(sorted(SCHEMES))})"
            )
        if _bad_path(prefix.split("://", 1)[-1]):
            raise ValueError(f"{prefix!r}: a prefix may not contain . or .. segments")
    return prefixes


def protocols(prefixes: Iterable[str]) -> str:
    """GIT_ALLOW_PROTOCOL for the allow-list: only the schemes its URL prefixes name."""
    found = sorted({p.split("://", 1)[0] for p in prefixes if "://" in p})
    return ":".join(found)


def parse(line: str, prefixes: tuple[str, ...], builtins: Iterable[str]) -> Source:
    """The source a line names, or BuildFailed saying why it is refused and what to write."""
    text = line.strip()
    shown = _show(text)
    if len(text) > MAX_LINE or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        raise BuildFailed(f"buildpack {shown}: blanks and control characters are not allowed")
    if text.startswith(BUILTIN_PREFIX):
        return _builtin(text, prefixes, sorted(builtins))
    if "://" not in text:
        raise BuildFailed(
            f"buildpack {shown} is not a URL: a local path is never a buildpack source; "
            f"use heroku/NAME or a git URL starting with one of: {', '.join(prefixes)}"
        )
    if not any(text.startswith(p) for p in prefixes if p != BUILTIN_PREFIX):
        raise BuildFailed(
            f"buildpack {shown} is not allowed here: its URL must start with one of "
            f"{', '.join(prefixes)} (the operator sets PAAS_BUILDPACK_SOURCES)"
        )
    url, _, ref = text.partition("#")
    if _bad_path(url.split("://", 1)[1]):
        raise BuildFailed(f"buildpack {shown}: . and .. are not allowed in its path")
    if ref and (not REF.fullmatch(ref) or ".." in ref):
        raise BuildFailed(f"buildpack {shown}: #{ref} is not a branch or tag name")
    return Remote(url, ref or None)


def parse_list(text: str, prefixes: tuple[str, ...], builtins: Iterable[str]) -> list[Source]:
    """A `.buildpacks` file: one source per line, blank lines and `#` comments skipped."""
    lines = [raw.strip() for raw in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if len(lines) > MAX_BUILDPACKS:
        raise BuildFailed(f".buildpacks lists {len(lines)} buildpacks; at most {MAX_BUILDPACKS}")
    return [parse(line, prefixes, builtins) for line in lines]


def _builtin(text: str, prefixes: tuple[str, ...], builtins: list[str]) -> Builtin:
    name = text.removeprefix(BUILTIN_PREFIX)
    if BUILTIN_PREFIX not in prefixes:
        raise BuildFailed(f"buildpack {_show(text)}: built-in buildpacks are not allowed here")
    if not NAME.fullmatch(name) or name not in builtins:
        raise BuildFailed(
            f"buildpack {_show(text)} is not a built-in buildpack: choose one of "
            + ", ".join(BUILTIN_PREFIX + b for b in builtins)
        )
    return Builtin(name)


def _bad_path(rest: str) -> bool:
    """True when a URL's part after `SCHEME://` has a `.`/`..` segment, raw or decoded."""
    for form in (rest, urllib.parse.unquote(rest)):
        path = form.split("?", 1)[0]
        if any(segment in (".", "..") for segment in re.split(r"[/\\]", path)):
            return True
    return False


def _show(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")
