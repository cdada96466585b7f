"""The attach endpoint's refusals, answered before any WebSocket upgrade: a bounded number
of sessions per API process (each holds a worker thread), and dynos that are not attached."""

from __future__ import annotations

from typing import Any

from real_api import RealApi
from werkzeug.test import TestResponse

from paas.api import run
from paas.domain.models import App
from paas.state import one_offs
from paas.state.one_offs import OneOffRequest
from paas.state.store import Store

UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}


def body(response: TestResponse) -> dict[str, Any]:
    found = response.get_json()
    assert isinstance(found, dict)
    return found


def headers(api: RealApi) -> dict[str, str]:
    return {**UPGRADE, "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Authorization": f"Bearer {api.token}"}  # fmt: skip


def test_past_max_sessions_an_attach_is_refused_with_429(real_api: RealApi) -> None:
    real_api.client.post(
        "/apps", json={"name": "demo"}, headers={"Authorization": f"Bearer {real_api.token}"}
    )
    real_api.release("demo", {"web": "serve"}, "succeeded")
    created = real_api.client.post(
        "/apps/demo/dynos",
        json={"command": "bash", "attach": True},
        headers={"Authorization": f"Bearer {real_api.token}"},
    )
    assert created.status_code == 201
    taken = [run.SESSIONS.acquire(blocking=False) for _ in range(run.MAX_SESSIONS)]
    try:
        assert all(taken)
        refused = real_api.client.get(body(created)["attach_path"], headers=headers(real_api))
        assert refused.status_code == 429
        assert body(refused)["id"] == "too_many_sessions"
        assert "run:detached" in body(refused)["message"]
    finally:
        for _ in taken:
            run.SESSIONS.release()


def test_a_detached_or_unknown_dyno_cannot_be_attached_to(real_api: RealApi) -> None:
    auth = {"Authorization": f"Bearer {real_api.token}"}
    real_api.client.post("/apps", json={"name": "demo"}, headers=auth)
    real_api.release("demo", {"web": "serve"}, "succeeded")
    real_api.client.post("/apps/demo/dynos", json={"command": "true"}, headers=auth)
    for path in ("/apps/demo/dynos/run.1/attach", "/apps/demo/dynos/run.7/attach"):
        answer = real_api.client.get(path, headers=headers(real_api))
        assert answer.status_code == 404 and body(answer)["id"] == "not_found"
    unauthenticated = real_api.client.get("/apps/demo/dynos/run.1/attach", headers=UPGRADE)
    assert unauthenticated.status_code == 401


def started_behind_the_view(real_api: RealApi, monkeypatch: Any, dyno_id: str) -> str:
    """A request the view reads as not started yet, which the agent starts right after
    that read (the race of a ps:stop with the agent's tick); returns its id."""
    auth = {"Authorization": f"Bearer {real_api.token}"}
    real_api.client.post("/apps", json={"name": "demo"}, headers=auth)
    real_api.release("demo", {"web": "serve"}, "succeeded")
    created = real_api.client.post("/apps/demo/dynos", json={"command": "sleep 100"}, headers=auth)
    request_id = str(body(created)["id"])
    read = one_offs.by_name

    def read_then_agent_starts(store: Store, app: App, name: str) -> OneOffRequest | None:
        found = read(store, app, name)
        assert one_offs.mark_started(store, request_id, dyno_id)
        return found

    monkeypatch.setattr(one_offs, "by_name", read_then_agent_starts)
    return request_id


def test_a_stop_racing_the_agents_start_stops_the_dyno_it_started(
    real_api: RealApi, monkeypatch: Any
) -> None:
    dyno_id = "demo.run.1.v1.abcd1234"
    (real_api.settings.dynos_dir / dyno_id).mkdir(parents=True)
    request_id = started_behind_the_view(real_api, monkeypatch, dyno_id)
    answer = real_api.client.post(
        "/apps/demo/dynos/run.1/actions/stop",
        headers={"Authorization": f"Bearer {real_api.token}"},
    )
    assert answer.status_code == 202
    assert (real_api.settings.dynos_dir / dyno_id / "stop").exists()  # its supervisor stops it
    store = Store(real_api.settings.db_path)
    assert one_offs.get(store, store.app("demo"), request_id).state == one_offs.STARTED


def test_a_stop_of_a_dyno_forgotten_meanwhile_is_404_no_longer_running(
    real_api: RealApi, monkeypatch: Any
) -> None:
    started_behind_the_view(real_api, monkeypatch, "demo.run.1.v1.abcd1234")  # no directory
    answer = real_api.client.post(
        "/apps/demo/dynos/run.1/actions/stop",
        headers={"Authorization": f"Bearer {real_api.token}"},
    )
    assert answer.status_code == 404 and "no longer running" in body(answer)["message"]
