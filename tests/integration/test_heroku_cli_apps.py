"""Heroku's own CLI drives paas's apps, config vars, domains, buildpacks and add-ons: each
command's output, and its effect on the platform (the API's answer, what the router serves).

The tests share one platform and run in order: `shop` is created, deployed and configured
by the first ones, renamed to `store` near the end, then destroyed.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from heroku_cli import HerokuCli
from platform_harness import Platform, wait_for

pytestmark = pytest.mark.integration
APP, RENAMED = "shop", "store"


@pytest.fixture(scope="module")
def cli(platform: Platform) -> HerokuCli:
    return HerokuCli(platform)


def api(platform: Platform, path: str) -> object:
    status, body = platform.request("GET", path)
    assert status == 200, (path, status, body)
    return body


def items(platform: Platform, path: str) -> list[dict[str, Any]]:
    found = api(platform, path)
    assert isinstance(found, list)
    return found


def both(result: object) -> str:
    return f"{getattr(result, 'stdout', '')}{getattr(result, 'stderr', '')}"


def serving(platform: Platform, app: str, key: str, value: str, timeout: float = 60) -> None:
    wait_for(
        lambda: (platform.get_json(app) or {}).get(key) == value,
        timeout,
        f"{app} to serve {key}={value}",
    )


def test_apps_create_makes_the_app_in_the_local_region(platform: Platform, cli: HerokuCli) -> None:
    created = cli("apps:create", APP, "--region", "local", "--stack", "debian-13")
    assert f"Creating {APP}... done, region is local, stack is debian-13" in both(created)
    assert f"http://{APP}.paas.localhost:{platform.http_port}/" in created.stdout
    shown = api(platform, f"/apps/{APP}")
    assert isinstance(shown, dict) and shown["stack"]["name"] == "debian-13"


def test_apps_create_refuses_another_region_and_makes_nothing(
    platform: Platform, cli: HerokuCli
) -> None:
    refused = cli("apps:create", "faraway", "--region", "eu", check=False)
    assert refused.returncode != 0 and "unknown region 'eu'" in both(refused)
    assert platform.request("GET", "/apps/faraway")[0] == 404


def test_apps_lists_the_callers_apps(cli: HerokuCli) -> None:
    listed = cli("apps")
    assert APP in listed.stdout.split()
    assert [a["name"] for a in json.loads(cli("apps", "--json").stdout)] == [APP]


def test_config_set_after_a_deploy_is_served(platform: Platform, cli: HerokuCli) -> None:
    pushed = platform.push(APP, platform.new_repo("shop-src"))
    assert pushed.returncode == 0, pushed.stderr
    serving(platform, APP, "message", "Hello from paas")
    result = cli("config:set", "GREETING=hello from heroku", "-a", APP)
    # the version is the releases helper's (Range desc on /releases): any vN here
    assert re.search(r"Setting GREETING and restarting shop\.\.\. done, v\d", both(result))
    assert "GREETING: hello from heroku" in result.stdout
    serving(platform, APP, "message", "hello from heroku")


def test_config_and_config_get_show_the_value(cli: HerokuCli) -> None:
    shown = cli("config", "-a", APP)
    assert "=== shop Config Vars" in shown.stdout
    assert "GREETING: hello from heroku" in shown.stdout
    assert cli("config:get", "GREETING", "-a", APP).stdout.strip() == "hello from heroku"


def test_config_unset_removes_it(platform: Platform, cli: HerokuCli) -> None:
    result = cli("config:unset", "GREETING", "-a", APP)
    assert re.search(r"Unsetting GREETING and restarting shop\.\.\. done, v\d", both(result))
    config = api(platform, f"/apps/{APP}/config-vars")
    assert isinstance(config, dict) and "GREETING" not in config
    serving(platform, APP, "message", "Hello from paas")


def test_apps_info_shows_the_app(platform: Platform, cli: HerokuCli) -> None:
    info = cli("apps:info", "-a", APP).stdout
    assert "=== shop" in info
    for line in (
        f"Git URL:        {platform.api_url}/shop.git",
        f"Web URL:        http://shop.paas.localhost:{platform.http_port}/",
        "Owner:          admin",
        "Region:         local",
        "Stack:          debian-13",
        "Dynos:          web: 1",
    ):
        assert line in info, info
    shell = cli("apps:info", "-a", APP, "--shell").stdout
    assert "stack=debian-13" in shell and "region=local" in shell


def test_domains_add_lists_and_routes_the_domain(platform: Platform, cli: HerokuCli) -> None:
    added = cli("domains:add", "www.shop.example", "-a", APP)
    assert "point to the DNS Target shop.paas.localhost" in both(added)
    listed = cli("domains", "-a", APP).stdout
    assert listed.split()[:5] == ["===", "shop", "Heroku", "Domain", "shop.paas.localhost"]
    assert "www.shop.example" in listed and "CNAME" in listed
    wait_for(lambda: get_host(platform, "www.shop.example")[0] == 200, 30, "the domain routed")
    assert json.loads(get_host(platform, "www.shop.example")[1])["message"] == "Hello from paas"


def test_domains_remove_by_hostname_and_by_id(platform: Platform, cli: HerokuCli) -> None:
    removed = cli("domains:remove", "www.shop.example", "-a", APP)
    assert "Removing www.shop.example from shop... done" in both(removed)
    domains = f"/apps/{APP}/domains"
    assert [d["hostname"] for d in items(platform, domains)] == ["shop.paas.localhost"]
    wait_for(lambda: get_host(platform, "www.shop.example")[0] != 200, 30, "the domain unrouted")
    cli("domains:add", "api.shop.example", "-a", APP)
    added = [d for d in items(platform, domains) if d["kind"] == "custom"]
    cli("domains:remove", added[0]["id"], "-a", APP)
    assert [d["kind"] for d in items(platform, domains)] == ["heroku"]


def test_buildpacks_set_and_list(platform: Platform, cli: HerokuCli) -> None:
    assert "shop has no Buildpacks." in cli("buildpacks", "-a", APP).stdout
    url = "https://github.com/heroku/heroku-buildpack-python"
    result = cli("buildpacks:set", url, "-a", APP)
    assert f"Buildpack set. Next release on shop will use {url}." in result.stdout
    listed = cli("buildpacks", "-a", APP).stdout
    assert "=== shop Classic Buildpack" in listed and url in listed
    installed = items(platform, f"/apps/{APP}/buildpack-installations")
    assert [b["buildpack"]["url"] for b in installed] == [url]
    cli("buildpacks:clear", "-a", APP)


def test_buildpacks_set_a_registry_name_fails_clearly_offline(cli: HerokuCli) -> None:
    refused = cli("buildpacks:set", "heroku/python", "-a", APP, check=False)
    assert refused.returncode != 0 and refused.stderr.strip()
    assert "has no Buildpacks" in cli("buildpacks", "-a", APP).stdout


SERVERS = shutil.which("redis-server") is not None and Path("/usr/lib/postgresql").exists()
needs_servers = pytest.mark.skipif(not SERVERS, reason="needs PostgreSQL (make setup)")


@needs_servers
def test_addons_create_provisions_a_database(platform: Platform, cli: HerokuCli) -> None:
    created = cli("addons:create", "heroku-postgresql", "-a", APP, timeout=180)
    assert re.search(r"Creating heroku-postgresql on shop\.\.\. free", both(created))
    assert "Created postgresql-" in both(created) and "as DATABASE_URL" in both(created)
    config = api(platform, f"/apps/{APP}/config-vars")
    assert isinstance(config, dict) and config["DATABASE_URL"].startswith("postgres")


@needs_servers
def test_addons_lists_the_apps_addons(cli: HerokuCli) -> None:
    listed = cli("addons", "-a", APP).stdout
    assert "heroku-postgresql" not in listed  # the service is paas's own postgresql
    assert re.search(r"postgresql \(postgresql-\S+\)\s+hobby\s+free\s+free\s+created", listed)
    assert "as DATABASE" in listed
    everything = cli("addons", "--all").stdout
    assert re.search(
        r"shop\s+postgresql-\S+\s+postgresql:hobby\s+free\s+free\s+created", everything
    )


@needs_servers
def test_addons_info_by_name_and_by_attachment(platform: Platform, cli: HerokuCli) -> None:
    name = addon_name(platform)
    for ref in (name, "DATABASE"):
        info = cli("addons:info", ref, "-a", APP).stdout
        assert f"=== {name}" in info, info
        assert "Plan:         postgresql:hobby" in info
        assert "Attachments:  shop::DATABASE" in info
        assert "Owning app:   shop" in info and "State:        created" in info


@needs_servers
def test_addons_attach_and_detach(platform: Platform, cli: HerokuCli) -> None:
    name = addon_name(platform)
    # A second name on its own app: an app with a release (the CLI reads the newest after)
    attached = cli("addons:attach", name, "-a", APP, "--as", "SHOP_DB")
    assert f"Attaching {name} as SHOP_DB to {APP}... done" in both(attached)
    assert re.search(
        r"Setting SHOP_DB config vars and restarting shop\.\.\. done, v\d", both(attached)
    )
    config = api(platform, f"/apps/{APP}/config-vars")
    assert isinstance(config, dict) and config["SHOP_DB_URL"] == config["DATABASE_URL"]
    detached = cli("addons:detach", "SHOP_DB", "-a", APP)
    assert f"Detaching SHOP_DB to {name} from {APP}... done" in both(detached)
    config = api(platform, f"/apps/{APP}/config-vars")
    assert isinstance(config, dict) and "SHOP_DB_URL" not in config and "DATABASE_URL" in config


def test_apps_rename_moves_the_app_and_keeps_it_serving(platform: Platform, cli: HerokuCli) -> None:
    cli("apps:create", "taken")
    refused = cli("apps:rename", "taken", "-a", APP, check=False)
    assert refused.returncode != 0 and "already exists" in both(refused)
    assert platform.request("GET", f"/apps/{APP}")[0] == 200
    result = cli("apps:rename", RENAMED, "-a", APP)
    assert f"http://{RENAMED}.paas.localhost:{platform.http_port}/" in result.stdout
    assert platform.request("GET", f"/apps/{APP}")[0] == 404
    serving(platform, RENAMED, "message", "Hello from paas")
    wait_for(lambda: platform.get(APP)[0] != 200, 30, "the old hostname to stop answering")
    logs = cli("logs", "-a", RENAMED, "-n", "200", check=False).stdout
    assert "Renamed from shop to store" in logs or logs == ""
    pushed = platform.push(RENAMED, platform.base / "shop-src")  # the repo moved with it
    assert pushed.returncode == 0, pushed.stderr


@needs_servers
def test_addons_destroy_removes_the_database(platform: Platform, cli: HerokuCli) -> None:
    name = addon_name(platform, RENAMED)
    refused = cli("addons:destroy", name, "-a", RENAMED, "--confirm", "nope", check=False)
    assert refused.returncode != 0 and len(items(platform, "/addons")) == 1
    destroyed = cli("addons:destroy", name, "-a", RENAMED, "--confirm", RENAMED, timeout=120)
    assert f"Destroying {name} on {RENAMED}... done" in both(destroyed)
    assert items(platform, "/addons") == []
    config = api(platform, f"/apps/{RENAMED}/config-vars")
    assert isinstance(config, dict) and "DATABASE_URL" not in config


def addon_name(platform: Platform, app: str = APP) -> str:
    found = [a["name"] for a in items(platform, f"/apps/{app}/addons")]
    assert len(found) == 1, found
    return str(found[0])


def test_apps_destroy_removes_the_app(platform: Platform, cli: HerokuCli) -> None:
    refused = cli("apps:destroy", "-a", "taken", "--confirm", "other", check=False)
    assert refused.returncode != 0
    result = cli("apps:destroy", "-a", "taken", "--confirm", "taken")
    assert "Destroying taken" in both(result) or "taken" in both(result)
    assert platform.request("GET", "/apps/taken")[0] == 404
    assert "taken" not in cli("apps").stdout.split()


def get_host(platform: Platform, host: str) -> tuple[int, str]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", platform.http_port, timeout=5)
    try:
        connection.request("GET", "/", headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()
