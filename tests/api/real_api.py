"""The real API as an api_cases.Target: `paas.api.create_app` on a PAAS_HOME of its own (a
real SQLite store; no server, no agent), driven through Flask's test client."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from flask import Flask
from flask.testing import FlaskClient

from paas.artifacts.slugs import SlugStore
from paas.domain.settings import Settings
from paas.release import releases
from paas.state.logs import LogStore
from paas.state.store import Store

TOKEN = "contract-test-token"


@dataclass
class RealApi:
    """The api_cases.Target of the real application."""

    app: Flask
    settings: Settings
    token: str = TOKEN

    @property
    def client(self) -> FlaskClient:
        return self.app.test_client()

    def release(self, app: str, process_types: Mapping[str, str], status: str) -> None:
        """What a push leaves (a slug and a release), moved to `status` as the agent would."""
        store = Store(self.settings.db_path)
        found = store.app(app)
        digest = f"{len(store.releases(found)) + 1:064x}"
        slugs = SlugStore(self.settings.slugs_dir)
        slugs.directory.mkdir(parents=True, exist_ok=True)
        slugs.tar_path(digest).touch()
        build = releases.Build(f"sha256:{digest}", dict(process_types))
        made = releases.deploy(
            store, LogStore(self.settings.logs_db_path), found, build, "abcdef12"
        )
        if made.status != status:
            moved = ((made.status,), status)
            assert store.set_release_status(found, made.version, moved, None, time.time())
