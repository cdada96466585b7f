"""What a buildpack's `bin/release` says (pure): its YAML's `default_process_types` and
`config_vars`, read by a small parser of the subset buildpacks print.

The subset: top-level `key:` lines, each followed by indented `name: value` pairs (values
plain, or in single or double quotes), or `key: {}` / `key: []` / `key:` with nothing;
`---`, blank and `#` lines are skipped; other top-level keys (`addons`) are ignored.
Invariant: the text is bounded (MAX_BYTES) before it is parsed; every process type name
passes the Procfile's check and every config var name is an environment variable name, as
both end up in paths, dyno ids and a shell script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from paas.domain import procfile
from paas.domain.errors import BuildFailed

MAX_BYTES = 64 * 1024
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
SECTIONS = ("default_process_types", "config_vars")


@dataclass(frozen=True)
class ReleaseInfo:
    default_process_types: dict[str, str] = field(default_factory=dict)
    config_vars: dict[str, str] = field(default_factory=dict)


def too_long(buildpack: str) -> BuildFailed:
    return BuildFailed(
        f"bin/release of the {buildpack} buildpack printed more than {MAX_BYTES // 1024} "
        "KiB: it prints a short YAML document"
    )


def parse(text: str, buildpack: str = "buildpack") -> ReleaseInfo:
    """The two mappings bin/release printed, or BuildFailed naming the bad line."""
    if len(text.encode()) > MAX_BYTES:
        raise too_long(buildpack)
    sections: dict[str, dict[str, str]] = {name: {} for name in SECTIONS}
    inside: dict[str, str] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#") or line.startswith("---"):
            continue
        if not line.startswith((" ", "\t")):
            key, _, rest = line.partition(":")
            inside = sections.get(key.strip())
            if inside is not None and rest.strip() not in ("", "{}", "[]"):
                raise BuildFailed(_bad(buildpack, number, f"{key.strip()} must be a mapping"))
            continue
        if inside is None:
            continue
        name, colon, value = line.strip().partition(":")
        if not colon:
            raise BuildFailed(_bad(buildpack, number, "expected `name: value`"))
        inside[_unquote(name.strip())] = _unquote(value.strip())
    _check(sections, buildpack)
    return ReleaseInfo(sections["default_process_types"], sections["config_vars"])


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        inner = value[1:-1]
        return inner.replace("''", "'") if value[0] == "'" else inner.replace('\\"', '"')
    return value


def _check(sections: dict[str, dict[str, str]], buildpack: str) -> None:
    for name in sections["default_process_types"]:
        if not procfile.type_name(name):
            raise BuildFailed(
                f"bin/release of the {buildpack} buildpack declares an invalid process type "
                f"{procfile.shorten(name)!r}: use letters, digits, _ and -, up to 63 characters"
            )
    for name in sections["config_vars"]:
        if not ENV_NAME.fullmatch(name):
            raise BuildFailed(
                f"bin/release of the {buildpack} buildpack declares an invalid config var "
                f"{procfile.shorten(name)!r}: use letters, digits and _, not starting with a digit"
            )


def _bad(buildpack: str, number: int, why: str) -> str:
    return f"bin/release of the {buildpack} buildpack: line {number}: {why}"
