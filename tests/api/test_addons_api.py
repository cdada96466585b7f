"""The add-on resources through the real API (Heroku's shapes) and the real CLI over HTTP,
on a real store, with a hand-written service in place of the servers (the real ones:
tests/integration/test_addons.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from real_api import TOKEN, RealApi
from werkzeug.serving import make_server

from paas.addons.service import Plan
from paas.api import addons as addons_api
from paas.api import create_app
from paas.cli import addons as _addons  # noqa: F401  (registers addons:*)
from paas.cli.commands import cli
from paas.domain import identity
from paas.domain.settings import Settings
from paas.state.store import Store

PLANS = {"hobby": Plan("hobby", 64, 20, "for trying"), "standard": Plan("standard", 256, 100, "")}


class FakeService:
    def __init__(self, name: str, default: str, aliases: tuple[str, ...]) -> None:
        self.name, self.default_attachment, self.aliases = name, default, aliases
        self.plans, self.default_plan = PLANS, "hobby"
        self.live: set[str] = set()

    def provision(self, addon_id: str, plan: Plan) -> str:
        self.live.add(addon_id)
        return f"{self.name}://u:pw@127.0.0.1:1/{addon_id}"

    def deprovision(self, addon_id: str) -> None:
        self.live.discard(addon_id)

    def endpoint(self, addon_id: str) -> tuple[str, int]:
        return "127.0.0.1", 1


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[RealApi, FakeService]]:
    settings = Settings(home=tmp_path, domain="paas.localhost", containers=False, shared_uid=True)
    flask_app = create_app(settings)
    pg = FakeService("postgresql", "DATABASE", ("heroku-postgresql",))
    redis = FakeService("redis", "REDIS", ("heroku-redis",))
    flask_app.extensions[addons_api.SERVICES_KEY] = {"postgresql": pg, "redis": redis}
    Store(settings.db_path).add_token(TOKEN, "admin")
    yield RealApi(flask_app, settings), pg


def call(api: RealApi, method: str, path: str, body: object = None) -> tuple[int, Any]:
    response = api.client.open(
        path, method=method, json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    return response.status_code, response.get_json()


def test_create_list_show_attach_detach_destroy(api: tuple[RealApi, FakeService]) -> None:
    real, pg = api
    for name in ("shop", "reports"):
        assert call(real, "POST", "/apps", {"name": name})[0] == 201
    real.release("shop", {"web": "serve"}, "succeeded")
    status, addon = call(real, "POST", "/apps/shop/addons", {"plan": "heroku-postgresql:hobby"})
    assert status == 201 and isinstance(addon, dict)
    service_id = identity.derived_id("addon-service", "postgresql")
    assert addon["addon_service"] == {"id": service_id, "name": "postgresql"}
    assert addon["plan"]["name"] == "postgresql:hobby" and addon["plan"]["memory_mb"] == 64
    assert addon["app"]["name"] == "shop" and addon["state"] == "provisioned"
    assert addon["config_vars"] == ["DATABASE_URL"]
    releases = call(real, "GET", "/apps/shop/releases")[1]
    assert isinstance(releases, list)
    assert releases[-1]["description"] == f"Attach DATABASE (@ref:{addon['name']})"
    assert call(real, "GET", f"/addons/{addon['name']}")[1] == addon
    assert [a["id"] for a in call(real, "GET", "/apps/shop/addons")[1]] == [addon["id"]]

    status, refused = call(
        real, "PATCH", "/apps/shop/config-vars", {"DATABASE_URL": "postgres://elsewhere"}
    )
    assert status == 409 and "set by an add-on attachment" in refused["message"]

    status, attachment = call(
        real, "POST", "/addon-attachments", {"addon": addon["name"], "app": "reports"}
    )
    assert status == 201 and attachment["name"] == "DATABASE"
    assert call(real, "GET", "/apps/reports/config-vars")[1] == {
        "DATABASE_URL": f"postgresql://u:pw@127.0.0.1:1/{addon['id']}"
    }
    status, refused = call(real, "DELETE", f"/apps/shop/addons/{addon['id']}?confirm=shop")
    assert status == 409 and "still attached to reports (as DATABASE)" in refused["message"]
    status, refused = call(real, "DELETE", "/apps/shop")
    assert status == 409 and "app shop owns" in refused["message"]
    assert call(real, "GET", "/apps/shop")[0] == 200 and addon["id"] in pg.live

    assert call(real, "DELETE", f"/addon-attachments/{attachment['id']}")[0] == 200
    assert call(real, "GET", "/apps/reports/config-vars")[1] == {}
    status, refused = call(real, "DELETE", f"/apps/shop/addons/{addon['id']}?confirm=shoq")
    assert status == 422 and "--confirm shop" in refused["message"]
    assert call(real, "DELETE", f"/apps/shop/addons/{addon['id']}?confirm=shop")[0] == 200
    assert call(real, "GET", "/addons")[1] == [] and pg.live == set()
    assert "DATABASE_URL" not in call(real, "GET", "/apps/shop/config-vars")[1]


def test_bad_input_is_one_line_and_changes_nothing(api: tuple[RealApi, FakeService]) -> None:
    real, pg = api
    call(real, "POST", "/apps", {"name": "shop"})
    for body, words in [
        ({}, "plan is required"),
        ({"plan": "mysql"}, "unknown add-on service 'mysql'"),
        ({"plan": "postgresql:huge"}, "unknown plan 'huge'"),
        ({"plan": "redis", "attachment": {"name": "1X"}}, "invalid attachment name"),
        ({"plan": "redis", "name": "Bad Name"}, "invalid add-on name"),
    ]:
        status, error = call(real, "POST", "/apps/shop/addons", body)
        assert status == 422 and words in error["message"], error
    assert call(real, "GET", "/addons")[1] == [] and pg.live == set()


def test_destroying_an_app_destroys_its_addons(api: tuple[RealApi, FakeService]) -> None:
    real, pg = api
    call(real, "POST", "/apps", {"name": "shop"})
    call(real, "POST", "/apps/shop/addons", {"plan": "postgresql"})
    call(real, "POST", "/apps/shop/addons", {"plan": "redis"})
    assert len(pg.live) == 1
    assert call(real, "DELETE", "/apps/shop")[0] == 200
    assert call(real, "GET", "/addons")[1] == [] and pg.live == set()


@pytest.fixture
def served(api: tuple[RealApi, FakeService], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    real, _ = api
    server = make_server("127.0.0.1", 0, real.app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    monkeypatch.setenv("PAAS_API_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("PAAS_API_TOKEN", TOKEN)
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def paas(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_the_cli_commands(api: tuple[RealApi, FakeService], served: str) -> None:
    real, _ = api
    for name in ("shop", "reports"):
        call(real, "POST", "/apps", {"name": name})
    real.release("shop", {"web": "serve"}, "succeeded")
    code, out = paas("addons:create", "heroku-postgresql", "--plan", "standard", "-a", "shop")
    assert code == 0, out
    assert "Created postgresql-" in out and "as DATABASE_URL, v2" in out
    name = out.split("Created ")[1].split()[0]
    code, out = paas(
        "addons:create", "redis", "--as", "cache", "--name", "shop-cache", "-a", "shop"
    )
    assert code == 0 and "Created shop-cache as CACHE_URL" in out, out
    code, out = paas("addons", "-a", "shop")
    assert code == 0 and f"shop        {name}" in out and " └─ as shop::DATABASE" in out, out
    code, out = paas("addons:info", name)
    assert "Plan:" in out and "postgresql:standard" in out and "256 MB, 100 connections" in out
    code, out = paas("addons:info", "DATABASE", "-a", "shop")
    assert code == 0 and f"=== {name}" in out, out
    code, out = paas("addons:attach", name, "-a", "reports", "--as", "SHOP_DB")
    assert code == 0 and "Setting SHOP_DB_URL config vars" in out, out
    code, out = paas("addons:destroy", name, "--confirm", "shop")
    assert code == 1 and "still attached to reports (as SHOP_DB)" in out, out
    code, out = paas("addons:detach", "SHOP_DB", "-a", "reports")
    assert code == 0 and f"Detaching SHOP_DB to {name} from reports... done" in out, out
    code, out = paas("addons:destroy", name)
    assert code == 1 and "--confirm shop" in out, out
    code, out = paas("addons:destroy", name, "--confirm", "shop")
    assert code == 0 and f"Destroying {name} on shop... done" in out, out
    code, out = paas("addons", "--all")
    assert "shop-cache" in out and name not in out


def test_herokus_cli_requests_services_plans_and_resolvers(
    api: tuple[RealApi, FakeService],
) -> None:
    """What `heroku addons:create/info/attach/detach/services/plans` send, as they send it."""
    real, _ = api
    assert call(real, "POST", "/apps", {"name": "shop"})[0] == 201
    real.release("shop", {"web": "serve"}, "succeeded")
    body = {"plan": {"name": "heroku-postgresql"}, "config": {}, "attachment": {"name": None}}
    status, addon = call(real, "POST", "/apps/shop/addons", body)
    assert status == 201 and addon["plan"]["price"] == {
        "cents": 0,
        "contract": False,
        "unit": "month",
    }
    refused = call(real, "POST", "/apps/shop/addons", {**body, "config": {"version": "16"}})
    assert refused[0] == 422 and len(call(real, "GET", "/addons")[1]) == 1
    services = call(real, "GET", "/addon-services")[1]
    assert sorted(s["name"] for s in services) == ["postgresql", "redis"]
    plans = call(real, "GET", "/addon-services/heroku-postgresql/plans")[1]
    assert [p["name"] for p in plans] == ["postgresql:hobby", "postgresql:standard"]
    by_id = call(real, "GET", f"/addon-services/{addon['addon_service']['id']}")[1]
    assert by_id["name"] == "postgresql"
    for ref in ("DATABASE", addon["name"], addon["id"]):
        status, found = call(real, "POST", "/actions/addons/resolve", {"addon": ref, "app": "shop"})
        assert status == 200 and [a["id"] for a in found] == [addon["id"]], ref
    status, missing = call(real, "POST", "/actions/addons/resolve", {"addon": "nope", "app": None})
    assert status == 404 and missing["resource"] == "add_on"
    body = {"addon_attachment": "DATABASE", "app": "shop"}
    status, attachments = call(real, "POST", "/actions/addon-attachments/resolve", body)
    assert status == 200 and attachments[0]["addon"]["id"] == addon["id"]
    listed = call(real, "GET", "/addon-attachments")[1]
    assert [(a["app"]["name"], a["name"]) for a in listed] == [("shop", "DATABASE")]
    body = {"addon": {"name": addon["name"]}, "app": {"name": "shop"}, "name": "SECOND"}
    status, second = call(real, "POST", "/addon-attachments", body)
    assert status == 201 and second["name"] == "SECOND"
    assert call(real, "GET", "/apps/shop/addon-attachments/SECOND")[1]["id"] == second["id"]
    assert call(real, "DELETE", f"/addon-attachments/{second['id']}")[0] == 200
