"""The accounts builds and dynos run as: one uid per app when the platform runs as root.

Each app gets a uid of its own (gid equal to it), allocated once from APP_UID_BASE up and
recorded in the store, so its dynos and builds run as that uid on every start and no two
apps ever share one. A uid is never given to another app, even after `apps:destroy` (files
it owned may outlive the app). The allocator skips uids the host already uses: accounts in
the passwd database and subordinate ranges in /etc/subuid and /etc/subgid (another user's
rootless containers map onto those). Not root: one user is all there is, and every app runs
as it. HAProxy's workers drop to an account of their own, `paas-router`.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from paas.domain.dyno import DynoSpec
from paas.domain.models import App
from paas.domain.settings import Settings
from paas.host import procs
from paas.state.store import Store

APP_UID_BASE = 200000
APP_UID_LIMIT = 2**31 - 2  # above it, some tools read uids as negative numbers
SUBORDINATE_FILES = (Path("/etc/subuid"), Path("/etc/subgid"))


@dataclass(frozen=True)
class Account:
    uid: int
    gid: int


class RunAs(TypedDict):
    """The identity keyword arguments of subprocess.Popen and subprocess.run."""

    user: int | None
    group: int | None
    extra_groups: list[int] | None


def run_as(account: Account | None) -> RunAs:
    """Popen's keyword arguments to run a child as `account`, or (None) as the platform's
    own user: the account's uid and gid and no supplementary groups, so a child started by
    root keeps none of root's groups."""
    if account is None:
        return RunAs(user=None, group=None, extra_groups=None)
    return RunAs(user=account.uid, group=account.gid, extra_groups=[])


# HAProxy's workers (which parse every request from the internet) run as this account in
# an empty chroot. Its own account rather than Debian's `haproxy`: that one is shared
# with any HAProxy the operator runs as a system service, and owns its files.
ROUTER_USER = "paas-router"


def router_user() -> str | None:
    """The account HAProxy's workers drop to; None when not root (they cannot drop)."""
    return ROUTER_USER if os.geteuid() == 0 else None


def shared_uid_refusal(root: bool, shared_allowed: bool, existing_apps: int) -> str | None:
    """Why one more app may not be created, or None (pure): without root every app runs
    as the platform's own uid, so a second app could read the first one's files."""
    if root or shared_allowed or existing_apps == 0:
        return None
    return (
        "this platform does not run as root, so a second app would run as the first one's "
        "uid and could read its code and config: run `paas server` as root for a uid per "
        "app, or set PAAS_SHARED_UID=1 if the apps trust each other"
    )


def build_user(settings: Settings) -> str | None:
    """None when not root: then everything simply runs as the current user."""
    return settings.dyno_user if os.geteuid() == 0 else None


def subordinate_ranges(texts: list[str]) -> list[range]:
    """The uid ranges of /etc/subuid-style lines (`name:first:count`)."""
    found = []
    for text in texts:
        for line in text.splitlines():
            parts = line.strip().split(":")
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                found.append(range(int(parts[1]), int(parts[1]) + int(parts[2])))
    return found


def next_uid(after: int | None, reserved: list[range], taken: set[int]) -> int:
    """The first free uid above `after` (the highest one given out), from APP_UID_BASE."""
    uid = APP_UID_BASE if after is None else max(after + 1, APP_UID_BASE)
    while True:
        clash = next((r for r in reserved if uid in r), None)
        if clash is not None:
            uid = clash.stop
        elif uid in taken:
            uid += 1
        else:
            break
    if uid > APP_UID_LIMIT:
        raise ValueError("no app uid is left")
    return uid


def host_reserved() -> tuple[list[range], set[int]]:
    """What the host already uses: subordinate ranges and passwd accounts."""
    texts = []
    for path in SUBORDINATE_FILES:
        try:
            texts.append(path.read_text())
        except OSError:
            continue
    return subordinate_ranges(texts), {entry.pw_uid for entry in pwd.getpwall()}


def ensure_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        procs.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
        )


def app_account(store: Store, app: App) -> Account | None:
    """The account the app's dynos and builds run as; None when not root."""
    if os.geteuid() != 0:
        return None

    def allocate(after: int | None) -> int:
        reserved, taken = host_reserved()
        return next_uid(after, reserved, taken)

    uid = store.app_uid(app, allocate)
    return Account(uid, uid)


def dyno_owner(spec: DynoSpec) -> tuple[int, int] | None:
    """The uid and gid a plain-process dyno runs as (None: the platform's own)."""
    if spec.uid is not None:
        return spec.uid, spec.uid
    if spec.user is None:
        return None
    account = pwd.getpwnam(spec.user)
    return account.pw_uid, account.pw_gid
