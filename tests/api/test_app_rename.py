"""`PATCH /apps/{app} {"name": NEW}` (Heroku's `apps:rename`): what is kept under the app's
name follows it, and a refused rename changes nothing."""

from __future__ import annotations

from real_api import TOKEN, RealApi

from paas.artifacts import stacks
from paas.push import gitservice
from paas.state.logs import LogStore

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_rename_moves_the_repo_the_log_and_the_stack_request(real_api: RealApi) -> None:
    client, settings = real_api.client, real_api.settings
    assert client.post("/apps", json={"name": "shop"}, headers=AUTH).status_code == 201
    stacks.request(settings.run_dir, "shop", "debian-12")
    answer = client.patch("/apps/shop", json={"name": "store"}, headers=AUTH)
    assert answer.status_code == 200, answer.get_json()
    shown = answer.get_json()
    assert shown["name"] == "store" and shown["build_stack"]["name"] == "debian-12"
    assert gitservice.repo_path(settings, "store").is_dir()
    assert not gitservice.repo_path(settings, "shop").exists()
    assert stacks.pending(settings.run_dir, "store") == "debian-12"
    assert stacks.pending(settings.run_dir, "shop") is None
    lines, _ = LogStore(settings.logs_db_path).read("store", num=10)
    assert [line.message for line in lines] == ["App created", "Renamed from shop to store"]
    assert client.get(f"/apps/{shown['id']}", headers=AUTH).get_json()["name"] == "store"


def test_a_refused_rename_changes_nothing(real_api: RealApi) -> None:
    client, settings = real_api.client, real_api.settings
    for name in ("shop", "other"):
        assert client.post("/apps", json={"name": name}, headers=AUTH).status_code == 201
    for body, status in (({"name": "other"}, 409), ({"name": "Bad_Name"}, 422)):
        answer = client.patch("/apps/shop", json=body, headers=AUTH)
        assert answer.status_code == status, answer.get_json()
    assert gitservice.repo_path(settings, "shop").is_dir()
    assert client.get("/apps/shop", headers=AUTH).status_code == 200
    lines, _ = LogStore(settings.logs_db_path).read("shop", num=10)
    assert [line.message for line in lines] == ["App created"]
