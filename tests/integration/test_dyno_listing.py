"""`GET /apps/X/dynos` (what `paas ps` shows) through the real Flask app and store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from paas.api import create_app
from paas.api.dynos import CPU_WINDOW_SECONDS
from paas.domain.settings import Settings
from paas.state.store import Store

TOKEN = "dyno-listing-token"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[FlaskClient]:
    settings = Settings(home=tmp_path, domain="paas.localhost", containers=False)
    flask_app = create_app(settings)
    Store(settings.db_path).add_token(TOKEN, "admin")
    yield flask_app.test_client()


def test_an_app_without_running_dynos_is_listed_without_waiting_for_a_cpu_sample(
    client: FlaskClient,
) -> None:
    """The CPU % window is only worth waiting for when a dyno is up: at 1,000 apps, most
    have none, and `paas ps` of one took the whole window for nothing."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post("/apps", json={"name": "idle"}, headers=headers).status_code == 201
    started = time.monotonic()
    response = client.get("/apps/idle/dynos", headers=headers)
    took = time.monotonic() - started
    assert response.status_code == 200 and response.get_json() == []
    assert took < CPU_WINDOW_SECONDS
