"""app.json on an app's first deploy, through real git pushes to a real platform: env
defaults and generated secrets, required vars, the initial formation, and no re-run on
later pushes.

The tests share one platform; each app's tests run in order.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from platform_harness import Platform, commit, wait_for

pytestmark = pytest.mark.integration

WORKER = "worker: python -u -c 'import time; time.sleep(3600)'\n"
MANIFEST = {
    "name": "setup sample",
    "env": {
        "GREETING": {"description": "what the app says", "value": "hello from app.json"},
        "SECRET_KEY": {"generator": "secret"},
        "KEPT": "from app.json",
        "OPTIONAL": {"required": False},
    },
    "formation": {"web": {"quantity": 2}, "worker": {"quantity": 1, "size": "256M"}},
}


def write(repo: Path, manifest: object, procfile_extra: str = "") -> None:
    (repo / "app.json").write_text(json.dumps(manifest))
    procfile = (repo / "Procfile").read_text().splitlines()[0] + "\n" + procfile_extra
    (repo / "Procfile").write_text(procfile)
    commit(repo, "app.json")


def said(pushed: subprocess.CompletedProcess[str]) -> str:
    """The push's output, each line without the blanks git pads `remote:` lines with."""
    return "\n".join(line.rstrip() for line in pushed.stderr.splitlines()) + "\n"


def config(platform: Platform, app: str) -> dict[str, str]:
    found: dict[str, str] = json.loads(platform.paas("config", "-a", app, "--json").stdout)
    return found


def running(platform: Platform, app: str) -> list[str]:
    dynos = json.loads(platform.paas("ps", "-a", app, "--json").stdout)
    return sorted(d["name"] for d in dynos if d["state"] == "up")


def formation(platform: Platform, app: str) -> dict[str, tuple[int, str]]:
    status, listed = platform.request("GET", f"/apps/{app}/formation")
    assert status == 200 and isinstance(listed, list)
    return {f["type"]: (f["quantity"], f["size"]) for f in listed}


@pytest.fixture(scope="module")
def setup_repo(platform: Platform) -> Path:
    platform.paas("apps:create", "setup", "--no-remote")
    platform.paas("config:set", "KEPT=set before the push", "-a", "setup")
    repo = platform.new_repo("setup-repo")
    write(repo, MANIFEST, WORKER)
    return repo


def test_first_deploy_sets_env_and_the_initial_formation(
    platform: Platform, setup_repo: Path
) -> None:
    pushed = platform.push("setup", setup_repo)
    assert pushed.returncode == 0, pushed.stderr
    assert "remote: -----> app.json: config vars GREETING, SECRET_KEY (generated)" in pushed.stderr
    assert "remote: -----> app.json: initial formation web=2, worker=1:256M" in pushed.stderr
    found = config(platform, "setup")
    assert found["GREETING"] == "hello from app.json"
    assert found["KEPT"] == "set before the push"  # an existing var is not overwritten
    assert "OPTIONAL" not in found
    secret = found["SECRET_KEY"]
    assert len(secret) == 64 and int(secret, 16) >= 0
    assert formation(platform, "setup") == {"web": (2, "Standard-1X"), "worker": (1, "256M")}
    wait_for(
        lambda: running(platform, "setup") == ["web.1", "web.2", "worker.1"],
        60,
        "web.1, web.2 and worker.1 up",
    )
    # The first deploy's release already had that scale: it is the one that runs them
    # (v1 is the config:set of KEPT before the push, a release without code, Heroku's way).
    releases = json.loads(platform.paas("releases", "-a", "setup", "--json").stdout)
    assert [(r["version"], r["slug"] is None) for r in releases] == [(1, True), (2, False)]
    assert (platform.get_json("setup") or {}).get("message", "").startswith("hello from app.json")


def test_a_later_push_does_not_apply_app_json_again(platform: Platform, setup_repo: Path) -> None:
    before = config(platform, "setup")
    changed = {**MANIFEST, "env": {**MANIFEST["env"], "NEW": "x"}}  # type: ignore[dict-item]
    changed["formation"] = {"web": {"quantity": 1}, "worker": {"quantity": 0}}
    platform.paas("ps:scale", "worker=0", "-a", "setup")
    write(setup_repo, changed, WORKER)
    pushed = platform.push("setup", setup_repo)
    assert pushed.returncode == 0, pushed.stderr
    assert "app.json:" not in pushed.stderr
    assert config(platform, "setup") == before  # no NEW, the same SECRET_KEY
    assert formation(platform, "setup") == {"web": (2, "Standard-1X"), "worker": (0, "256M")}


def test_a_missing_required_var_rejects_the_first_push_with_nothing_created(
    platform: Platform,
) -> None:
    platform.paas("apps:create", "needs", "--no-remote")
    repo = platform.new_repo("needs-repo")
    manifest = {"env": {"DEFAULT": "d", "API_KEY": {"description": "the shop's API key"}}}
    write(repo, manifest)
    pushed = platform.push("needs", repo)
    assert pushed.returncode != 0
    assert (
        "remote:  !     Push rejected: app.json: env.API_KEY (the shop's API key) is required "
        "and has no value: set it with `paas config:set API_KEY=… -a needs` and push again"
    ) in pushed.stderr
    assert "Building" not in pushed.stderr and "Python app detected" not in pushed.stderr
    assert config(platform, "needs") == {}
    assert json.loads(platform.paas("releases", "-a", "needs", "--json").stdout) == []
    status, builds = platform.request("GET", "/apps/needs/builds")
    assert status == 200 and builds == []
    platform.paas("config:set", "API_KEY=k", "-a", "needs")
    pushed = platform.push("needs", repo)
    assert pushed.returncode == 0, pushed.stderr
    assert config(platform, "needs") == {"API_KEY": "k", "DEFAULT": "d"}


def test_an_invalid_app_json_rejects_the_first_push_naming_the_field(platform: Platform) -> None:
    platform.paas("apps:create", "invalid", "--no-remote")
    repo = platform.new_repo("invalid-repo")
    write(repo, {"formation": {"web": {"quantity": 500}}})
    pushed = platform.push("invalid", repo)
    assert pushed.returncode != 0
    assert (
        "remote:  !     Push rejected: app.json: formation.web.quantity: invalid quantity 500"
        in (pushed.stderr)
    )
    assert json.loads(platform.paas("releases", "-a", "invalid", "--json").stdout) == []


POSTDEPLOY = (
    "python -c \"import os; print('postdeploy saw DATABASE_URL:', 'DATABASE_URL' in os.environ)\""
)


def test_first_deploy_creates_addons_and_runs_postdeploy_once(platform: Platform) -> None:
    platform.paas("apps:create", "full", "--no-remote")
    repo = platform.new_repo("full-repo")
    write(repo, {"addons": ["heroku-postgresql:hobby"], "scripts": {"postdeploy": POSTDEPLOY}})
    pushed = platform.push("full", repo)
    assert pushed.returncode == 0, pushed.stderr
    assert "remote: -----> app.json: creating heroku-postgresql:hobby...\n" in said(pushed)
    assert "remote:        done, DATABASE_URL\n" in said(pushed)
    assert "remote: -----> Running postdeploy for v1: python -c" in said(pushed)
    assert "remote:        in one-off dyno run.1\n" in said(pushed)
    assert "remote:        postdeploy saw DATABASE_URL: True\n" in said(pushed)
    assert "remote: -----> postdeploy: done (status 0)\n" in said(pushed)
    assert config(platform, "full")["DATABASE_URL"].startswith("postgres")
    logged = platform.paas("logs", "-a", "full", "-n", "200").stdout
    assert "app[run.1]: postdeploy saw DATABASE_URL: True" in logged
    (repo / "README").write_text("again\n")
    commit(repo, "again")
    again = platform.push("full", repo)
    assert again.returncode == 0, again.stderr
    assert "postdeploy" not in again.stderr and "app.json" not in again.stderr
    status, listed = platform.request("GET", "/apps/full/addons")
    assert status == 200 and isinstance(listed, list) and len(listed) == 1
    assert "run.2" not in platform.paas("logs", "-a", "full", "-n", "200").stdout


def test_a_failing_postdeploy_is_loud_and_keeps_the_release(platform: Platform) -> None:
    platform.paas("apps:create", "failing", "--no-remote")
    repo = platform.new_repo("failing-repo")
    write(repo, {"scripts": {"postdeploy": "echo seeding; exit 3"}})
    pushed = platform.push("failing", repo)
    assert pushed.returncode == 0, pushed.stderr  # v1 is live: the push is not undone
    assert "remote:        seeding\n" in said(pushed)
    assert (
        "remote:  !     postdeploy failed (exited with status 3): v1 stays deployed and "
        "postdeploy is not run again"
    ) in said(pushed)
    releases = json.loads(platform.paas("releases", "-a", "failing", "--json").stdout)
    assert [(r["version"], r["status"]) for r in releases] == [(1, "succeeded")]
    assert platform.get_json("failing") is not None
