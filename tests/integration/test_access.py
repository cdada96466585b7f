"""Access between users on a real platform: two users, each with an app, pushed with real
`git push`; neither can see, read the config of, scale, push to, roll back or destroy the
other's app (404) until `paas access:add` grants a permission, and then exactly what that
permission allows; revoked and expired tokens fail at once; the admin token still manages
everything; `paas audit` shows who changed what.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from platform_harness import PAAS, Platform, commit, git, running, wait_for

pytestmark = pytest.mark.integration


@dataclass
class User:
    """A user of the platform signed in with `paas login` in their own HOME."""

    email: str
    token: str
    env: dict[str, str]
    platform: Platform

    def paas(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(PAAS), *args],
            env=self.env,
            cwd=self.env["HOME"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{self.email}: paas {' '.join(args)}: {done.stderr}")
        return done

    def refused(self, *args: str) -> str:
        """Runs a paas command that must fail; its error line."""
        done = self.paas(*args, check=False)
        assert done.returncode != 0, f"{self.email}: paas {' '.join(args)} worked: {done.stdout}"
        return done.stderr

    def push(self, app: str, repo: Path) -> subprocess.CompletedProcess[str]:
        return self.platform.push(app, repo, self.token)


def tiny_repo(platform: Platform, name: str) -> Path:
    """A Python app with nothing to install: the quickest real build."""
    repo = platform.base / name
    repo.mkdir()
    (repo / "requirements.txt").write_text("")
    (repo / "Procfile").write_text("web: exec python3 -m http.server $PORT\n")
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "tiny app")
    return repo


def sign_up(platform: Platform, email: str) -> User:
    """`paas users:add` as the operator, then `paas login` (email and token on stdin)."""
    added = platform.paas("users:add", email, "--json")
    token = json.loads(added.stdout)["token"]
    home = platform.base / email.partition("@")[0]
    home.mkdir()
    env = {k: v for k, v in platform.env.items() if k not in ("PAAS_API_TOKEN",)}
    env["HOME"] = str(home)
    login = subprocess.run(
        [str(PAAS), "login"],
        input=f"{email}\n{token}\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert login.returncode == 0, login.stderr
    assert f"as {email}" in login.stdout
    return User(email, token, env, platform)


@dataclass
class World:
    platform: Platform
    ada: User
    bob: User
    ada_repo: Path
    bob_repo: Path


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with running(PAAS_CONTAINERS="off") as platform:
        ada, bob = sign_up(platform, "ada@example.com"), sign_up(platform, "bob@example.com")
        ada_repo, bob_repo = tiny_repo(platform, "ada-repo"), tiny_repo(platform, "bob-repo")
        ada.paas("apps:create", "ada-app", "--no-remote")
        bob.paas("apps:create", "bob-app", "--no-remote")
        for user, repo, app in ((ada, ada_repo, "ada-app"), (bob, bob_repo, "bob-app")):
            pushed = user.push(app, repo)
            assert pushed.returncode == 0, pushed.stderr
        yield World(platform, ada, bob, ada_repo, bob_repo)


def test_neither_user_can_touch_the_others_app(world: World) -> None:
    ada, bob = world.ada, world.bob
    assert bob.paas("auth:whoami").stdout.strip() == "bob@example.com"
    assert [a["name"] for a in json.loads(bob.paas("apps", "--json").stdout)] == ["bob-app"]
    for args in (
        ("apps:info", "-a", "ada-app"),
        ("config", "-a", "ada-app"),
        ("ps:scale", "web=2", "-a", "ada-app"),
        ("rollback", "v1", "-a", "ada-app"),
        ("apps:destroy", "-a", "ada-app", "--confirm", "ada-app"),
        ("access", "-a", "ada-app"),
    ):
        assert "'ada-app' not found" in bob.refused(*args), args
    pushed = bob.push("ada-app", world.bob_repo)
    assert pushed.returncode != 0 and "not found" in pushed.stderr
    assert "'bob-app' not found" in ada.refused("config", "-a", "bob-app")


def _formation(platform: Platform, app: str) -> dict[str, int]:
    status, found = platform.request("GET", f"/apps/{app}/formation")
    assert status == 200 and isinstance(found, list)
    return {str(f["type"]): int(f["quantity"]) for f in found}


def test_access_add_grants_exactly_the_permission_given(world: World) -> None:
    ada, bob = world.ada, world.bob
    added = ada.paas("access:add", "bob@example.com", "-a", "ada-app", "--permissions", "view")
    assert "with view" in added.stdout
    listed = ada.paas("access", "-a", "ada-app").stdout
    assert "ada@example.com" in listed and "owner" in listed
    assert "bob@example.com  collaborator  view" in listed
    # view: read everything but config values
    assert "ada-app" in bob.paas("apps:info", "-a", "ada-app").stdout
    assert "holds view on ada-app and this needs deploy" in bob.refused("config", "-a", "ada-app")
    assert bob.push("ada-app", world.bob_repo).returncode != 0
    assert "needs operate" in bob.refused("ps:scale", "web=2", "-a", "ada-app")
    # deploy: push, roll back, see config
    ada.paas("config:set", "GREETING=hello", "-a", "ada-app")
    ada.paas("access:update", "bob@example.com", "-a", "ada-app", "--permissions", "deploy")
    assert "GREETING" in bob.paas("config", "-a", "ada-app").stdout
    pushed = bob.push("ada-app", world.bob_repo)
    assert pushed.returncode == 0, pushed.stderr
    bob.paas("rollback", "v1", "-a", "ada-app")
    assert "needs operate" in bob.refused("ps:scale", "web=2", "-a", "ada-app")
    assert "needs manage" in bob.refused("config:set", "A=1", "-a", "ada-app")
    # operate: scale, restart
    ada.paas("access:update", "bob@example.com", "-a", "ada-app", "--permissions", "operate")
    bob.paas("ps:scale", "web=2", "-a", "ada-app")
    assert _formation(world.platform, "ada-app")["web"] == 2
    bob.paas("ps:restart", "-a", "ada-app")
    assert "needs manage" in bob.refused("config:set", "A=1", "-a", "ada-app")
    assert "needs manage" in bob.refused("apps:destroy", "-a", "ada-app", "--confirm", "ada-app")
    # manage: config vars, access, destroy
    ada.paas("access:update", "bob@example.com", "-a", "ada-app", "--permissions", "manage")
    bob.paas("config:set", "A=1", "-a", "ada-app")
    bob.paas("ps:scale", "web=1", "-a", "ada-app")
    ada.paas("access:remove", "bob@example.com", "-a", "ada-app")
    assert "'ada-app' not found" in bob.refused("apps:info", "-a", "ada-app")
    ada.paas("apps:create", "ada-spare", "--no-remote")
    ada.paas("access:add", "bob@example.com", "-a", "ada-spare", "--permissions", "manage")
    bob.paas("apps:destroy", "-a", "ada-spare", "--confirm", "ada-spare")
    assert "'ada-spare' not found" in ada.refused("apps:info", "-a", "ada-spare")


def test_a_revoked_or_expired_token_is_refused_at_once(world: World) -> None:
    ada = world.ada
    made = json.loads(
        ada.paas(
            "authorizations:create", "--description", "ci", "--expires-in", "2", "--json"
        ).stdout
    )
    short = made["access_token"]["token"]
    assert world.platform.request("GET", "/account", short)[0] == 200
    made_at = time.monotonic()
    wait_for(
        lambda: world.platform.request("GET", "/account", short)[0] == 401 or None,
        10,
        "the expired token to be refused",
    )
    assert time.monotonic() - made_at < 4  # refused once expired, not once a cache ages
    kept = json.loads(ada.paas("authorizations:create", "-d", "laptop", "--json").stdout)
    second = kept["access_token"]["token"]
    assert world.platform.request("GET", "/apps/ada-app", second)[0] == 200
    listed = ada.paas("authorizations").stdout
    assert "laptop" in listed and second not in listed and "ci" not in listed.split()
    assert "Revoked" in ada.paas("authorizations:revoke", kept["id"]).stdout
    assert world.platform.request("GET", "/apps/ada-app", second)[0] == 401


def test_the_admin_token_still_manages_everything(world: World) -> None:
    platform = world.platform
    status, apps = platform.request("GET", "/apps")
    assert status == 200 and isinstance(apps, list)
    assert {a["name"] for a in apps} >= {"ada-app", "bob-app"}
    platform.paas("config:set", "FROM_ADMIN=1", "-a", "bob-app")
    assert "FROM_ADMIN" in world.bob.paas("config", "-a", "bob-app").stdout
    platform.paas("access:add", "ada@example.com", "-a", "bob-app", "--permissions", "view")
    assert "bob-app" in world.ada.paas("apps:info", "-a", "bob-app").stdout
    assert "only the platform's operator" in world.ada.refused("users:add", "eve@example.com")
    listed = platform.paas("users").stdout
    assert "ada@example.com" in listed and "bob@example.com" in listed
    assert "only the platform's operator" in world.bob.refused("users")
    platform.paas("users:add", "eve@example.com")
    assert "Removed user eve@example.com" in platform.paas("users:remove", "eve@example.com").stdout
    assert "eve@example.com" not in platform.paas("users").stdout


def test_a_transfer_gives_the_app_away(world: World) -> None:
    bob, ada = world.bob, world.ada
    bob.paas("apps:create", "gift-app", "--no-remote")
    assert (
        "Transferred gift-app to ada@example.com"
        in bob.paas("apps:transfer", "ada@example.com", "-a", "gift-app").stdout
    )
    assert "'gift-app' not found" in bob.refused("apps:info", "-a", "gift-app")
    ada.paas("apps:destroy", "-a", "gift-app", "--confirm", "gift-app")


def test_the_audit_says_who_changed_what_and_holds_no_secret(world: World) -> None:
    ada = world.ada
    ada.paas("config:set", "PASSWORD=swordfish-42", "-a", "ada-app")
    mine = json.loads(ada.paas("audit", "-a", "ada-app", "--json").stdout)
    assert any(
        e["method"] == "POST" and e["path"] == "/ada-app.git/git-receive-pack" for e in mine
    ), "the push is audited"
    changed = [e for e in mine if e["path"] == "/apps/ada-app/config-vars"]
    assert changed and changed[-1]["user"]["email"] == "ada@example.com"
    assert changed[-1]["source_ip"] == "127.0.0.1" and changed[-1]["request_id"]
    assert {e["app"]["name"] for e in mine} == {"ada-app"}
    assert "'ada-app' not found" in world.bob.refused("audit", "-a", "ada-app")
    everything = world.platform.paas("audit", "--json", "-n", "1000").stdout
    assert "swordfish" not in everything and world.ada.token not in everything
    shown = ada.paas("audit", "-a", "ada-app").stdout
    assert "ada@example.com" in shown and "PATCH /apps/ada-app/config-vars" in shown
