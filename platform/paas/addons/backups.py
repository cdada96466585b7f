"""pg:backups: placeholder until captures land."""

from __future__ import annotations

import shutil

from paas.addons import hosting
from paas.domain.settings import Settings


def forget(settings: Settings, addon_id: str) -> None:
    shutil.rmtree(hosting.root(settings) / "postgresql" / "backups" / addon_id, ignore_errors=True)
