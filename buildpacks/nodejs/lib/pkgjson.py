"""Reads package.json for the Node.js buildpack's shell scripts.

Usage: pkgjson.py FILE COMMAND [ARG]
  get KEY.PATH    the string at KEY.PATH (e.g. engines.node), or nothing
  has-script NAME exit 0 when scripts.NAME is a non-empty string, else 1
  cache-dirs      the cacheDirectories (or cache_directories) entries, one a line
  deps-digest     a sha256 of the fields that decide node_modules' contents

Invariant: a package.json that is not a JSON object is exit status 3 with the reason on
stderr, whatever the command: the build must not guess.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

DEPENDENCY_FIELDS = (
    "dependencies",
    "devDependencies",
    "optionalDependencies",
    "peerDependencies",
    "bundleDependencies",
    "bundledDependencies",
    "overrides",
    "resolutions",
    "workspaces",
    "packageManager",
    "pnpm",
)


def load(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as error:
        print(f"package.json cannot be read: {error}", file=sys.stderr)
        sys.exit(3)
    if not isinstance(data, dict):
        print("package.json is not a JSON object", file=sys.stderr)
        sys.exit(3)
    return data


def get(data: dict[str, Any], dotted: str) -> str:
    value: Any = data
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) else ""


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    data, command = load(argv[1]), argv[2]
    if command == "get" and len(argv) == 4:
        print(get(data, argv[3]))
        return 0
    if command == "has-script" and len(argv) == 4:
        return 0 if get(data, f"scripts.{argv[3]}").strip() else 1
    if command == "cache-dirs":
        listed = data.get("cacheDirectories", data.get("cache_directories", []))
        for entry in listed if isinstance(listed, list) else []:
            if isinstance(entry, str) and entry.strip():
                print(entry.strip().strip("/"))
        return 0
    if command == "deps-digest":
        chosen = {k: data[k] for k in DEPENDENCY_FIELDS if k in data}
        text = json.dumps(chosen, sort_keys=True, separators=(",", ":"))
        print(hashlib.sha256(text.encode()).hexdigest())
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
