"""The health check a pushed app asks for, read from its app.json or CHECKS file.

Every read goes through pushed_tree: a link or special file is refused, never followed, so
no host file's first line can end up in an error message shown to the app's owner.
"""

from __future__ import annotations

from pathlib import Path

from paas.domain.errors import InvalidParams
from paas.domain.healthcheck import (
    APP_JSON,
    CHECKS,
    MAX_FILE_BYTES,
    HealthCheck,
    choose,
    has_web_checks,
)
from paas.push import pushed_tree


def load(app_dir: Path) -> HealthCheck | None:
    """The check app_dir asks for (app.json, else CHECKS), or None for the default one."""
    app_json = _read(app_dir, APP_JSON)
    checks = None if app_json is not None and has_web_checks(app_json) else _read(app_dir, CHECKS)
    return choose(app_json, checks)


def _read(app_dir: Path, name: str) -> str | None:
    """The text of a file at the app root; None if there is no such file.

    Read through pushed_tree: a link or special file is refused, never followed, so no
    host file's first line can end up in an error message shown to the app's owner.
    """
    data = pushed_tree.read_bytes(app_dir, name, MAX_FILE_BYTES)
    if data is None:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidParams(
            f"{name}: is not UTF-8 text (byte {error.start}); save it as UTF-8"
        ) from None
