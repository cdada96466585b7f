"""Fixtures for the API tests: the real application on a fresh PAAS_HOME in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from real_api import TOKEN, RealApi

from paas.api import create_app
from paas.domain.settings import Settings
from paas.state.store import Store


@pytest.fixture
def real_api(tmp_path: Path) -> RealApi:
    # shared_uid: the cases make a second app, which a platform not run as root refuses
    # unless its apps may share a uid.
    settings = Settings(home=tmp_path, domain="paas.localhost", containers=False, shared_uid=True)
    flask_app = create_app(settings)
    Store(settings.db_path).add_token(TOKEN, "admin")
    return RealApi(flask_app, settings)
