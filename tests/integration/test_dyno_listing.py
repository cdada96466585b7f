"""`GET /apps/X/dynos` (what `paas ps` shows) through the real Flask app and store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from paas.api import create_app
from paas.api.dynos import CpuMeter
from paas.domain.settings import Settings
from paas.state.store import Store

TOKEN = "dyno-listing-token"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[FlaskClient]:
    settings = Settings(home=tmp_path, domain="paas.localhost", containers=False)
    flask_app = create_app(settings)
    Store(settings.db_path).add_token(TOKEN, "admin")
    yield flask_app.test_client()


def test_an_app_without_running_dynos_is_listed_at_once(client: FlaskClient) -> None:
    """At 1,000 apps most have no dyno up; `paas ps` of one once waited 0.2 s for a CPU
    sample of nothing."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post("/apps", json={"name": "idle"}, headers=headers).status_code == 201
    started = time.monotonic()
    response = client.get("/apps/idle/dynos", headers=headers)
    took = time.monotonic() - started
    assert response.status_code == 200 and response.get_json() == []
    assert took < 0.1


def test_cpu_percent_is_over_the_time_since_the_last_reading_else_since_the_start() -> None:
    meter = CpuMeter()
    # First reading: since the dyno started 10 s ago, 2 s of CPU.
    assert meter.percent("demo.web.1.v1.a", 2 * 10**9, now=110.0, started_at=100.0) == 20.0
    # Half a second later: too short a window, the last figure stands.
    assert meter.percent("demo.web.1.v1.a", 2 * 10**9, now=110.5, started_at=100.0) == 20.0
    # 4 s later, 4 s of CPU more: busy the whole time.
    assert meter.percent("demo.web.1.v1.a", 6 * 10**9, now=114.0, started_at=100.0) == 100.0
    meter.keep_only("demo.", set())
    assert meter.seen == {} and meter.last == {}
