"""Heroku's own CLI reaches a paas platform at all: the harness every Heroku CLI test uses."""

from __future__ import annotations

import pytest
from heroku_cli import HerokuCli
from platform_harness import Platform

pytestmark = pytest.mark.integration


def test_heroku_apps_create_makes_the_app_on_paas(platform: Platform) -> None:
    cli = HerokuCli(platform)
    created = cli("apps:create", "smoke-shop")
    assert "Creating smoke-shop... done" in created.stderr + created.stdout
    status, app = platform.request("GET", "/apps/smoke-shop")
    assert status == 200 and isinstance(app, dict) and app["name"] == "smoke-shop"
