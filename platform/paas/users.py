"""The unprivileged accounts of a platform run as root: the one builds and dynos run as,
and the one HAProxy's workers drop to."""

from __future__ import annotations

import os
import pwd
import subprocess

from paas.settings import Settings

# HAProxy's workers (which parse every request from the internet) run as this account in
# an empty chroot. Its own account rather than Debian's `haproxy`: that one is shared
# with any HAProxy the operator runs as a system service, and owns its files.
ROUTER_USER = "paas-router"


def router_user() -> str | None:
    """The account HAProxy's workers drop to; None when not root (they cannot drop)."""
    return ROUTER_USER if os.geteuid() == 0 else None


def build_user(settings: Settings) -> str | None:
    """None when not root: then everything simply runs as the current user."""
    return settings.dyno_user if os.geteuid() == 0 else None


def ensure_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
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
            check=True,
            timeout=30,
            capture_output=True,
        )
