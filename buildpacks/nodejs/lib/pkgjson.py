"""Reads package.json once for the Node.js buildpack's shell scripts.

Usage: pkgjson.py FILE
Prints one `KEY<TAB>VALUE` line per fact the build needs (a python3 start costs more than
the parse, so everything comes from one run):
  engines.node     the engines.node range (empty when absent)
  packageManager   the packageManager field (empty when absent)
  script           once per non-empty script among SCRIPTS
  cache-dir        once per cacheDirectories (or cache_directories) entry
  deps-digest      a sha256 of the fields that decide node_modules' contents

Invariant: values never hold a tab or a newline (they are replaced by spaces), so the
shell reads each line whole; a package.json that is not a JSON object is exit status 3
with the reason on stderr.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

SCRIPTS = ("heroku-prebuild", "heroku-postbuild", "build", "heroku-cleanup", "start")
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


def text(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def facts(data: dict[str, Any]) -> list[tuple[str, str]]:
    engines = data.get("engines")
    scripts = data.get("scripts")
    found = [
        ("engines.node", text(engines.get("node")) if isinstance(engines, dict) else ""),
        ("packageManager", text(data.get("packageManager"))),
    ]
    if isinstance(scripts, dict):
        found += [("script", name) for name in SCRIPTS if text(scripts.get(name))]
    listed = data.get("cacheDirectories", data.get("cache_directories", []))
    for entry in listed if isinstance(listed, list) else []:
        if text(entry):
            found.append(("cache-dir", text(entry).strip("/")))
    chosen = {k: data[k] for k in DEPENDENCY_FIELDS if k in data}
    encoded = json.dumps(chosen, sort_keys=True, separators=(",", ":")).encode()
    found.append(("deps-digest", hashlib.sha256(encoded).hexdigest()))
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    for key, value in facts(load(argv[1])):
        print(f"{key}\t{value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
