"""pg:backups' API routes on a real store: the errors a client gets before any server is
touched (no attachment, a bad attachment name, a bad schedule). The servers themselves:
tests/integration/test_addon_platform.py."""

from __future__ import annotations

from typing import Any

from real_api import TOKEN, RealApi


def call(api: RealApi, method: str, path: str, body: object = None) -> tuple[int, Any]:
    response = api.client.open(
        path, method=method, json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    return response.status_code, response.get_json()


def test_an_app_without_a_database_gets_a_404_naming_the_fix(real_api: RealApi) -> None:
    assert call(real_api, "POST", "/apps", {"name": "plain"})[0] == 201
    for method, path in (
        ("GET", "/apps/plain/pg/backups"),
        ("POST", "/apps/plain/pg/backups"),
        ("POST", "/apps/plain/pg/backups/restore"),
        ("GET", "/apps/plain/pg/backups/latest/download"),
        ("GET", "/apps/plain/pg/backups/schedule"),
    ):
        status, body = call(real_api, method, path)
        assert status == 404, (method, path)
        assert body["message"].startswith("app plain has no postgresql add-on attached as")
        assert "paas addons:create postgresql -a plain" in body["message"]


def test_bad_input_is_refused_with_422(real_api: RealApi) -> None:
    assert call(real_api, "POST", "/apps", {"name": "plain"})[0] == 201
    status, body = call(real_api, "GET", "/apps/plain/pg/backups?database=no%20such")
    assert status == 422 and "attachment name" in body["message"]
    status, body = call(real_api, "PUT", "/apps/plain/pg/backups/schedule", {})
    assert status == 422 and "'02:00 UTC'" in body["message"]
    status, body = call(real_api, "POST", "/apps/plain/pg/backups/restore", {"backup": 7})
    assert status == 422 and "b001" in body["message"]
    assert call(real_api, "GET", "/apps/nope/pg/backups")[0] == 404
