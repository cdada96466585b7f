"""Which Python a pushed app asks for, where one may be fetched from, and whether an
interpreter built for one stack can run on another (pure).

The request is read as the Python buildpack reads it (lib/runtime.sh): `.python-version`
("3.11", "3.11.4") wins over `runtime.txt` ("python-3.11.4"); the first line that is not a
comment counts, and only major.minor is honoured. What this module cannot read it leaves to
the buildpack, which says what is wrong with the file.

Invariant: a mirror URL an app sets in its config is used only when it starts with one of
the operator's prefixes (PAAS_PYTHON_SOURCES) and has no `.`/`..` segment; an interpreter
of another stack is offered only when every library its ELF files need (their NEEDED
sonames), with every symbol version they ask of it, is found on the app's stack or in the
interpreter's own tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from paas.domain.buildpack_source import bad_path
from paas.domain.errors import BuildFailed

REQUEST_FILES = (".python-version", "runtime.txt")  # the first one present counts
MAX_REQUEST_BYTES = 4096
# The operator's settings (the platform's environment)...
MIRROR_SETTING = "PAAS_PYTHON_MIRROR"
DOWNLOADS_JSON_SETTING = "PAAS_PYTHON_DOWNLOADS_JSON"
SOURCES_SETTING = "PAAS_PYTHON_SOURCES"
# ... and an app's config vars for its own, by uv's names (PAAS_* is the platform's).
APP_MIRROR = "UV_PYTHON_INSTALL_MIRROR"
APP_DOWNLOADS_JSON = "UV_PYTHON_DOWNLOADS_JSON_URL"
SCHEMES = ("https://", "http://", "file://")
_PATTERNS = {
    ".python-version": re.compile(r"3\.(\d+)(\.\d+)?"),
    "runtime.txt": re.compile(r"python-3\.(\d+)(\.\d+)?"),
}
# uv's name for a managed CPython download: cpython-3.11.9-linux-x86_64-gnu.
MANAGED = re.compile(r"cpython-3\.(\d+)\.(\d+)-linux-([a-z0-9_]+)-gnu")


@dataclass(frozen=True)
class Sources:
    """Where managed Pythons may be fetched from for one build: uv's --mirror and
    --python-downloads-json-url ("" when unset)."""

    mirror: str = ""
    downloads_json: str = ""

    @property
    def any(self) -> bool:
        return bool(self.mirror or self.downloads_json)

    @property
    def shown(self) -> str:
        return self.mirror or self.downloads_json


def requested(files: Mapping[str, bytes | None]) -> str | None:
    """The major.minor the app asks for ("3.11"), or None: no file, or one the buildpack
    must explain. `files`: REQUEST_FILES name → its bytes (None when absent)."""
    for name in REQUEST_FILES:
        data = files.get(name)
        if data is None:
            continue
        line = next((s for s in _lines(data) if s), "")
        found = _PATTERNS[name].fullmatch(line)
        return f"3.{int(found.group(1))}" if found else None
    return None


def _lines(data: bytes) -> Iterable[str]:
    for raw in data.decode(errors="replace").splitlines():
        yield "".join(raw.split("#", 1)[0].split())


def parse_sources(text: str) -> tuple[str, ...]:
    """PAAS_PYTHON_SOURCES: comma-separated URL prefixes (https://, http://, file://)."""
    prefixes = tuple(p.strip() for p in text.split(",") if p.strip())
    for prefix in prefixes:
        if not prefix.startswith(SCHEMES):
            raise ValueError(
                f"{prefix!r} is not a URL prefix: use one such as file:///srv/python/ or "
                "https://mirror.example/python/ (schemes: file, http, https)"
            )
        if bad_path(prefix.split("://", 1)[1]):
            raise ValueError(f"{prefix!r}: a prefix may not contain . or .. segments")
    return prefixes


def sources(config: Mapping[str, str], operator: Sources, allowed: tuple[str, ...]) -> Sources:
    """The sources a build uses: the app's config vars where it sets them, each checked
    against `allowed`, else the operator's own settings (trusted as they are)."""
    chosen = {APP_MIRROR: operator.mirror, APP_DOWNLOADS_JSON: operator.downloads_json}
    for name in chosen:
        url = config.get(name, "").strip()
        if url:
            check_url(name, url, allowed)
            chosen[name] = url
    return Sources(chosen[APP_MIRROR], chosen[APP_DOWNLOADS_JSON])


def check_url(name: str, url: str, allowed: tuple[str, ...]) -> None:
    shown = url if len(url) <= 200 else url[:200] + "..."
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise BuildFailed(f"{name} {shown!r}: blanks and control characters are not allowed")
    if not allowed:
        raise BuildFailed(
            f"{name} {shown} is not allowed here: this platform takes no Python mirror from "
            f"an app's config (the operator lists them in {SOURCES_SETTING}); unset {name}"
        )
    if not any(url.startswith(p) for p in allowed) or "://" not in url:
        raise BuildFailed(
            f"{name} {shown} is not allowed here: it must start with one of "
            f"{', '.join(allowed)} (the operator sets {SOURCES_SETTING})"
        )
    if bad_path(url.split("://", 1)[1]):
        raise BuildFailed(f"{name} {shown}: . and .. are not allowed in its path")


def newest_managed(names: Iterable[str], minor: str, arch: str) -> str | None:
    """Of uv's managed download names, the newest patch level of `minor` for `arch`."""
    want = int(minor.split(".")[1])
    best: tuple[int, str] | None = None
    for name in names:
        found = MANAGED.fullmatch(name)
        if found and int(found.group(1)) == want and found.group(3) == arch:
            patch = int(found.group(2))
            if best is None or patch > best[0]:
                best = (patch, name)
    return None if best is None else best[1]


def missing_libraries(
    needed: Mapping[str, Mapping[str, Iterable[str]]], provided: Mapping[str, Iterable[str]]
) -> dict[str, list[str]]:
    """For each ELF file (by its path in the interpreter's tree) what `provided` lacks of
    what it needs: a soname no library has ("libnsl.so.2"), or a symbol version the library
    does not define ("libc.so.6 GLIBC_2.38": built against a newer one). `needed`: file →
    soname → the versions it asks of it; `provided`: soname → the versions it defines. Only
    files lacking something are listed. The dynamic loader (ld-linux*) is PT_INTERP's,
    found by path, not by a library search."""
    missing = {}
    for path, sonames in sorted(needed.items()):
        lacking = set()
        for soname, versions in sonames.items():
            if soname.startswith("ld-linux"):
                continue
            if soname not in provided:
                lacking.add(soname)
                continue
            defined = set(provided[soname])
            lacking.update(f"{soname} {v}" for v in versions if v not in defined)
        if lacking:
            missing[path] = sorted(lacking)
    return missing


def describe_missing(missing: Mapping[str, list[str]]) -> str:
    """'libnsl.so.2 (lib/python3.11/lib-dynload/nis.cpython-311-x86_64-linux-gnu.so)',
    each lacking soname or version once, with up to three of the files that need it."""
    by_soname: dict[str, list[str]] = {}
    for path, sonames in missing.items():
        for soname in sonames:
            by_soname.setdefault(soname, []).append(path)
    return ", ".join(f"{s} ({', '.join(p[:3])})" for s, p in sorted(by_soname.items()))
