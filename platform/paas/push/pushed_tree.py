"""Reading a file of a pushed tree as root, without trusting the tree.

A pushed repository (and whatever a buildpack adds to it) is hostile input: a `Procfile`
may be a link to `/etc/shadow`, a directory, or a FIFO made during the build. Every file the
platform reads from such a tree goes through `read_bytes`.

Invariant: `read_bytes` only ever returns the bytes of a regular file reached from the tree
root by real directories, each component opened with O_NOFOLLOW relative to the one before
(no path is resolved as a string), at most `limit` bytes long. Anything else — a link at any
level, `..`, a special file, a file too large — is a BuildFailed naming the file by its path
in the tree, never by what it points at and never with its content.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from paas.domain.errors import BuildFailed

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO swapped in after the check must not hang the open.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
)


def components(name: str) -> list[str]:
    """The path's parts; refuses absolute paths, `.`, `..` and empty parts (pure)."""
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in name:
        raise BuildFailed(f"{name!r}: not a path inside the app")
    return parts


def kind(mode: int) -> str:
    """What a non-regular file is, for a message (pure)."""
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def refused(name: str, what: str) -> BuildFailed:
    return BuildFailed(f"{name}: is {what}; commit it as a regular file")


def read_bytes(root: Path, name: str, limit: int) -> bytes | None:
    """The content of ROOT/NAME, or None when there is no such file."""
    parts = components(name)
    try:
        fd = os.open(root, _DIR_FLAGS)
    except FileNotFoundError:
        return None
    try:
        for part in parts[:-1]:
            parent, fd = fd, -1  # _step closes the parent, whatever happens
            fd = _step(parent, part, name)
            if fd < 0:
                return None
        return _read_file(fd, parts[-1], name, limit)
    finally:
        if fd >= 0:
            os.close(fd)


def _step(parent: int, part: str, name: str) -> int:
    """Opens a directory below `parent` (and closes `parent`); -1 when it is missing."""
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        return -1
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise BuildFailed(f"{name}: a part of its path is not a directory of the app") from None
        raise BuildFailed(f"{name}: cannot be read ({error.strerror})") from None
    finally:
        os.close(parent)


def _read_file(parent: int, part: str, name: str, limit: int) -> bytes | None:
    try:
        before = os.stat(part, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(before.st_mode):  # refused before any open: no device is opened
        raise refused(name, kind(before.st_mode))
    try:
        fd = os.open(part, _FILE_FLAGS, dir_fd=parent)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise refused(name, "a symbolic link") from None
        raise BuildFailed(f"{name}: cannot be read ({error.strerror})") from None
    try:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (
            before.st_dev,
            before.st_ino,
        ):
            raise refused(name, kind(now.st_mode))  # swapped between the check and the open
        if now.st_size > limit:
            raise too_large(name, limit)
        data = _read_at_most(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise too_large(name, limit)
    return data


def _read_at_most(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left > 0:
        chunk = os.read(fd, min(left, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def too_large(name: str, limit: int) -> BuildFailed:
    shown = f"{limit // 1024} KiB" if limit >= 1024 else f"{limit} bytes"
    return BuildFailed(f"{name}: is larger than {shown}; keep it short")
