"""Slugs: immutable, content-addressed build artifacts.

A slug is a deterministic tar of the built app (sorted names, fixed mtimes and owners), named
by its sha256. Beside each tar sits its unpacked tree, owned by root and not writable by
dynos, from which dynos of every release naming that digest run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from paas.domain.errors import CommandFailed, NotFound, PaasError
from paas.host import cleanup, procs

TAR_FLAGS = ["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner"]


class SlugStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)  # dynos never read it: their app dirs are hard-linked copies

    def tar_path(self, digest: str) -> Path:
        return self.directory / f"{digest}.tar"

    def tree_path(self, digest: str) -> Path:
        return self.directory / digest

    def add(self, built: Path) -> str:
        """Archives the built tree, moves it in place as the unpacked slug; returns digest."""
        fd, tmp_name = tempfile.mkstemp(dir=self.directory, suffix=".tar.tmp")
        os.close(fd)
        try:
            procs.run(["tar", *TAR_FLAGS, "-cf", tmp_name, "-C", str(built), "."], timeout=600)
        except PaasError:
            cleanup.remove_file(Path(tmp_name))  # half a tar (a full disk) is no slug
            raise
        digest = "sha256:" + _sha256(Path(tmp_name))
        name = digest.removeprefix("sha256:")
        os.replace(tmp_name, self.tar_path(name))
        tree = self.tree_path(name)
        if tree.exists():
            shutil.rmtree(built)
        elif os.stat(built).st_dev != os.stat(self.directory).st_dev:
            self._copy_in(built, tree)  # built on the build's own filesystem
        else:
            _seal(built)
            os.replace(built, tree)
        return digest

    def stored(self) -> set[str]:
        """The digest names (no `sha256:`) of every slug stored, from one directory read:
        what a listing of many releases checks them against."""
        names = (entry.name for entry in os.scandir(self.directory))
        return {name.removesuffix(".tar") for name in names if not name.endswith(".tmp")}

    def has(self, digest: str) -> bool:
        """Whether the slug is still stored (its tar, or its tree)."""
        name = digest.removeprefix("sha256:")
        return self.tar_path(name).is_file() or self.tree_path(name).is_dir()

    def _copy_in(self, built: Path, tree: Path) -> None:
        """A copy with the built files' mtimes (not the tar's fixed ones): Python's .pyc
        files name their source's mtime, and would all be stale otherwise."""
        staging = Path(tempfile.mkdtemp(dir=self.directory, suffix=".copy"))
        with _removed_on_failure(staging):
            procs.run(["cp", "-a", f"{built}/.", str(staging)], timeout=600)
            _seal(staging)
        try:
            os.replace(staging, tree)
        except OSError:
            shutil.rmtree(staging)  # another build made the same slug first

    def unpacked(self, digest: str) -> Path:
        """The slug's tree, unpacked again from its tar if the tree is missing."""
        name = digest.removeprefix("sha256:")
        tree = self.tree_path(name)
        if tree.is_dir():
            return tree
        tar = self.tar_path(name)
        if not tar.exists():
            raise NotFound(f"slug {digest} is no longer stored: deploy again")
        staging = Path(tempfile.mkdtemp(dir=self.directory, suffix=".unpack"))
        with _removed_on_failure(staging):
            try:
                procs.run(["tar", "-xf", str(tar), "-C", str(staging)], timeout=600)
            except CommandFailed as failure:  # said without the staging dir's random name
                why = procs.stderr_tail(failure.stderr) or failure.message
                raise PaasError(f"slug {digest} cannot be unpacked ({why}): deploy again") from None
            _seal(staging)
        try:
            os.replace(staging, tree)
        except OSError:
            shutil.rmtree(staging)  # another caller unpacked it first
        return tree


@contextlib.contextmanager
def _removed_on_failure(staging: Path) -> Iterator[None]:
    """A staging tree that failed to fill (a damaged tar, a full disk) is removed: it
    must not look like a slug, nor wait for the collector."""
    try:
        yield
    except PaasError:
        cleanup.remove_tree(staging)
        raise


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _seal(tree: Path) -> None:
    """Root-owned and read-only for everyone else, so one dyno cannot change a slug."""
    if os.geteuid() == 0:
        procs.run(["chown", "-R", "0:0", str(tree)], timeout=300)
    procs.run(["chmod", "-R", "go-w,a+rX", str(tree)], timeout=300)
