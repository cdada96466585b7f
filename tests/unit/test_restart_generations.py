"""A restart replaces every dyno it names, whatever was restarted before: the restart
generation a dyno runs under (the highest of the app's, its type's and its own) grows for
exactly the dynos the restart covers."""

from __future__ import annotations

from pathlib import Path

from paas.domain.dyno_plan import DesiredApp
from paas.release import releases
from paas.state.logs import LogStore
from paas.state.store import Store

DYNOS = ("web.1", "web.2", "worker.1")


def generations_after(home: Path, *targets: str) -> list[dict[str, int]]:
    """Each dyno's generation after each restart in turn."""
    store = Store(home / "state.db")
    app = store.create_app("shop", "paas-host", domain="paas.localhost")
    build = releases.Build("sha256:1", {"web": "serve", "worker": "work"})
    releases.deploy(store, LogStore(home / "logs.db"), app, build, "abcdef12")
    seen = []
    for target in targets:
        store.request_restart(app, target)
        desired = DesiredApp("shop", 1, {}, {}, store.restart_generations(app))
        seen.append({name: desired.generation(name) for name in DYNOS})
    return seen


def test_restarting_all_after_one_dyno_and_a_type_restarts_every_dyno(tmp_path: Path) -> None:
    one, kind, every = generations_after(tmp_path, "web.1", "worker", "")
    assert one["web.1"] > one["web.2"] == one["worker.1"]
    assert kind["worker.1"] > one["worker.1"] and kind["web.1"] == one["web.1"]
    assert all(every[name] > kind[name] for name in DYNOS)


def test_restarting_a_type_or_a_dyno_leaves_the_others(tmp_path: Path) -> None:
    every, kind, one = generations_after(tmp_path, "", "web", "web.2")
    assert kind["web.1"] > every["web.1"] and kind["worker.1"] == every["worker.1"]
    assert one["web.2"] > kind["web.2"] and one["web.1"] == kind["web.1"]
