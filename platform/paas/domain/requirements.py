"""Which apps' dependencies the shared dependency cache may build, and the key of an entry
(pure).

An app shares only a requirements.txt that names packages of the host's index and nothing
else: one requirement per line, each a name with optional extras, version specifiers and
an environment marker. No option line (`-r`, `-e`, `--index-url`, `--find-links`, ...), no
URL, path or `@` reference, no line continuation: such a file installs the same thing for
every app that pushes the same bytes, from the same index, whoever pushed it first. An app
that sets its own index (a config var such as PIP_INDEX_URL) shares nothing.

Invariant: the key names everything that decides an entry's contents besides time: the
exact requirements bytes, the stack (its name and root), the Python buildpack's version
and the host's index, proxy and CA settings the build sees.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

MAX_BYTES = 64 * 1024
KEY_FORMAT = "paas-shared-deps 1"
# Config vars that point a build at another index: set, the app builds its own environment.
INDEX_CONFIG_VARS = frozenset(
    {
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "PIP_FIND_LINKS",
        "PIP_TRUSTED_HOST",
        "UV_INDEX_URL",
        "UV_EXTRA_INDEX_URL",
        "UV_DEFAULT_INDEX",
        "UV_INDEX",
        "UV_FIND_LINKS",
        "UV_INDEX_STRATEGY",
        "UV_KEYRING_PROVIDER",
    }
)
# Lock and dependency files the Python buildpack prefers to requirements.txt.
PREFERRED_FILES = ("uv.lock", "poetry.lock", "Pipfile.lock")
# name[extras] specifiers ; marker   (PEP 508 without a URL); a trailing comment is cut first.
REQUIREMENT = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
    r"\s*(?:\[\s*[A-Za-z0-9._-]+(?:\s*,\s*[A-Za-z0-9._-]+)*\s*\])?"
    r"\s*(?:\(?\s*(?:~=|===|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+\s*"
    r"(?:,\s*(?:~=|===|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+\s*)*\)?)?"
    r"(?:;[\sA-Za-z0-9_.<>=!~()'\"-]+)?"
)


def shareable(requirements: bytes) -> bool:
    """Whether a requirements.txt names index packages only (see the module docstring)."""
    if len(requirements) > MAX_BYTES or b"\\" in requirements:
        return False
    try:
        text = requirements.decode("utf-8")
    except UnicodeDecodeError:
        return False
    named = False
    for raw in text.splitlines():
        line = _without_comment(raw).strip()
        if not line:
            continue
        if REQUIREMENT.fullmatch(line) is None:
            return False
        named = True
    return named


def _without_comment(line: str) -> str:
    """The line before a comment: `#` at its start or after whitespace (pip's rule)."""
    if line.lstrip().startswith("#"):
        return ""
    found = re.search(r"\s#", line)
    return line if found is None else line[: found.start()]


def own_index(config: Mapping[str, str]) -> bool:
    """Whether the app's config vars choose a package index of its own."""
    return any(name in INDEX_CONFIG_VARS for name in config)


def key(
    requirements: bytes,
    stack: str,
    stack_root: str,
    buildpack_version: str,
    host_settings: Iterable[tuple[str, str]],
) -> str:
    """The entry key: a sha256 over everything that decides an entry's contents."""
    digest = hashlib.sha256()
    for part in (KEY_FORMAT, stack, stack_root, buildpack_version.strip()):
        digest.update(part.encode() + b"\0")
    for name, value in sorted(host_settings):
        digest.update(f"{name}={value}".encode() + b"\0")
    digest.update(b"requirements\0" + requirements)
    return digest.hexdigest()
