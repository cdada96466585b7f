"""Whether a buildpack archive's members may be extracted (pure).

Invariant: `check` accepts only regular files, directories, symbolic links and hard links
whose names are relative, with no `.`/`..`/empty segment, and whose links resolve, through
every other link of the archive, to a place inside the extraction target; nothing else
(devices, FIFOs, absolute or escaping paths) passes, and the total size is bounded. Each
refusal is one line naming the member.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from paas.domain.errors import BuildFailed

MAX_MEMBERS = 20_000
MAX_LINK_HOPS = 40
KINDS = ("file", "dir", "symlink", "hardlink")


@dataclass(frozen=True)
class Member:
    name: str
    kind: str  # one of KINDS, or what else it is ("device", "fifo", ...)
    size: int = 0
    link: str = ""  # a link's target


def segments(name: str) -> list[str]:
    """A member name's path segments (a leading `./` and a trailing `/` as tar writes)."""
    trimmed = name.removeprefix("./").rstrip("/")
    return trimmed.split("/") if trimmed else []


def check(members: Iterable[Member], url: str, max_bytes: int) -> None:
    """Raises BuildFailed for the first member that may not be extracted."""
    listed = list(members)
    if len(listed) > MAX_MEMBERS:
        raise _refused(url, f"it has more than {MAX_MEMBERS} members")
    links = {"/".join(segments(m.name)): m.link for m in listed if m.kind == "symlink"}
    total = 0
    for member in listed:
        total += member.size
        if total > max_bytes:
            raise _refused(url, f"it unpacks to more than {max_bytes // 2**20} MB")
        _check_one(member, links, url)


def _check_one(member: Member, links: dict[str, str], url: str) -> None:
    shown = repr(member.name[:100])
    if member.kind not in KINDS:
        raise _refused(url, f"member {shown} is a {member.kind}; only files, dirs and links")
    parts = segments(member.name)
    if member.name.startswith("/"):
        raise _refused(url, f"member {shown} has an absolute path")
    if not parts or any(p in ("", ".", "..") for p in parts) or "\0" in member.name:
        if parts or member.kind != "dir":  # `./` alone is the target itself
            raise _refused(url, f"member {shown} has a `..` or empty path segment")
        return
    if resolve(parts[:-1], links) is None:
        raise _refused(url, f"member {shown} is reached through a link outside the archive")
    target = [*parts[:-1], *member.link.split("/")]
    if member.kind == "symlink" and (member.link.startswith("/") or resolve(target, links) is None):
        raise _refused(url, f"symlink {shown} points outside the archive")
    if member.kind == "hardlink":
        target = segments(member.link)
        if member.link.startswith("/") or not target or resolve(target, links) is None:
            raise _refused(url, f"hard link {shown} points outside the archive")


def resolve(parts: list[str], links: dict[str, str]) -> list[str] | None:
    """Where a path inside the target leads once the archive's symlinks are followed;
    None when it leaves the target (or loops)."""
    pending = list(parts)
    where: list[str] = []
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not where:
                return None
            where.pop()
            continue
        here = "/".join([*where, part])
        if here in links:
            hops += 1
            target = links[here]
            if hops > MAX_LINK_HOPS or target.startswith("/"):
                return None
            pending = target.split("/") + pending
            continue
        where.append(part)
    return where


def _refused(url: str, why: str) -> BuildFailed:
    return BuildFailed(f"buildpack archive {url} refused: {why}")
