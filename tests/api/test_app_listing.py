"""`GET /apps` (and Heroku's `/users/~/apps`) with many apps: one query of the state
database whatever the number of apps, Range pages that walk every app once, and the answer
time a listing of 1,000 apps takes."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import ClassVar

from flask import Flask
from flask.testing import FlaskClient
from real_api import TOKEN

from paas.api import create_app
from paas.api.context import Context
from paas.domain.settings import Settings
from paas.state.logs import LogStore
from paas.state.store import Store

HEADERS = {"Authorization": f"Bearer {TOKEN}"}


class CountingStore(Store):
    statements: ClassVar[list[str]] = []

    def _connect(self) -> sqlite3.Connection:
        db = super()._connect()
        db.set_trace_callback(self.statements.append)
        return db


def api_with_apps(home: Path, count: int) -> tuple[Flask, CountingStore]:
    settings = Settings(home=home, domain="paas.localhost", containers=False, shared_uid=True)
    flask_app = create_app(settings)
    store = CountingStore(settings.db_path)
    store.add_token(TOKEN, "admin")
    with store.transaction() as tx:  # one transaction: 1,000 apps in well under a second
        for i in range(count):
            tx.execute(
                "INSERT INTO apps (id, name, stack, created_at) VALUES (?, ?, ?, ?)",
                (
                    f"00000000-0000-4000-8000-{i:012d}",
                    f"app{i:04d}",
                    "debian-13",
                    "2026-12-01T00:00:00Z",
                ),
            )
    flask_app.extensions["paas"] = Context(settings, store, LogStore(settings.logs_db_path))
    return flask_app, store


def selects(store: CountingStore, client: FlaskClient, path: str, **headers: str) -> int:
    store.statements.clear()
    response = client.get(path, headers={**HEADERS, **headers})
    assert response.status_code in (200, 206), response.data[:200]
    return sum(s.lstrip().upper().startswith("SELECT") for s in store.statements)


def test_the_listing_is_as_many_queries_for_1000_apps_as_for_10(tmp_path: Path) -> None:
    few, few_store = api_with_apps(tmp_path / "few", 10)
    many, many_store = api_with_apps(tmp_path / "many", 1000)
    for path in ("/apps", "/users/~/apps"):
        limit = "name ..; max=1000"
        assert selects(few_store, few.test_client(), path, Range=limit) == selects(
            many_store,
            many.test_client(),
            path,
            Range=limit,
        )


def test_range_pages_walk_every_app_once_and_1000_answer_fast(tmp_path: Path) -> None:
    flask_app, _ = api_with_apps(tmp_path, 1000)
    client = flask_app.test_client()
    seen: list[str] = []
    headers = dict(HEADERS)
    while True:
        response = client.get("/apps", headers=headers)
        seen += [a["name"] for a in response.get_json()]
        if response.status_code == 200:
            break
        assert response.status_code == 206 and len(response.get_json()) == 200
        headers["Range"] = response.headers["Next-Range"]
    assert seen == [f"app{i:04d}" for i in range(1000)]
    started = time.perf_counter()
    answer = client.get("/apps", headers={**HEADERS, "Range": "name ..; max=1000"})
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200 and len(answer.get_json()) == 1000
    assert elapsed < 1.0, f"GET /apps of 1,000 apps took {elapsed * 1000:.0f} ms"
