"""A push following its release, against a real SQLite store: it hears the agent's
verdict as soon as the agent commits it, not on its next poll."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest

from paas.domain.models import ROLLED_OUT
from paas.domain.settings import Settings
from paas.release import releases, rollout_watch
from paas.state.logs import LogStore
from paas.state.store import Store


def test_the_push_sees_its_release_settle_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path, containers=False)
    store, logs = Store(settings.db_path), LogStore(settings.logs_db_path)
    app = store.create_app("demo", "paas-host", domain="paas.localhost")
    release = releases.deploy(
        store, logs, app, releases.Build("sha256:a", {"web": "serve"}), "abcdef12"
    )
    monkeypatch.setattr(rollout_watch, "POLL_SECONDS", 30.0)  # only a change wakes it
    settled: list[float] = []

    def agent() -> None:
        time.sleep(0.3)  # the push is waiting by now
        store.set_release_status(app, release.version, ROLLED_OUT, "web dynos up: 1", 0.0)
        settled.append(time.monotonic())

    verdict = threading.Thread(target=agent)
    verdict.start()
    try:
        rollout_watch.follow(settings, store, logs, app, release, 0, io.StringIO())
    finally:
        verdict.join(10)
    assert time.monotonic() - settled[0] < 0.5
