"""The attach endpoint's refusals, answered before any WebSocket upgrade: a bounded number
of sessions per API process (each holds a worker thread), and dynos that are not attached."""

from __future__ import annotations

from typing import Any

from real_api import RealApi
from werkzeug.test import TestResponse

from paas.api import run

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
        refused = real_api.client.get(body(created)["attach_url"], headers=headers(real_api))
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
