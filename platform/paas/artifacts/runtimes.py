"""The shared runtime store: language runtimes (a Node.js distribution of one version),
each stored once per host, root-owned and read-only, named by its content, and mounted
read-only into the builds and dynos that name it instead of being copied into each slug.

A buildpack declares what it needs in BUILD_DIR/.paas/runtimes.json (see
docs/buildpacks.md): per runtime its kind (a built-in buildpack with bin/runtime), version,
the sha256 of its archive, the archive (a file in the app's build cache) when the store may
not have it yet, and where the app wants a link to it. After compile the builder makes
missing entries and rewrites the file as the slug's manifest: the names, nothing else.

Layout of PAAS_HOME/runtimes (root's, 0711: traversable, not listable):
  KIND-VERSION-SHA256/  an entry: the runtime's tree, as bin/runtime unpacked the archive
  .NAME.*               staging, removed on failure (and by the collector when stale)

Invariant: an entry named ...-SHA256 holds what the platform's own bin/runtime made of an
archive whose bytes root hashed to SHA256: whoever supplied the bytes, an app naming that
entry gets exactly that archive's tree, so no app can change what another app runs. It is
unpacked as the platform's deps account (no app's) from a copy root made, copied in by
root without that account's ownership, made read-only, and renamed into place complete. It
never changes afterwards; the collector removes it when no kept release names it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from paas.artifacts.depcache import seal  # the same rule: read-only, root's
from paas.domain.errors import BuildFailed, PaasError
from paas.host import cleanup, procs

MOUNT = Path("/opt/paas/runtimes")  # where builds and dynos see the entries
MANIFEST = ".paas/runtimes.json"  # in the build dir: the declaration, then the manifest
MANIFEST_BYTES = 16 * 1024
ARCHIVE_BYTES = 1 << 30
UNPACK_TIMEOUT = 300
COPY_TIMEOUT = 300
# An entry no kept release names stays this long after a build last used or made it: the
# build that made it (its own slug has a copy) pushes again, and finds it.
UNUSED_SECONDS = 24 * 3600.0
KIND = re.compile(r"[a-z][a-z0-9]{0,30}")
VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_]{0,40}")
SHA256 = re.compile(r"[0-9a-f]{64}")
NAME = re.compile(r"[a-z][a-z0-9]{0,30}-[0-9A-Za-z][0-9A-Za-z.+_]{0,40}-[0-9a-f]{64}")
LINK = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]*(/[A-Za-z0-9._][A-Za-z0-9._-]*)*")


@dataclass(frozen=True)
class Offer:
    """A runtime a build can give the store: the archive it was made from, in the app's
    build cache, and what the archive is (its kind, version and sha256)."""

    kind: str
    version: str
    sha256: str
    archive: str

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.version}-{self.sha256}"


@dataclass(frozen=True)
class Declaration:
    runtimes: tuple[str, ...]  # the entries the slug runs on (linked under MOUNT)
    offers: tuple[Offer, ...]  # the entries later builds may use (this slug has a copy)


# --- pure rules ------------------------------------------------------------------------
def parse_declaration(data: bytes) -> Declaration:
    """A build's .paas/runtimes.json; BuildFailed naming what is wrong."""
    try:
        value = json.loads(data.decode())
        if not isinstance(value, dict):
            raise TypeError("not an object")
        names = []
        for name in _list(value, "runtimes"):
            if not isinstance(name, str) or NAME.fullmatch(name) is None:
                raise ValueError(f"runtime name {name!r}")
            names.append(name)
        offers = tuple(_offer(item) for item in _list(value, "offers"))
    except (ValueError, TypeError, UnicodeDecodeError) as error:
        raise BuildFailed(
            f"{MANIFEST} of the build is not a valid runtime declaration ({error}): "
            "see docs/buildpacks.md, 'Shared runtimes'"
        ) from None
    return Declaration(tuple(dict.fromkeys(names)), offers)


def _list(value: dict[str, object], key: str) -> list[object]:
    found = value.get(key, [])
    if not isinstance(found, list):
        raise TypeError(f"{key} is not a list")
    return found


def _offer(item: object) -> Offer:
    if not isinstance(item, dict):
        raise TypeError("an offer is not an object")
    fields = {}
    for key in ("kind", "version", "sha256", "archive"):
        if not isinstance(item.get(key), str):
            raise TypeError(f"an offer's {key} is not a string")
        fields[key] = item[key]
    offer = Offer(**fields)
    if NAME.fullmatch(offer.name) is None:
        raise ValueError(f"offer {offer.kind!r} {offer.version!r} {offer.sha256!r}")
    return offer


def manifest(names: Iterable[str]) -> bytes:
    """The slug's .paas/runtimes.json: the runtimes it runs on, nothing else."""
    return (json.dumps({"runtimes": list(names)}) + "\n").encode()


def named_in(data: bytes) -> list[str]:
    """The runtime names of a slug's manifest; [] when it names none or is not one."""
    try:
        return list(parse_declaration(data).runtimes)
    except BuildFailed:
        return []


def slug_runtimes(slug_tree: Path) -> list[str]:
    """The runtimes the slug's manifest names (a slug without one names none)."""
    path = slug_tree / MANIFEST
    try:
        if path.is_symlink() or path.stat().st_size > MANIFEST_BYTES:
            return []
        return named_in(path.read_bytes())
    except OSError:
        return []


def missing_error(name: str, directory: Path) -> PaasError:
    return PaasError(
        f"runtime {name} that this release runs on is not in {directory} on this host "
        "(removed by hand?): push the app again (e.g. `git commit --allow-empty -m rebuild` "
        "and `git push`) to make it again"
    )


# --- the store -------------------------------------------------------------------------
class RuntimeStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(mode=0o711, parents=True, exist_ok=True)
        directory.chmod(0o711)  # mounted into builds: reachable by name, not listable

    def path(self, name: str) -> Path:
        return self.directory / name

    def has(self, name: str) -> bool:
        return NAME.fullmatch(name) is not None and self.path(name).is_dir()

    def names(self) -> list[str]:
        return sorted(p.name for p in self.directory.iterdir() if NAME.fullmatch(p.name))

    def paths(self, names: Iterable[str]) -> list[Path]:
        """The entries of `names`, in order; PaasError naming the first one missing."""
        found = []
        for name in names:
            if not self.has(name):
                raise missing_error(name, self.directory)
            found.append(self.path(name))
        return found

    def pin_all(self) -> None:
        """Renews every entry's ctime: a push in flight may link any of them, and the
        collector spares what changed since such a push began."""
        now = time.time()
        for name in self.names():
            try:
                os.utime(self.path(name), (now, now))
            except OSError:
                continue

    def add(self, offer: Offer, archive: Path, unpack: list[str], owner: tuple[int, int]) -> Path:
        """Makes the entry of `offer` from `archive` (any file: its bytes are hashed and
        must be offer.sha256), unpacked by `unpack` + [ARCHIVE, TARGET] run as `owner`
        (uid, gid). Returns its path; BuildFailed when it cannot be made."""
        entry = self.path(offer.name)
        if entry.is_dir():
            return entry
        work = self.directory / f".{offer.name}.{uuid.uuid4().hex[:8]}"
        staging = work.with_name(work.name + ".entry")
        work.mkdir(mode=0o700)
        try:
            copied = work / "archive"
            if copy_hashed(archive, copied) != offer.sha256:
                raise BuildFailed(
                    f"the archive of runtime {offer.kind} {offer.version} is not the "
                    f"one its sha256 names ({offer.sha256[:12]}...): clear the build cache "
                    "and push again"
                )
            os.chown(work, *owner)
            os.chown(copied, *owner)
            target = work / "tree"
            argv = ["setpriv", f"--reuid={owner[0]}", f"--regid={owner[1]}", "--clear-groups"]
            try:
                procs.run([*argv, *unpack, str(copied), str(target)], UNPACK_TIMEOUT)
            except PaasError as failure:
                raise BuildFailed(
                    f"runtime {offer.kind} {offer.version} cannot be unpacked: {failure.message}"
                ) from None
            if not target.is_dir() or target.is_symlink():
                raise BuildFailed(f"unpacking runtime {offer.kind} made no tree")
            copy = ["cp", "-a", "--no-preserve=ownership", "--", str(target), str(staging)]
            procs.run(copy, COPY_TIMEOUT)  # root's from the start, the account's no more
            seal(staging)
            try:
                os.rename(staging, entry)
            except OSError:
                if not entry.is_dir():
                    raise
        finally:
            cleanup.remove_tree(work)
            if staging.exists():
                cleanup.remove_tree(staging)
        return entry

    def collect(
        self, keep: Iterable[str], spare_since: float, stale: float, now: float | None = None
    ) -> list[Path]:
        """Removes each entry not in `keep` that no build used (pin_all) or made within
        UNUSED_SECONDS and that is unchanged since `spare_since`, and staging left since
        before `stale`; returns what it removed."""
        kept = set(keep)
        unused_before = (time.time() if now is None else now) - UNUSED_SECONDS
        removed = []
        for child in sorted(self.directory.iterdir()):
            try:
                info = child.lstat()
            except FileNotFoundError:
                continue
            if NAME.fullmatch(child.name):
                doomed = child.name not in kept and info.st_ctime < spare_since
                doomed = doomed and info.st_mtime < unused_before
            else:
                doomed = info.st_ctime < stale
            if doomed and cleanup.remove_tree(child):
                removed.append(child)
        return removed


def copy_hashed(source: Path, target: Path) -> str:
    """Copies a regular file (never through a link) into a new root-owned file, at most
    ARCHIVE_BYTES; returns the sha256 of what it copied."""
    digest = hashlib.sha256()
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        raise BuildFailed(f"cannot read the runtime archive {source}: {error.strerror}") from None
    with os.fdopen(fd, "rb") as src, target.open("xb") as out:
        if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
            raise BuildFailed(f"the runtime archive {source} is not a file")
        size = 0
        while chunk := src.read(1 << 20):
            size += len(chunk)
            if size > ARCHIVE_BYTES:
                raise BuildFailed(f"the runtime archive {source} is larger than 1 GB")
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def store_of(home: Path) -> RuntimeStore:
    return RuntimeStore(home / "runtimes")


def mounts(paths: Mapping[str, Path]) -> tuple[tuple[str, str], ...]:
    """(host path, container path) read-only mounts of the entries `paths` names."""
    return tuple((str(p), str(MOUNT / name)) for name, p in paths.items())
