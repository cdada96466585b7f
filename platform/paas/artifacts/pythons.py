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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from paas.domain import python_runtime
from paas.host import procs

COPY_TIMEOUT = 300
ELF_MAX_BYTES = 256 * 2**20  # an interpreter or extension module larger than this is refused
ELF_MAGIC = b"\x7fELF"
SHT_DYNAMIC, SHT_GNU_VERDEF, SHT_GNU_VERNEED = 6, 0x6FFFFFFD, 0x6FFFFFFE
DT_NULL, DT_NEEDED = 0, 1
MAX_VERSION_ENTRIES = 4096
MAX_LINKS = 16


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


def needed_by(home: Path, minor: str) -> dict[str, dict[str, set[str]]]:
    """What an interpreter tree's ELF files (bin/python<minor> and its lib-dynload modules,
    by path in the tree) need: each NEEDED soname and the symbol versions asked of it."""
    files = [home / "bin" / f"python{minor}"]
    dynload = home / "lib" / f"python{minor}" / "lib-dynload"
    if dynload.is_dir():
        files += sorted(p for p in dynload.iterdir() if p.name.endswith(".so"))
    needs = {}
    for path in files:
        elf = read_elf(path)
        needs[str(path.relative_to(home))] = {
            s: elf.versions_needed.get(s, set()) for s in elf.needed
        }
    return needs


def provided(rootfs: Path, home: Path | None, sonames: Iterable[str]) -> dict[str, set[str]]:
    """Of `sonames`, those the interpreter tree's own lib/ (`home`; None: it brings none)
    or else the stack's library directories have, each with the symbol versions it
    defines. The stack is the platform's own trusted tree: its links are resolved within
    it."""
    own = {} if home is None else library_files(home / "lib")
    stack = stack_library_files(rootfs)
    found = {}
    for soname in sonames:
        path = None
        if home is not None and soname in own:
            path = inside(home, own[soname])
        if path is None and soname in stack:
            path = inside(rootfs, stack[soname])
        if path is not None:
            found[soname] = read_elf(path).versions_defined
    return found


def library_files(directory: Path) -> dict[str, Path]:
    if directory.is_symlink() or not directory.is_dir():
        return {}
    return {p.name: p for p in directory.iterdir() if ".so" in p.name}


def stack_library_files(rootfs: Path) -> dict[str, Path]:
    """The shared libraries of a stack's library directories by name (its real directories
    only: a link such as merged-/usr's lib -> usr/lib is not followed out of the tree)."""
    found: dict[str, Path] = {}
    for top in ("usr/lib", "usr/lib64", "lib", "lib64"):
        base = rootfs / top
        if base.is_symlink() or not base.is_dir():
            continue
        arch = [p for p in base.iterdir() if p.name.endswith("-linux-gnu")]
        for directory in [*arch, base]:  # the multiarch directory first, as ld.so.conf says
            for name, path in library_files(directory).items():
                found.setdefault(name, path)
    return found


def inside(root: Path, path: Path) -> Path | None:
    """The regular file `path` leads to, its links resolved as if `root` were `/` (an
    absolute link is the tree's, not the host's); None when it leads out of `root` or to
    nothing."""
    for _ in range(MAX_LINKS):
        if not path.is_symlink():
            return path if path.is_file() else None
        target = Path(os.readlink(path))
        path = root / target.relative_to("/") if target.is_absolute() else path.parent / target
        path = Path(os.path.normpath(path))
        if not path.is_relative_to(root):
            return None
    return None


@dataclass(frozen=True)
class Elf:
    needed: list[str] = field(default_factory=list)  # DT_NEEDED sonames, in order
    versions_needed: dict[str, set[str]] = field(default_factory=dict)  # soname -> versions
    versions_defined: set[str] = field(default_factory=set)  # what a library provides


def read_elf(path: Path) -> Elf:
    """The dynamic linking facts of an ELF file (empty for one that is not ELF, or a static
    binary). Read without following a link; ValueError for a malformed one."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return Elf()
        data = file.read(ELF_MAX_BYTES + 1)
    if len(data) > ELF_MAX_BYTES:
        raise ValueError(f"{path}: larger than {ELF_MAX_BYTES >> 20} MB")
    with contextlib.suppress(struct.error, IndexError, UnicodeDecodeError, ValueError):
        return parse_elf(data)
    raise ValueError(f"{path}: a malformed ELF file")


def elf_needed(path: Path) -> list[str]:
    """The DT_NEEDED sonames of an ELF file."""
    return read_elf(path).needed


def parse_elf(data: bytes) -> Elf:
    """DT_NEEDED, the GNU version needs and the version definitions of an ELF image in
    memory, through its section headers (SHT_DYNAMIC, SHT_GNU_verneed, SHT_GNU_verdef and
    the string tables they link to)."""
    if data[:4] != ELF_MAGIC:
        return Elf()
    order = "<" if data[5] == 1 else ">"
    if data[4] == 2:
        (shoff,) = struct.unpack_from(order + "Q", data, 0x28)
        shentsize, shnum = struct.unpack_from(order + "HH", data, 0x3A)
        section, entry = order + "IIQQQQIIQQ", order + "qQ"
    else:
        (shoff,) = struct.unpack_from(order + "I", data, 0x20)
        shentsize, shnum = struct.unpack_from(order + "HH", data, 0x2E)
        section, entry = order + "IIIIIIIIII", order + "iI"
    headers = [struct.unpack_from(section, data, shoff + i * shentsize) for i in range(shnum)]

    def text(table: int, at: int) -> str:
        start = headers[table][4] + at
        return data[start : data.index(b"\0", start)].decode()

    elf = Elf()
    for _, kind, _, _, offset, size, link, info, _, _ in headers:
        if kind == SHT_DYNAMIC:
            for at in range(offset, offset + size, struct.calcsize(entry)):
                tag, value = struct.unpack_from(entry, data, at)
                if tag == DT_NULL:
                    break
                if tag == DT_NEEDED:
                    elf.needed.append(text(link, value))
        elif kind == SHT_GNU_VERNEED:
            at = offset
            for _ in range(min(info, MAX_VERSION_ENTRIES)):
                _, count, file, aux, following = struct.unpack_from(order + "HHIII", data, at)
                versions = elf.versions_needed.setdefault(text(link, file), set())
                there = at + aux
                for _ in range(min(count, MAX_VERSION_ENTRIES)):
                    _, _, _, name, step = struct.unpack_from(order + "IHHII", data, there)
                    versions.add(text(link, name))
                    there += step
                at += following
        elif kind == SHT_GNU_VERDEF:
            at = offset
            for _ in range(min(info, MAX_VERSION_ENTRIES)):
                _, _, _, count, _, aux, following = struct.unpack_from(order + "HHHHIII", data, at)
                if count:
                    (name,) = struct.unpack_from(order + "I", data, at + aux)
                    elf.versions_defined.add(text(link, name))
                at += following
    return elf
