"""Domains carry an id and a date (Heroku's domain shape): a database made before them is
migrated, each domain it holds getting an id of its own that stays."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from paas.state.store import Store


def test_a_database_from_before_gets_stable_domain_ids(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store(path)
    app = store.create_app("shop", "debian-13", domain="paas.localhost")
    with sqlite3.connect(path) as db:  # the table as it was: no id, no date
        db.execute("DROP TABLE domains")
        db.execute("CREATE TABLE domains (app_id TEXT NOT NULL, hostname TEXT NOT NULL UNIQUE)")
        db.execute("INSERT INTO domains VALUES (?, 'www.shop.example')", (app.id,))
    migrated = Store(path).custom_domains(app)
    assert [d.hostname for d in migrated] == ["www.shop.example"]
    assert migrated[0].id and migrated[0].created_at.endswith("Z")
    assert Store(path).custom_domains(app) == migrated  # the next start keeps them


def test_each_added_domain_has_its_own_id(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    app = store.create_app("shop", "debian-13", domain="paas.localhost")
    added = [store.add_domain(app, h, domain="paas.localhost") for h in ("a.example", "b.example")]
    assert store.custom_domains(app) == added and added[0].id != added[1].id
