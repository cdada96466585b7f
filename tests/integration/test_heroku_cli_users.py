"""Heroku's own CLI (unmodified) on paas users and access: `auth:whoami`, `authorizations`
(`:create`, `:info`, `:rotate`, `:revoke`), `access`, `access:add`, `access:remove` and
`apps:transfer`, each checked for what it prints and what it changed on the platform.
"""

from __future__ import annotations

import pytest
from heroku_cli import HerokuCli
from platform_harness import Platform

pytestmark = pytest.mark.integration


def add_user(platform: Platform, email: str) -> str:
    status, made = platform.request_json("POST", "/users", {"email": email})
    assert status == 201 and isinstance(made, dict), made
    return str(made["token"])


def sees(platform: Platform, token: str, app: str) -> int:
    return platform.request("GET", f"/apps/{app}", token)[0]


def test_auth_whoami_prints_the_tokens_email(platform: Platform) -> None:
    cli = HerokuCli(platform)
    assert cli("auth:whoami").stdout.strip() == "admin"
    token = add_user(platform, "whoami@example.com")
    assert cli.as_user(token)("auth:whoami").stdout.strip() == "whoami@example.com"
    refused = cli.as_user("not-a-token-" + "x" * 20)("auth:whoami", check=False)
    assert refused.returncode != 0 and "the API token was not accepted" in refused.stderr


def test_authorizations_create_info_list_and_revoke(platform: Platform) -> None:
    token = add_user(platform, "tokens@example.com")
    cli = HerokuCli(platform).as_user(token)
    made = cli("authorizations:create", "--description", "deploy bot", "--expires-in", "3600")
    lines = dict(
        line.split(":", 1) for line in made.stdout.splitlines() if ":" in line and line[0] != " "
    )
    new_token, new_id = lines["Token"].strip(), lines["ID"].strip()
    assert lines["Description"].strip() == "deploy bot" and "Expires at" in lines
    assert platform.request("GET", "/account", new_token)[0] == 200
    short = cli("authorizations:create", "--short", "-d", "short one").stdout.strip()
    assert platform.request("GET", "/account", short)[0] == 200

    listed = cli("authorizations").stdout
    assert "deploy bot" in listed and new_id in listed and "first token" in listed
    assert new_token not in listed and "global" in listed

    info = cli("authorizations:info", new_id).stdout
    assert new_id in info and "deploy bot" in info and new_token not in info

    rotated = cli("authorizations:rotate", new_id).stdout
    fresh = next(
        line.split(":", 1)[1].strip() for line in rotated.splitlines() if line.startswith("Token")
    )
    assert fresh != new_token and new_id in rotated
    assert platform.request("GET", "/account", new_token)[0] == 401
    assert platform.request("GET", "/account", fresh)[0] == 200
    new_token = fresh

    revoked = cli("authorizations:revoke", new_id)
    assert "revoked authorization from deploy bot" in revoked.stdout + revoked.stderr
    assert platform.request("GET", "/account", new_token)[0] == 401
    assert new_id not in cli("authorizations").stdout
    other = add_user(platform, "other-tokens@example.com")
    mine = HerokuCli(platform).as_user(other)("authorizations:info", new_id, check=False)
    assert mine.returncode != 0  # another user's authorization is not found


def test_access_add_list_and_remove(platform: Platform) -> None:
    owner = add_user(platform, "owner@example.com")
    friend = add_user(platform, "friend@example.com")
    cli = HerokuCli(platform).as_user(owner)
    cli("apps:create", "shared-shop")
    assert sees(platform, friend, "shared-shop") == 404

    added = cli("access:add", "friend@example.com", "-a", "shared-shop")
    assert "Adding friend@example.com access to the app shared-shop" in added.stderr
    assert sees(platform, friend, "shared-shop") == 200

    listed = cli("access", "-a", "shared-shop").stdout
    rows = {line.split()[0]: line.split()[1:] for line in listed.splitlines() if "@" in line}
    assert rows["owner@example.com"][0] == "owner"
    assert rows["friend@example.com"][0] == "collaborator"
    assert "deploy" in listed and "view" in listed

    removed = cli("access:remove", "friend@example.com", "-a", "shared-shop")
    assert "Removing friend@example.com access from the app shared-shop" in removed.stderr
    assert sees(platform, friend, "shared-shop") == 404
    assert "friend@example.com" not in cli("access", "-a", "shared-shop").stdout
    hidden = HerokuCli(platform).as_user(friend)("access", "-a", "shared-shop", check=False)
    assert hidden.returncode != 0 and "not found" in hidden.stderr


def test_apps_transfer_to_another_user(platform: Platform) -> None:
    giver = add_user(platform, "giver@example.com")
    taker = add_user(platform, "taker@example.com")
    cli = HerokuCli(platform).as_user(giver)
    cli("apps:create", "gift-shop")
    moved = cli("apps:transfer", "taker@example.com", "-a", "gift-shop")
    assert "Initiating transfer of gift-shop to taker@example.com" in moved.stderr
    assert sees(platform, giver, "gift-shop") == 404
    assert sees(platform, taker, "gift-shop") == 200
