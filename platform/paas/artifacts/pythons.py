"""The host-wide store of Python interpreters for apps whose stack lacks the Python they ask
for: uv's managed downloads (python-build-standalone builds, relocatable) and copies of
another built stack's interpreter. Every PAAS_HOME of the host shares it (like the stacks),
so the second app asking for 3.11 fetches nothing, and a host with no mirror still uses
what it has. Also the reading of ELF files that decides whether an interpreter's libraries
are on a stack (the decision itself is paas.domain.python_runtime's).

Layout of the store (root's, 0755):
  cpython-3.11.9-linux-x86_64-gnu/python/   a managed download: bin/python3.11, lib/...
  stack-debian-12-v4-3.11/python/           another stack's bin/python3.11 and lib/python3.11
  .new-*/                                   being made; never used

Invariant: an entry appears (by rename) only complete, root-owned and writable by root
alone, and never changes afterwards; builds get it read-only (bind-mounted into their
container) and copy what they need into the slug. Nothing is removed automatically: the
operator deletes an entry to drop it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import struct
import tempfile
from pathlib import Path

from paas.domain import python_runtime
from paas.host import procs

COPY_TIMEOUT = 300
ELF_MAX_BYTES = 256 * 2**20  # an interpreter or extension module larger than this is refused
ELF_MAGIC = b"\x7fELF"
SHT_DYNAMIC = 6
DT_NULL, DT_NEEDED = 0, 1


class PythonStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def ensure(self) -> None:
        """The store itself: root's, traversable and listable by builds (0755)."""
        self.directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.directory.chmod(0o755)

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return [p.name for p in self.directory.iterdir() if not p.name.startswith(".")]

    def home(self, name: str, minor: str) -> Path | None:
        """ENTRY/python when the entry is there and holds bin/python<minor>."""
        home = self.directory / name / "python"
        return home if (home / "bin" / f"python{minor}").is_file() else None

    def managed(self, minor: str, arch: str) -> Path | None:
        """The newest managed download of `minor` for `arch` already in the store."""
        name = python_runtime.newest_managed(self.names(), minor, arch)
        return None if name is None else self.home(name, minor)

    def staging(self) -> Path:
        """A new, empty staging directory of root's in the store (sealed or removed)."""
        self.ensure()
        return Path(tempfile.mkdtemp(prefix=".new-", dir=self.directory))

    def seal(self, staging: Path, name: str) -> Path:
        """Makes `staging` the entry `name`: readable by all, writable by root alone, then
        renamed into place. When another build made it first, that one is kept."""
        procs.run(["chmod", "-R", "u=rwX,go=rX", str(staging)], timeout=COPY_TIMEOUT)
        target = self.directory / name
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone once renamed
        return target

    def copy_from_stack(self, rootfs: Path, minor: str, name: str) -> Path:
        """An entry made of a built stack's interpreter and standard library (root-owned
        trusted files: copied with cp -a, links kept as links)."""
        staging = self.staging()
        try:
            home = staging / "python"
            (home / "bin").mkdir(parents=True)
            (home / "lib").mkdir()
            executable = rootfs / "usr" / "bin" / f"python{minor}"
            procs.run(["cp", "-a", str(executable), str(home / "bin")], timeout=COPY_TIMEOUT)
            library = rootfs / "usr" / "lib" / f"python{minor}"
            procs.run(["cp", "-a", str(library), str(home / "lib")], timeout=COPY_TIMEOUT)
            return self.seal(staging, name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def stack_entry_name(stack: str, recipe_version: int, minor: str) -> str:
    return f"stack-{stack}-v{recipe_version}-{minor}"


def needed_by(home: Path, minor: str) -> dict[str, list[str]]:
    """The NEEDED sonames of an interpreter tree's ELF files: bin/python<minor> and its
    lib-dynload modules, by path in the tree."""
    files = [home / "bin" / f"python{minor}"]
    dynload = home / "lib" / f"python{minor}" / "lib-dynload"
    if dynload.is_dir():
        files += sorted(p for p in dynload.iterdir() if p.name.endswith(".so"))
    return {str(p.relative_to(home)): elf_needed(p) for p in files}


def own_libraries(home: Path) -> set[str]:
    """The shared libraries an interpreter tree brings itself (python-build-standalone's
    lib/libpython3.X.so.1.0)."""
    lib = home / "lib"
    return {p.name for p in lib.iterdir() if ".so" in p.name} if lib.is_dir() else set()


def stack_libraries(rootfs: Path) -> set[str]:
    """The shared library names in a stack's library directories (its real directories
    only: a link such as merged-/usr's lib -> usr/lib is not followed out of the tree)."""
    found: set[str] = set()
    for top in ("usr/lib", "usr/lib64", "lib", "lib64"):
        base = rootfs / top
        if base.is_symlink() or not base.is_dir():
            continue
        directories = [base] + [
            p for p in base.iterdir() if p.name.endswith("-linux-gnu") and not p.is_symlink()
        ]
        for directory in directories:
            if directory.is_dir():
                found.update(p.name for p in directory.iterdir() if ".so" in p.name)
    return found


def elf_needed(path: Path) -> list[str]:
    """The DT_NEEDED sonames of an ELF file ([] for one that is not ELF or has no dynamic
    section: a static binary needs nothing). Read without following a link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return []
        data = file.read(ELF_MAX_BYTES + 1)
    if len(data) > ELF_MAX_BYTES:
        raise ValueError(f"{path}: larger than {ELF_MAX_BYTES >> 20} MB")
    with contextlib.suppress(struct.error, IndexError, UnicodeDecodeError):
        return parse_needed(data)
    raise ValueError(f"{path}: a malformed ELF file")


def parse_needed(data: bytes) -> list[str]:
    """DT_NEEDED of an ELF image in memory, through its section headers: the SHT_DYNAMIC
    section and the string table it links to."""
    if data[:4] != ELF_MAGIC:
        return []
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    if wide:
        (shoff,) = struct.unpack_from(order + "Q", data, 0x28)
        shentsize, shnum = struct.unpack_from(order + "HH", data, 0x3A)
        section, entry = order + "IIQQQQIIQQ", order + "qQ"
    else:
        (shoff,) = struct.unpack_from(order + "I", data, 0x20)
        shentsize, shnum = struct.unpack_from(order + "HH", data, 0x2E)
        section, entry = order + "IIIIIIIIII", order + "iI"
    headers = [struct.unpack_from(section, data, shoff + i * shentsize) for i in range(shnum)]
    needed: list[str] = []
    for header in headers:
        if header[1] != SHT_DYNAMIC:
            continue
        offset, size, link = header[4], header[5], header[6]
        strings = headers[link][4]
        for at in range(offset, offset + size, struct.calcsize(entry)):
            tag, value = struct.unpack_from(entry, data, at)
            if tag == DT_NULL:
                break
            if tag == DT_NEEDED:
                end = data.index(b"\0", strings + value)
                needed.append(data[strings + value : end].decode())
    return needed
