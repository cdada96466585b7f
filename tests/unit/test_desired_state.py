"""Store.desired_state(): the agent's whole snapshot in one read transaction, whose number
of statements does not grow with the number of apps, and equal to what the per-app reads
return."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from paas.domain.models import DynoSlot
from paas.release import releases
from paas.state.logs import LogStore
from paas.state.store import Store


class CountingStore(Store):
    """A real store that counts the SQL statements it runs."""

    statements: list[str]

    def _connect(self) -> sqlite3.Connection:
        db = super()._connect()
        db.set_trace_callback(self.statements.append)
        return db


def store_with_apps(home: Path, count: int) -> CountingStore:
    CountingStore.statements = []
    store = CountingStore(home / "state.db")
    logs = LogStore(home / "logs.db")
    for i in range(count):
        app = store.create_app(f"app{i}", "paas-host", domain="paas.localhost")
        build = releases.Build(f"sha256:{i}", {"web": "serve", "worker": "work"})
        releases.deploy(store, logs, app, build, "abcdef12")
        releases.deploy(store, logs, app, build, "abcdef13")
        store.add_domain(app, f"www.app{i}.example.com", domain="paas.localhost")
        store.request_restart(app, "web")
        store.save_slot(app, DynoSlot("worker.1", 2, 1, 5.0))
        if i % 2:
            store.set_release_status(app, 1, (("deploying",), "succeeded"), None, 1.0)
    return store


def statements_of_one_snapshot(store: CountingStore) -> list[str]:
    store.statements.clear()
    store.desired_state()
    return list(store.statements)


def test_the_snapshot_runs_as_many_statements_for_30_apps_as_for_3(tmp_path: Path) -> None:
    few = statements_of_one_snapshot(store_with_apps(tmp_path / "few", 3))
    many = statements_of_one_snapshot(store_with_apps(tmp_path / "many", 30))
    assert len(few) == len(many) <= 10
    assert few[0] == "BEGIN" and few[-1] == "COMMIT"  # one read transaction


def test_the_snapshot_holds_what_the_per_app_reads_return(tmp_path: Path) -> None:
    store = store_with_apps(tmp_path, 4)
    snapshot = store.desired_state()
    assert [s.app for s in snapshot.apps] == store.apps()
    for state in snapshot.apps:
        app = state.app
        assert state.current == store.current_release(app)
        unsettled = [r for r in store.releases(app) if r.status in ("pending", "deploying")]
        assert list(state.unsettled) == unsettled
        assert list(state.formation) == store.formation(app)
        assert state.generations == store.restart_generations(app)
        assert state.slots == store.slots(app)
        assert list(state.domains) == store.domains(app)
        assert state.generation("web.1") == 1 and state.generation("worker.1") == 0
