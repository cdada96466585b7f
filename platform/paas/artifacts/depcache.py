"""The shared dependency cache: byte-compiled virtualenvs built from wheels only, one per
requirements key (paas.domain.requirements), each root-owned and read-only, bind-mounted
read-only into the builds of apps whose requirements match, so a new app's first build
copies an environment instead of resolving, downloading, installing and compiling one.

Layout of PAAS_HOME/deps (root's, 0711):
  entries/KEY.STAMP/  an entry: venv/, fingerprint (the Python buildpack's, for the venv),
                      requirements.txt; its mtime is when a build was last offered it
  apps/APP_ID         the entry the app's last successful build was offered: it keeps that
                      one while its requirements stay the same, as with its own cache
  failed/KEY          a prime that failed (a package with no wheel, the index down), not
                      tried again for FAILED_RETRY_SECONDS

Invariant: an entry appears (by rename) only complete and sealed: copied by root from the
staging tree of a prime step that ran no app or package code and has ended, chowned to root
and made read-only. It never changes afterwards; it is removed only when no build was
offered it within the push timeout, so no running build still reads it.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from paas.domain.errors import BuildFailed
from paas.host import cleanup, procs

FRESH_SECONDS = 24 * 3600.0  # a new app gets an entry at most this old: newer releases
RETAIN_SECONDS = 7 * 24 * 3600.0  # an entry no build was offered for this long goes
FAILED_RETRY_SECONDS = 3600.0
COPY_TIMEOUT = 600
FINGERPRINT = re.compile(r"[0-9a-f]{64}")
KEY = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Entry:
    key: str
    stamp: int  # ns since the epoch when it was made
    path: Path


def parse_entry(path: Path) -> Entry | None:
    key, _, rest = path.name.partition(".")
    stamp = rest.split("-", 1)[0]
    if KEY.fullmatch(key) is None or not stamp.isdigit():
        return None
    return Entry(key, int(stamp), path)


class DepCache:
    def __init__(self, directory: Path, push_timeout: float, max_bytes: int) -> None:
        """`push_timeout`: how long a build may still read an entry it was offered;
        `max_bytes`: the size of one entry, and a quarter of the whole store's."""
        self.directory = directory
        self.entries = directory / "entries"
        self.apps = directory / "apps"
        self.failed = directory / "failed"
        self.push_timeout = push_timeout
        self.max_bytes = max_bytes
        for path in (directory, self.entries, self.apps, self.failed):
            path.mkdir(mode=0o711, exist_ok=True, parents=True)
        directory.chmod(0o711)  # a build's bind mount source: traversable, not listable
        self.entries.chmod(0o711)

    def listed(self) -> list[Entry]:
        found = []
        for child in self.entries.iterdir():
            entry = parse_entry(child)
            if entry is not None and (child / "fingerprint").is_file():
                found.append(entry)
        return found

    def offer(self, app_id: str, key: str, now: float | None = None) -> Path | None:
        """The entry for `key` a build of the app should use: the one its last build used,
        else the newest one made less than FRESH_SECONDS ago; None: prime one. Its mtime
        becomes now, so the pruner leaves it to this build."""
        now = time.time() if now is None else now
        entries = [e for e in self.listed() if e.key == key]
        remembered = self.remembered(app_id)
        chosen = next((e for e in entries if e.path.name == remembered), None)
        if chosen is None and entries:
            newest = max(entries, key=lambda e: e.stamp)
            if now - newest.stamp / 1e9 < FRESH_SECONDS:
                chosen = newest
        if chosen is None:
            return None
        os.utime(chosen.path, (now, now))
        return chosen.path

    def remembered(self, app_id: str) -> str | None:
        try:
            return (self.apps / app_id).read_text().strip() or None
        except OSError:
            return None

    def remember(self, app_id: str, entry: Path) -> None:
        """The app's builds keep this entry while its requirements stay the same."""
        tmp = self.apps / f".{app_id}.{uuid.uuid4().hex}"
        tmp.write_text(entry.name + "\n")
        os.replace(tmp, self.apps / app_id)

    def failed_recently(self, key: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        try:
            return now - (self.failed / key).stat().st_mtime < FAILED_RETRY_SECONDS
        except OSError:
            return False

    def record_failure(self, key: str) -> None:
        (self.failed / key).write_text(f"{time.time():.0f}\n")

    def add(self, key: str, staged: Path, requirements: bytes) -> Path:
        """Seals a prime's output (`staged`: venv/ and fingerprint, written by a step that
        has ended) into a new entry; returns its path. BuildFailed when it is no entry."""
        fingerprint = staged_fingerprint(staged)
        venv = staged / "venv"
        if not venv.is_dir() or venv.is_symlink():
            raise BuildFailed("the shared dependency step made no virtualenv")
        if (size := tree_bytes(venv)) > self.max_bytes:
            raise BuildFailed(
                f"the shared environment takes {size // 2**20} MB, more than "
                f"{self.max_bytes // 2**20} MB (PAAS_BUILD_CACHE_MB)"
            )
        name = f"{key}.{time.time_ns()}-{uuid.uuid4().hex[:8]}"
        staging = self.entries / f".{name}"
        staging.mkdir(mode=0o700)
        try:
            # Copied by root without the prime account's ownership: root's from the start.
            copy = ["cp", "-a", "--no-preserve=ownership", "--", str(venv), str(staging / "venv")]
            procs.run(copy, COPY_TIMEOUT)
            (staging / "requirements.txt").write_bytes(requirements)
            (staging / "fingerprint").write_text(fingerprint + "\n")
            seal(staging)
        except BaseException:
            cleanup.remove_tree(staging)
            raise
        entry = self.entries / name
        os.replace(staging, entry)
        cleanup.remove_file(self.failed / key)
        return entry

    def prune(self, now: float | None = None) -> list[Path]:
        """Removes entries no build was offered for RETAIN_SECONDS, then the least recently
        offered ones while the store holds more than 4 x max_bytes; never one offered
        within the push timeout. Returns what it removed."""
        now = time.time() if now is None else now
        ages = []
        for entry in self.listed():
            try:
                offered = entry.path.stat().st_mtime
            except OSError:
                continue
            ages.append((offered, entry.path))
        ages.sort()
        sizes = {path: tree_bytes(path) for _, path in ages}
        total = sum(sizes.values())
        removed = []
        for offered, path in ages:
            if now - offered < self.push_timeout:
                break
            if now - offered < RETAIN_SECONDS and total <= 4 * self.max_bytes:
                break
            if cleanup.remove_tree(path):
                total -= sizes[path]
                removed.append(path)
        return removed


def staged_fingerprint(staged: Path) -> str:
    path = staged / "fingerprint"
    if path.is_symlink() or not path.is_file() or path.stat().st_size > 256:
        raise BuildFailed("the shared dependency step wrote no fingerprint")
    text = path.read_text(errors="replace").strip()
    if FINGERPRINT.fullmatch(text) is None:
        raise BuildFailed("the shared dependency step wrote an invalid fingerprint")
    return text


def tree_bytes(path: Path) -> int:
    """The bytes of the files under `path` (symlinks not followed)."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def seal(tree: Path) -> None:
    """Read-only for every build and dyno that is offered it (root's: root made it)."""
    procs.run(["chmod", "-R", "go-w,a+rX", str(tree)], timeout=300)
    tree.chmod(0o755)
