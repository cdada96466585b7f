"""The unprivileged account builds and dynos run as when the platform runs as root."""

from __future__ import annotations

import os
import pwd
import subprocess

from paas.settings import Settings


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
