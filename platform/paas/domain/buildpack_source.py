"""Which buildpack a stored buildpack, `BUILDPACK_URL`, `.buildpacks` line or app.json entry
names, against the operator's allow-list (pure).

A line is either `heroku/NAME`, a buildpack shipped with the platform, an archive URL
(`.tgz`/`.tar.gz`, over http(s) or file), or a git URL with an optional `#REF`; remote ones
are fetched by the build user. The operator lists the accepted prefixes in
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

from paas.domain import app_manifest
from paas.domain.errors import BuildFailed, InvalidParams

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


ARCHIVE_SUFFIXES = (".tgz", ".tar.gz")
ARCHIVE_SCHEMES = ("http://", "https://", "file://")


@dataclass(frozen=True)
class Remote:
    """A git repository (optionally at a branch or tag), or a gzipped tar archive."""

    url: str
    ref: str | None
    archive: bool = False

    @property
    def shown(self) -> str:
        return self.url + (f"#{self.ref}" if self.ref else "")


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
        if bad_path(prefix.split("://", 1)[-1]):
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
    if bad_path(url.split("://", 1)[1]):
        raise BuildFailed(f"buildpack {shown}: . and .. are not allowed in its path")
    if is_archive(url):
        if ref:
            raise BuildFailed(f"buildpack {shown}: an archive URL takes no #ref")
        if not url.startswith(ARCHIVE_SCHEMES):
            raise BuildFailed(f"buildpack {shown}: an archive is fetched over http(s) or file only")
        return Remote(url, None, archive=True)
    if ref and (not REF.fullmatch(ref) or ".." in ref):
        raise BuildFailed(f"buildpack {shown}: #{ref} is not a branch or tag name")
    return Remote(url, ref or None)


def is_archive(url: str) -> bool:
    """A `.tgz`/`.tar.gz` URL (its query string aside) is an archive, else a git repo."""
    return url.split("?", 1)[0].lower().endswith(ARCHIVE_SUFFIXES)


def parse_all(
    lines: Iterable[str], prefixes: tuple[str, ...], builtins: Iterable[str], origin: str
) -> list[Source]:
    """A list of sources from one origin (stored, app.json ...), bounded like .buildpacks."""
    listed = [line.strip() for line in lines if line.strip()]
    if len(listed) > MAX_BUILDPACKS:
        raise BuildFailed(f"{origin} lists {len(listed)} buildpacks; at most {MAX_BUILDPACKS}")
    names = list(builtins)
    return [parse(line, prefixes, names) for line in listed]


def app_json_urls(text: str) -> list[str]:
    """The `buildpacks` of an app.json (`[{"url": ...}, ...]`); [] when it has none."""
    try:
        document = app_manifest.document(text)
    except InvalidParams as error:  # a build step's failure, like every other source's
        raise BuildFailed(error.message) from None
    listed = document.get("buildpacks")
    if listed is None:
        return []
    if not isinstance(listed, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("url"), str) for entry in listed
    ):
        raise BuildFailed('app.json: "buildpacks" must be a list of {"url": "..."} objects')
    return [str(entry["url"]) for entry in listed]


def parse_list(text: str, prefixes: tuple[str, ...], builtins: Iterable[str]) -> list[Source]:
    """A `.buildpacks` file: one source per line, blank lines and `#` comments skipped."""
    lines = (line for line in text.splitlines() if not line.strip().startswith("#"))
    return parse_all(lines, prefixes, builtins, ".buildpacks")


# Heroku's names for its official buildpacks, each mapped to a built-in directory.
SHORTHANDS = {"python": "python", "nodejs": "nodejs", "static": "static", "procfile": "procfile"}


def _builtin(text: str, prefixes: tuple[str, ...], builtins: list[str]) -> Builtin:
    name = text.removeprefix(BUILTIN_PREFIX)
    name = SHORTHANDS.get(name, name)
    if BUILTIN_PREFIX not in prefixes:
        raise BuildFailed(f"buildpack {_show(text)}: built-in buildpacks are not allowed here")
    if not NAME.fullmatch(name) or name not in builtins:
        missing = "built into this platform" if name in SHORTHANDS else "a built-in buildpack"
        raise BuildFailed(
            f"buildpack {_show(text)} is not {missing}: choose one of "
            + ", ".join(BUILTIN_PREFIX + b for b in builtins)
        )
    return Builtin(name)


def bad_path(rest: str) -> bool:
    """True when a URL's part after `SCHEME://` has a `.`/`..` segment, raw or decoded."""
    for form in (rest, urllib.parse.unquote(rest)):
        path = form.split("?", 1)[0]
        if any(segment in (".", "..") for segment in re.split(r"[/\\]", path)):
            return True
    return False


def _show(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")
