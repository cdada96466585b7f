"""An add-on attached from an app the caller cannot see, through the real API: nothing
shown to them names that app or gives its id (Heroku's `app` of the add-on is null)."""

from __future__ import annotations

import json
from pathlib import Path

from real_api import TOKEN, RealApi
from test_addons_api import FakeService
from test_users_api import add_user, call

from paas.api import addons as addons_api
from paas.api import create_app
from paas.domain.settings import Settings
from paas.state.store import Store


def test_an_add_on_from_an_unseen_app_never_names_it(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, domain="paas.localhost", containers=False, shared_uid=True)
    flask_app = create_app(settings)
    flask_app.extensions[addons_api.SERVICES_KEY] = {
        "postgresql": FakeService("postgresql", "DATABASE", ("heroku-postgresql",))
    }
    Store(settings.db_path).add_token(TOKEN, "admin")
    api = RealApi(flask_app, settings)
    ada, bob = add_user(api, "ada@example.com"), add_user(api, "bob@example.com")
    for app in ("secret-internal", "shop"):
        assert call(api, "POST", "/apps", ada, name=app).status_code == 201
    hidden = call(api, "GET", "/apps/secret-internal", ada).get_json()["id"]
    made = call(api, "POST", "/apps/secret-internal/addons", ada, plan="heroku-postgresql:hobby")
    assert made.status_code == 201
    name = made.get_json()["name"]
    attached = call(api, "POST", "/addon-attachments", ada, addon=name, app="shop")
    assert attached.status_code == 201
    shared = call(
        api, "POST", "/teams/apps/shop/collaborators", ada,
        user="bob@example.com", permissions=["view"],
    )  # fmt: skip
    assert shared.status_code == 201
    assert call(api, "GET", "/apps/secret-internal", bob).status_code == 404
    answers = {
        path: call(api, method, path, bob, **body)
        for method, path, body in (
            ("GET", "/apps/shop/addons", {}),
            ("GET", f"/apps/shop/addons/{name}", {}),
            ("GET", "/apps/shop/addon-attachments", {}),
            ("GET", "/addon-attachments", {}),
            ("GET", "/addons", {}),
            ("POST", "/actions/addon-attachments/resolve", {"addon_attachment": "DATABASE",
                                                            "app": "shop"}),
        )
    }  # fmt: skip
    for path, answer in answers.items():
        assert answer.status_code == 200, (path, answer.get_json())
        text = json.dumps(answer.get_json())
        assert "secret-internal" not in text and hidden not in text, (path, text)
    (addon,) = answers["/apps/shop/addons"].get_json()
    assert addon["app"] == {"id": None, "name": None}
    assert [a["app"]["name"] for a in addon["attachments"]] == ["shop"]
    (attachment,) = answers["/apps/shop/addon-attachments"].get_json()
    assert attachment["addon"]["app"] == {"id": None, "name": None}
    owner = call(api, "GET", "/apps/shop/addons", ada).get_json()[0]  # the owner sees it all
    assert owner["app"] == {"id": hidden, "name": "secret-internal"}
    assert {a["app"]["name"] for a in owner["attachments"]} == {"secret-internal", "shop"}
