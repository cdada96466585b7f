"""Cleanup that never fails its caller and is never silent.

A command (`command`), a tree (`remove_tree`) or a file (`remove_file`) that cannot be
undone is one line to `warn`: the platform log, unless the caller has a better place (a
dyno's supervisor: its app's log). The cleanup then goes on, and its caller does not fail:
a dyno that stopped has stopped, whatever of it is left behind. What is already gone is the
expected state, not a failure, and says nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from paas.domain.errors import CommandFailed
from paas.host import platform_log, procs

Warn = Callable[[str], None]


def command(
    argv: list[str], warn: Warn = platform_log.line, gone: tuple[str, ...] = (), timeout: float = 30
) -> bool:
    """Runs a cleanup command; True when it succeeded. `gone`: what the command says when
    what it undoes is already undone (`not mounted`, `does not exist`)."""
    try:
        procs.run(argv, timeout=timeout)
    except CommandFailed as failure:
        if not any(fragment in failure.stderr for fragment in gone):
            warn(f"cleanup: {failure.message}")
        return False
    return True


def remove_tree(path: Path, warn: Warn = platform_log.line) -> bool:
    """Removes a tree as far as it can; says once what it could not remove (the first
    failure, and how many there were). True when nothing of it is left."""
    failures: list[str] = []

    def failed(
        _function: object,
        name: str,
        info: tuple[type[BaseException], BaseException, TracebackType | None],
    ) -> None:
        if not isinstance(info[1], FileNotFoundError):  # removed meanwhile: as wanted
            failures.append(f"{name}: {info[1]}")

    shutil.rmtree(path, onerror=failed)
    if failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        warn(f"cleanup: cannot remove {path}: {failures[0]}{more}")
    return not failures and not path.exists()


def remove_file(path: Path, warn: Warn = platform_log.line) -> bool:
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        warn(f"cleanup: cannot remove {path}: {error.strerror or error}")
        return False
    return True
