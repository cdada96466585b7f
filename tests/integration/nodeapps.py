"""Node.js apps for the integration tests and bench/node.py, written from scratch into a
new git repo: a dependency (ms), a devDependency (left-pad) that the build script uses and
that must be pruned, and a server whose JSON reports what it sees (the build's output,
whether the devDependency still resolves, the Node.js version, NODE_ENV).

Lockfiles are written by hand from the two packages' published integrity hashes, so no
package manager is needed on the test host; the packages come from the real npm registry.
"""

from __future__ import annotations

import json
from pathlib import Path

from platform_harness import commit, git

MS = (
    "ms",
    "2.1.3",
    "574c8138ce1d2b5861f0b44579dbadd60c6615b2",
    "sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA==",
)
LEFT_PAD = (
    "left-pad",
    "1.3.0",
    "5b8a3a7765dfe001261dde915589e782f8c94d1e",
    "sha512-XI5MPzVNApjAyhQzphX8BkmKsKUxD4LdyK24iZeQGinBN9yTQT3bFlCBy/aVx2HrNcqQGsdot8ghrjyrvMCoEA==",
)
SERVER_JS = """\
const http = require("http");
const fs = require("fs");
const ms = require("ms");
let dev = "absent";
try { require.resolve("left-pad"); dev = "present"; } catch (e) {}
const built = fs.readFileSync(__dirname + "/built.txt", "utf8");
const message = "GREETING";
http.createServer((req, res) => {
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify({message, built, dev, minute: ms("1m"), node: process.version,
                          env: process.env.NODE_ENV}));
}).listen(process.env.PORT);
"""


def server_js(message: str) -> str:
    return SERVER_JS.replace("GREETING", message)


BUILD_JS = "require('fs').writeFileSync('built.txt', 'built' + require('left-pad')('!', 3, '-'))\n"


def tarball(name: str, version: str) -> str:
    return f"https://registry.npmjs.org/{name}/-/{name}-{version}.tgz"


def package_lock() -> str:
    packages: dict[str, object] = {
        "": {
            "name": "nodeapp",
            "version": "1.0.0",
            "dependencies": {MS[0]: MS[1]},
            "devDependencies": {LEFT_PAD[0]: LEFT_PAD[1]},
        }
    }
    for (name, version, _, integrity), dev in ((MS, False), (LEFT_PAD, True)):
        entry = {"version": version, "resolved": tarball(name, version), "integrity": integrity}
        packages[f"node_modules/{name}"] = {**entry, "dev": True} if dev else entry
    lock = {"name": "nodeapp", "version": "1.0.0", "lockfileVersion": 3, "requires": True}
    return json.dumps({**lock, "packages": packages}, indent=2) + "\n"


def yarn_lock() -> str:
    blocks = ["# yarn lockfile v1\n\n"]
    for name, version, shasum, integrity in (LEFT_PAD, MS):
        blocks.append(
            f'\n{name}@{version}:\n  version "{version}"\n'
            f'  resolved "{tarball(name, version)}#{shasum}"\n  integrity {integrity}\n'
        )
    return "".join(blocks)


def pnpm_lock() -> str:
    def importer(kind: str, package: tuple[str, str, str, str]) -> str:
        name, version = package[0], package[1]
        pinned = f"        specifier: {version}\n        version: {version}\n"
        return f"    {kind}:\n      {name}:\n{pinned}"

    text = "lockfileVersion: '9.0'\n\nsettings:\n  autoInstallPeers: true\n"
    text += "  excludeLinksFromLockfile: false\n\nimporters:\n\n  .:\n"
    text += importer("dependencies", MS) + importer("devDependencies", LEFT_PAD)
    text += "\npackages:\n"
    for name, version, _, integrity in (LEFT_PAD, MS):
        text += f"\n  {name}@{version}:\n    resolution: {{integrity: {integrity}}}\n"
    text += "\nsnapshots:\n"
    for name, version, _, _ in (LEFT_PAD, MS):
        text += f"\n  {name}@{version}: {{}}\n"
    return text


LOCKFILES = {"npm": ("package-lock.json", package_lock), "yarn": ("yarn.lock", yarn_lock)}
LOCKFILES["pnpm"] = ("pnpm-lock.yaml", pnpm_lock)


def write_app(
    base: Path,
    name: str,
    manager: str | None = "npm",
    engines: str | None = None,
    message: str = "hello",
) -> Path:
    """A Node app in a new git repo BASE/NAME; `manager`: whose lockfile it has (None:
    none); `message`: what its page says."""
    repo = base / name
    repo.mkdir()
    package: dict[str, object] = {
        "name": "nodeapp",
        "version": "1.0.0",
        "private": True,
        "scripts": {
            "build": "node build.js",
            "start": "node server.js",
            "postinstall": "echo POSTINSTALL-RAN",
        },
        "dependencies": {MS[0]: MS[1]},
        "devDependencies": {LEFT_PAD[0]: LEFT_PAD[1]},
    }
    if engines:
        package["engines"] = {"node": engines}
    if manager == "pnpm":
        package["packageManager"] = "pnpm@9.15.0"
    (repo / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    (repo / "server.js").write_text(server_js(message))
    (repo / "build.js").write_text(BUILD_JS)
    (repo / ".gitignore").write_text("node_modules\n")
    if manager:
        lockfile, render = LOCKFILES[manager]
        (repo / lockfile).write_text(render())
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "node app")
    return repo
