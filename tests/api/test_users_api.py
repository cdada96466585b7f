"""Users, tokens, collaborators, permissions, rate limits and the audit through the real API
(paas.api.create_app on a real store, Flask's test client)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from real_api import TOKEN, RealApi
from test_addons_api import FakeService

from paas.api import addons as addons_api
from paas.api import auth, create_app
from paas.api import stacks as stack_api
from paas.artifacts import stacks
from paas.artifacts.stacks import StackStatus
from paas.domain.access import Permission
from paas.domain.settings import Settings
from paas.dynos import capability
from paas.state import ratelimit, users
from paas.state.store import Store


def call(api: RealApi, method: str, path: str, token: str = TOKEN, **body: Any) -> Any:
    response = api.client.open(
        path, method=method, json=body or None, headers={"Authorization": f"Bearer {token}"}
    )
    return response


def add_user(api: RealApi, email: str) -> str:
    made = call(api, "POST", "/users", email=email)
    assert made.status_code == 201, made.get_json()
    token = made.get_json()["token"]
    assert isinstance(token, str) and len(token) > 30
    return token


def test_a_user_sees_only_their_own_apps_and_others_are_404(real_api: RealApi) -> None:
    ada, bob = add_user(real_api, "ada@example.com"), add_user(real_api, "bob@example.com")
    assert call(real_api, "POST", "/apps", ada, name="ada-app").status_code == 201
    assert call(real_api, "POST", "/apps", bob, name="bob-app").status_code == 201
    assert [a["name"] for a in call(real_api, "GET", "/apps", ada).get_json()] == ["ada-app"]
    assert call(real_api, "GET", "/apps/bob-app", ada).status_code == 404
    assert call(real_api, "GET", "/apps/bob-app/config-vars", ada).status_code == 404
    assert call(real_api, "DELETE", "/apps/bob-app", ada).status_code == 404
    every = {a["name"] for a in call(real_api, "GET", "/apps").get_json()}
    assert every == {"ada-app", "bob-app"}  # the admin sees all
    assert call(real_api, "GET", "/account", ada).get_json()["email"] == "ada@example.com"


def test_each_permission_allows_exactly_its_actions(real_api: RealApi) -> None:
    ada, bob = add_user(real_api, "ada@example.com"), add_user(real_api, "bob@example.com")
    call(real_api, "POST", "/apps", ada, name="ada-app")
    added = call(
        real_api, "POST", "/teams/apps/ada-app/collaborators", ada,
        user="bob@example.com", permissions=["view"],
    )  # fmt: skip
    assert added.status_code == 201
    assert [p["name"] for p in added.get_json()["permissions"]] == ["view"]
    assert call(real_api, "GET", "/apps/ada-app", bob).status_code == 200
    assert call(real_api, "GET", "/apps/ada-app/config-vars", bob).status_code == 403
    changed = call(
        real_api, "PATCH", "/teams/apps/ada-app/collaborators/bob@example.com", ada,
        permissions=["deploy", "operate"],
    )  # fmt: skip
    assert [p["name"] for p in changed.get_json()["permissions"]] == ["view", "deploy", "operate"]
    assert call(real_api, "GET", "/apps/ada-app/config-vars", bob).status_code == 200
    patched = call(real_api, "PATCH", "/apps/ada-app/config-vars", bob, A="1")
    assert patched.status_code == 403
    listed = call(real_api, "GET", "/apps/ada-app/collaborators", bob).get_json()
    assert {(c["user"]["email"], c["role"]) for c in listed} == {
        ("ada@example.com", "owner"),
        ("bob@example.com", "collaborator"),
    }
    assert (
        call(real_api, "DELETE", "/apps/ada-app/collaborators/bob@example.com", ada).status_code
        == 200
    )
    assert call(real_api, "GET", "/apps/ada-app", bob).status_code == 404


def test_a_revoked_or_expired_token_is_refused_at_once(real_api: RealApi) -> None:
    ada = add_user(real_api, "ada@example.com")
    made = call(real_api, "POST", "/oauth/authorizations", ada, description="ci", expires_in="1")
    second = made.get_json()["access_token"]["token"]
    assert call(real_api, "GET", "/account", second).status_code == 200
    deadline = time.monotonic() + 5
    while call(real_api, "GET", "/account", second).status_code == 200:
        assert time.monotonic() < deadline, "an expired token still worked"
        time.sleep(0.05)
    third = call(real_api, "POST", "/oauth/authorizations", ada, description="laptop").get_json()
    listed = call(real_api, "GET", "/oauth/authorizations", ada).get_json()
    assert {a["description"] for a in listed} == {"first token", "laptop"}
    assert all("token" not in a["access_token"] for a in listed)
    revoked = call(real_api, "DELETE", f"/oauth/authorizations/{third['id']}", ada)
    assert revoked.status_code == 200
    assert call(real_api, "GET", "/account", third["access_token"]["token"]).status_code == 401


def test_only_the_operator_adds_users(real_api: RealApi) -> None:
    ada = add_user(real_api, "ada@example.com")
    assert call(real_api, "POST", "/users", ada, email="eve@example.com").status_code == 403
    assert call(real_api, "POST", "/users", email="ada@example.com").status_code == 409
    assert call(real_api, "POST", "/users", email="not an email").status_code == 422
    assert call(real_api, "DELETE", "/users/ada@example.com", ada).status_code == 403
    call(real_api, "POST", "/apps", ada, name="ada-app")
    owns = call(real_api, "DELETE", "/users/ada@example.com")
    assert owns.status_code == 409 and "owns ada-app" in owns.get_json()["message"]
    call(real_api, "DELETE", "/apps/ada-app", ada)
    assert call(real_api, "DELETE", "/users/ADA@example.com").status_code == 200
    assert call(real_api, "GET", "/account", ada).status_code == 401
    assert add_user(real_api, "ada@example.com")  # the email is free again


def test_a_transfer_moves_the_app_and_the_old_owner_keeps_nothing(real_api: RealApi) -> None:
    ada, bob = add_user(real_api, "ada@example.com"), add_user(real_api, "bob@example.com")
    call(real_api, "POST", "/apps", ada, name="ada-app")
    moved = call(
        real_api, "POST", "/account/app-transfers", ada, app="ada-app", recipient="bob@example.com"
    )
    assert moved.status_code == 201 and moved.get_json()["state"] == "accepted"
    assert call(real_api, "GET", "/apps/ada-app", ada).status_code == 404
    assert call(real_api, "POST", "/apps", bob, name="bob-two").status_code == 201
    not_owner = call(
        real_api, "POST", "/account/app-transfers", ada, app="ada-app", recipient="ada@example.com"
    )
    assert not_owner.status_code == 404  # bob owns it now; ada holds nothing
    call(real_api, "POST", "/teams/apps/ada-app/collaborators", bob, user="ada@example.com")
    refused = call(
        real_api, "POST", "/account/app-transfers", ada, app="ada-app", recipient="ada@example.com"
    )
    assert refused.status_code == 403  # a collaborator is not the owner
    back = call(real_api, "PATCH", "/teams/apps/ada-app", bob, owner="ada@example.com")
    assert back.status_code == 200 and back.get_json()["name"] == "ada-app"
    assert call(real_api, "GET", "/apps/ada-app", bob).status_code == 404
    assert call(real_api, "DELETE", "/apps/ada-app", ada).status_code == 200


def test_the_audit_records_changes_without_secrets(real_api: RealApi) -> None:
    ada = add_user(real_api, "ada@example.com")
    call(real_api, "POST", "/apps", ada, name="ada-app")
    call(real_api, "PATCH", "/apps/ada-app/config-vars", ada, SECRET="hunter2-value")
    entries = call(real_api, "GET", "/audit?app=ada-app", ada).get_json()
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("POST", "/apps", 201),
        ("PATCH", "/apps/ada-app/config-vars", 200),
    ]
    assert all(e["user"]["email"] == "ada@example.com" and e["request_id"] for e in entries)
    everything = str(call(real_api, "GET", "/audit").get_json())
    assert "hunter2" not in everything and ada not in everything


def test_an_exhausted_bucket_answers_429_rate_limit(
    real_api: RealApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = add_user(real_api, "ada@example.com")
    monkeypatch.setattr(auth, "CALLS", ratelimit.CallPolicy(capacity=3, per_seconds=3600))
    seen = [call(real_api, "GET", "/account/rate-limits", ada) for _ in range(4)]
    assert [r.headers.get("RateLimit-Remaining") for r in seen[:3]] == ["2", "1", "0"]
    assert seen[2].get_json() == {"remaining": 0}
    assert seen[3].status_code == 429 and seen[3].get_json()["id"] == "rate_limit"
    assert call(real_api, "GET", "/account").status_code == 200  # the operator is not limited


def test_existing_tokens_are_the_operators(real_api: RealApi) -> None:
    store = Store(real_api.settings.db_path)
    store.add_token("ci-" + "x" * 20, "ci")
    assert call(real_api, "GET", "/apps", "ci-" + "x" * 20).status_code == 200
    assert call(real_api, "GET", "/account").get_json()["id"].startswith("00000000")


def test_a_users_listing_of_1000_apps_is_one_query_of_apps(
    real_api: RealApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = add_user(real_api, "ada@example.com")
    store = Store(real_api.settings.db_path)
    with store.reading() as tx:
        user_id = tx.execute("SELECT id FROM users").fetchone()["id"]
    with store.transaction() as tx:  # one transaction: 1,000 create_app calls take 20 s
        who = users.user(tx, user_id)
        for i in range(1000):
            app_id = f"00000000-0000-0000-0000-{i:012d}"
            tx.execute(
                "INSERT INTO apps (id, name, stack, created_at, owner_id) VALUES (?, ?, ?, ?, ?)",
                (app_id, f"app-{i:04d}", "debian-13", "now", user_id if i % 3 == 0 else None),
            )
            if i % 3 == 1 and i < 100:
                users.grant(tx, app_id, who, Permission.VIEW, "now", new=True)
    statements: list[str] = []
    connect = Store._connect

    def traced(self: Store) -> sqlite3.Connection:
        db = connect(self)
        db.set_trace_callback(statements.append)
        return db

    monkeypatch.setattr(Store, "_connect", traced)
    started = time.perf_counter()
    listed = real_api.client.get(
        "/apps", headers={"Authorization": f"Bearer {ada}", "Range": "name ..; max=1000"}
    )
    elapsed = time.perf_counter() - started
    assert listed.status_code == 200
    assert len(listed.get_json()) == 334 + 33
    assert len([s for s in statements if "FROM apps" in s]) == 1, statements
    assert elapsed < 1.0


def test_only_the_operator_starts_a_stack_build(
    real_api: RealApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = add_user(real_api, "ada@example.com")
    call(real_api, "POST", "/apps", ada, name="ada-app")
    # A host whose dynos run in containers and that lacks the stack: stack:set builds it.
    monkeypatch.setattr(capability, "load", lambda _settings: capability.Isolation("crun", "", ""))
    monkeypatch.setattr(stacks, "status", lambda name: StackStatus(name, "not built"))
    # Never a real build (it would take the host's shared stacks for many minutes).
    monkeypatch.setattr(
        stack_api, "start_build", lambda *_: pytest.fail("a user started a stack build")
    )
    before = call(real_api, "GET", "/apps/ada-app", ada).get_json()["stack"]
    refused = call(real_api, "PATCH", "/apps/ada-app", ada, stack="debian-12")
    assert refused.status_code == 403
    assert "only the operator may build it" in refused.get_json()["message"]
    assert call(real_api, "GET", "/apps/ada-app", ada).get_json()["stack"] == before
    assert stacks.pending(real_api.settings.run_dir, "ada-app") is None  # nothing asked


def test_every_api_worker_counts_calls_in_the_same_bucket(
    real_api: RealApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = add_user(real_api, "ada@example.com")
    monkeypatch.setattr(auth, "CALLS", ratelimit.CallPolicy(capacity=4, per_seconds=3600))
    other_worker = RealApi(create_app(real_api.settings), real_api.settings)
    seen = [
        call(api, "GET", "/account", ada).headers.get("RateLimit-Remaining")
        for api in (real_api, other_worker, real_api, other_worker)
    ]
    assert seen == ["3", "2", "1", "0"]
    assert call(other_worker, "GET", "/account", ada).status_code == 429
    assert call(real_api, "GET", "/account", ada).status_code == 429


def test_another_users_add_on_cannot_be_seen_attached_or_detached(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, domain="paas.localhost", containers=False, shared_uid=True)
    flask_app = create_app(settings)
    pg = FakeService("postgresql", "DATABASE", ("heroku-postgresql",))
    flask_app.extensions[addons_api.SERVICES_KEY] = {"postgresql": pg}
    Store(settings.db_path).add_token(TOKEN, "admin")
    api = RealApi(flask_app, settings)
    ada, bob = add_user(api, "ada@example.com"), add_user(api, "bob@example.com")
    call(api, "POST", "/apps", ada, name="ada-app")
    call(api, "POST", "/apps", bob, name="bob-app")
    api.release("ada-app", {"web": "serve"}, "succeeded")
    made = call(api, "POST", "/apps/ada-app/addons", ada, plan="heroku-postgresql:hobby")
    assert made.status_code == 201
    name = made.get_json()["name"]
    (attachment,) = call(api, "GET", "/apps/ada-app/addon-attachments", ada).get_json()
    for method, path, body in (
        ("GET", f"/addons/{name}", {}),
        ("GET", f"/addons/{name}/addon-attachments", {}),
        ("POST", "/addon-attachments", {"addon": name, "app": "bob-app"}),
        ("POST", "/addon-attachments", {"addon": name, "app": "ada-app"}),
        ("DELETE", f"/addon-attachments/{attachment['id']}", {}),
    ):
        answer = call(api, method, path, bob, **body)
        assert answer.status_code == 404, (method, path, answer.get_json())
    assert "DATABASE_URL" not in call(api, "GET", "/apps/bob-app/config-vars", bob).get_json()
    assert len(call(api, "GET", "/apps/ada-app/addon-attachments", ada).get_json()) == 1


def test_one_identity_per_caller_in_account_owner_and_release_user(real_api: RealApi) -> None:
    """The operator and a user each have one id, whichever answer names them (the releases
    once derived another id for the operator than /account gave)."""
    ada = add_user(real_api, "ada@example.com")
    for token, app in ((TOKEN, "ops-app"), (ada, "ada-app")):
        assert call(real_api, "POST", "/apps", token, name=app).status_code == 201
        assert call(real_api, "PATCH", f"/apps/{app}/config-vars", token, K="v").status_code == 200
        me = call(real_api, "GET", "/account", token).get_json()
        shown = call(real_api, "GET", f"/apps/{app}", token).get_json()
        [release] = call(real_api, "GET", f"/apps/{app}/releases", token).get_json()
        assert shown["owner"]["id"] == release["user"]["id"] == me["id"], (app, me)
