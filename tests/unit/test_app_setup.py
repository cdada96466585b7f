"""The first deploy's app setup (paas.push.app_setup) against a real SQLite store, with
hand-written fakes for the pushed tree and for the add-ons and one-off dyno seams."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from paas.domain.app_manifest import Addon
from paas.domain.errors import BuildFailed, InvalidParams
from paas.domain.models import UNSETTLED, App, Release
from paas.domain.output import Output
from paas.push import app_setup
from paas.push.app_setup import Seams, Setup
from paas.release import releases
from paas.state import setups
from paas.state.logs import LogStore
from paas.state.store import Store


@dataclass
class Tree:
    """A pushed commit with these files (app_setup.GitTree reads them from git)."""

    files: dict[str, bytes]

    def read(self, name: str, limit: int) -> bytes | None:
        return self.files.get(name)


@dataclass
class FakeAddons:
    store: Store
    logs: LogStore
    fail_on: str | None = None
    created: list[tuple[str, Addon]] = field(default_factory=list)

    def check(self, addon: Addon) -> str:
        if addon.service not in ("heroku-postgresql", "heroku-redis"):
            raise InvalidParams(f"unknown add-on service {addon.service!r}")
        return self.name(addon) + "_URL"

    @staticmethod
    def name(addon: Addon) -> str:
        return addon.as_name or ("DATABASE" if "postgres" in addon.service else "REDIS")

    def create(self, app: App, addon: Addon) -> str:
        if addon.service == self.fail_on:
            raise InvalidParams(f"{addon.service} failed")
        name = self.name(addon)
        self.created.append((app.name, addon))
        releases.set_config(self.store, self.logs, app, {f"{name}_URL": f"{addon.service}://x"})
        return f"{name}_URL"


@dataclass
class FakeOneOffs:
    status: int | None = 0
    runs: list[tuple[str, str, str | None]] = field(default_factory=list)

    def run(
        self, app: App, command: str, size: str | None, out: Output, deadline: float
    ) -> int | None:
        self.runs.append((app.name, command, size))
        out.write("postdeploy output\n")
        return self.status


@pytest.fixture
def env(tmp_path: Path) -> tuple[Store, LogStore, App]:
    store = Store(tmp_path / "state.db")
    logs = LogStore(tmp_path / "logs.db")
    return store, logs, store.create_app("demo", "debian-13", domain="paas.localhost")


def manifest(document: object) -> Tree:
    return Tree({"app.json": json.dumps(document).encode()})


def begin(
    env: tuple[Store, LogStore, App], tree: Tree, seams: Seams | None = None
) -> tuple[Setup, str]:
    store, logs, app = env
    out = io.StringIO()
    setup = app_setup.begin(store, logs, app, tree, out, seams or Seams())
    return setup, out.getvalue()


def release(env: tuple[Store, LogStore, App], types: dict[str, str]) -> Release:
    store, logs, app = env
    made = releases.deploy(store, logs, app, releases.Build("slug", types), "c0ffee00")
    store.set_release_status(app, made.version, (UNSETTLED, "succeeded"), None, 0.0)
    return made


def steps(env: tuple[Store, LogStore, App]) -> dict[str, str]:
    store, _, app = env
    with store.reading() as tx:
        return setups.steps(tx, app)


def test_env_defaults_and_secrets_are_set_and_existing_vars_kept(
    env: tuple[Store, LogStore, App],
) -> None:
    store, logs, app = env
    releases.set_config(store, logs, app, {"KEPT": "mine"})
    tree = manifest({"env": {"DEFAULT": "d", "KEPT": "manifest", "TOKEN": {"generator": "secret"}}})
    _, shown = begin(env, tree)
    config = store.config(app)
    assert config["DEFAULT"] == "d" and config["KEPT"] == "mine"
    assert len(config["TOKEN"]) == 64 and int(config["TOKEN"], 16) >= 0
    assert "-----> app.json: config vars DEFAULT, TOKEN (generated)\n" in shown
    # The owner's config:set made v1 (no code); app.json's env adds none: the deploy's has it
    assert [(r.version, r.has_slug) for r in store.releases(app)] == [(1, False)]
    assert set(steps(env)) == {"started", "env"}


def test_a_missing_required_var_changes_nothing(env: tuple[Store, LogStore, App]) -> None:
    store, _, app = env
    tree = manifest({"env": {"DEFAULT": "d", "API_KEY": {"description": "the key"}}})
    with pytest.raises(InvalidParams, match=r"env\.API_KEY \(the key\) is required"):
        begin(env, tree)
    assert store.config(app) == {} and steps(env) == {}


def test_setup_does_nothing_for_an_app_released_before_it(env: tuple[Store, LogStore, App]) -> None:
    store, _, app = env
    release(env, {"web": "serve"})
    setup, shown = begin(env, manifest({"env": {"A": {}}, "scripts": {"postdeploy": "x"}}))
    assert not setup.active and shown == "" and store.config(app) == {}


def test_no_app_json_records_a_setup_with_nothing_to_do(env: tuple[Store, LogStore, App]) -> None:
    setup, shown = begin(env, Tree({}))
    setup.before_release({"web": "serve"})
    setup.after_rollout(release(env, {"web": "serve"}), math.inf)
    assert shown == "" and set(steps(env)) == {"done"}


def test_a_first_push_without_app_json_leaves_the_next_first_push_its_own(
    env: tuple[Store, LogStore, App],
) -> None:
    store, _, app = env
    begin(env, Tree({}))  # its build fails: still no release
    assert steps(env) == {}
    setup, _ = begin(env, manifest({"env": {"A": "1"}, "formation": {"web": {"quantity": 3}}}))
    setup.before_release({"web": "serve"})
    assert store.config(app) == {"A": "1"} and store.formation(app)[0].quantity == 3


def test_formation_is_written_before_the_first_release(env: tuple[Store, LogStore, App]) -> None:
    store, _, app = env
    tree = manifest(
        {
            "formation": {
                "web": {"quantity": 2},
                "worker": {"quantity": 1, "size": "standard-2x"},
                "clock": {"size": "256M"},
            }
        }
    )
    setup, _ = begin(env, tree)
    types = {"web": "serve", "worker": "work", "clock": "tick", "other": "x"}
    setup.before_release(types)
    release(env, types)
    formation = {f.type: (f.quantity, f.size) for f in store.formation(app)}
    assert formation == {
        "web": (2, "standard-1x"),
        "worker": (1, "standard-2x"),
        "clock": (0, "256M"),
        "other": (0, "standard-1x"),
    }


def test_a_formation_type_the_build_lacks_fails_before_any_change(
    env: tuple[Store, LogStore, App],
) -> None:
    store, _, app = env
    setup, _ = begin(
        env, manifest({"formation": {"web": {"quantity": 2}, "worker": {"quantity": 1}}})
    )
    with pytest.raises(InvalidParams, match=r"formation\.worker: the app has no process type"):
        setup.before_release({"web": "serve"})
    assert store.formation(app) == [] and "formation" not in steps(env)


def test_addons_are_created_before_the_build_once(env: tuple[Store, LogStore, App]) -> None:
    store, logs, app = env
    addons = FakeAddons(store, logs, fail_on="heroku-redis")
    tree = manifest(
        {"addons": ["heroku-postgresql", {"plan": "heroku-redis:hobby", "options": {"v": 1}}]}
    )
    with pytest.raises(InvalidParams, match=r"heroku-redis failed"):
        begin(env, tree, Seams(addons=addons))
    assert [a.service for _, a in addons.created] == ["heroku-postgresql"]
    addons.fail_on = None
    _, shown = begin(env, tree, Seams(addons=addons))  # the push again: only what is left
    assert [a.service for _, a in addons.created] == ["heroku-postgresql", "heroku-redis"]
    assert "addons[1].options (v) are not supported here and were ignored" in shown
    assert set(store.config(app)) == {"DATABASE_URL", "REDIS_URL"}
    assert steps(env)["addon:0"] == "DATABASE_URL" and steps(env)["addon:1"] == "REDIS_URL"


def test_an_unknown_addon_is_refused_before_anything(env: tuple[Store, LogStore, App]) -> None:
    store, logs, app = env
    addons = FakeAddons(store, logs)
    tree = manifest({"env": {"A": "1"}, "addons": ["heroku-postgresql", "mongolab"]})
    with pytest.raises(InvalidParams, match=r"unknown add-on service 'mongolab'"):
        begin(env, tree, Seams(addons=addons))
    assert addons.created == [] and store.config(app) == {} and steps(env) == {}


def test_without_the_seams_addons_and_postdeploy_are_refused(
    env: tuple[Store, LogStore, App],
) -> None:
    with pytest.raises(InvalidParams, match=r"app\.json: addons: add-ons cannot be created"):
        begin(env, manifest({"addons": ["heroku-postgresql"]}))
    with pytest.raises(
        InvalidParams, match=r"app\.json: scripts\.postdeploy: one-off dynos cannot"
    ):
        begin(env, manifest({"scripts": {"postdeploy": "x"}}))
    assert steps(env) == {}


def test_postdeploy_runs_once_after_the_first_rollout(env: tuple[Store, LogStore, App]) -> None:
    one_offs = FakeOneOffs()
    tree = manifest({"scripts": {"postdeploy": {"command": "./seed", "size": "standard-2x"}}})
    setup, _ = begin(env, tree, Seams(one_offs=one_offs))
    out = io.StringIO()
    setup.out = out
    setup.after_rollout(release(env, {"web": "serve"}), math.inf)
    assert one_offs.runs == [("demo", "./seed", "standard-2x")]
    assert "Running postdeploy for v1: ./seed\npostdeploy output\n" in out.getvalue()
    assert steps(env)["postdeploy"] == "0" and steps(env)["done"] == "v1"
    second, _ = begin(env, tree, Seams(one_offs=one_offs))  # the next push
    second.after_rollout(release(env, {"web": "serve"}), math.inf)
    assert not second.active and len(one_offs.runs) == 1


def test_a_failing_postdeploy_is_reported_and_not_run_again(
    env: tuple[Store, LogStore, App],
) -> None:
    one_offs = FakeOneOffs(status=3)
    tree = manifest({"scripts": {"postdeploy": "./seed"}})
    setup, _ = begin(env, tree, Seams(one_offs=one_offs))
    out = io.StringIO()
    setup.out = out
    setup.after_rollout(release(env, {"web": "serve"}), math.inf)  # does not raise
    assert " !     postdeploy failed (exited with status 3): v1 stays deployed" in out.getvalue()
    assert "`paas run -a demo -- ./seed`" in out.getvalue()
    assert steps(env)["postdeploy"] == "3"


def test_a_failed_first_rollout_leaves_postdeploy_for_the_next_push(
    env: tuple[Store, LogStore, App],
) -> None:
    one_offs = FakeOneOffs()
    tree = manifest({"env": {"A": "1"}, "scripts": {"postdeploy": "./seed"}})
    setup, _ = begin(env, tree, Seams(one_offs=one_offs))
    setup.before_release({"web": "serve"})
    release(env, {"web": "serve"})  # v1's rollout failed: after_rollout never ran
    store, logs, app = env
    releases.set_config(store, logs, app, {"A": None})  # the owner unsets a default
    second, _ = begin(env, tree, Seams(one_offs=one_offs))
    assert second.active and not second.first and "A" not in store.config(app)
    second.after_rollout(release(env, {"web": "serve"}), math.inf)
    assert len(one_offs.runs) == 1 and "done" in steps(env)


def test_git_tree_reads_a_regular_file_and_refuses_links(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        found = subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@x", *args],
            check=True, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        return found.stdout.strip()

    git("init", "-q", "-b", "main")
    (repo / "app.json").write_text('{"env": {}}')
    (repo / "big").write_text("x" * 100)
    (repo / "sub").mkdir()
    (repo / "sub" / "f").write_text("")
    os.symlink("/etc/shadow", repo / "link")
    git("add", "-A")
    git("commit", "-qm", "files")
    tree = app_setup.GitTree(repo / ".git", {}, git("rev-parse", "HEAD"))
    assert tree.read("app.json", 1024) == b'{"env": {}}'
    assert tree.read("missing.json", 1024) is None
    with pytest.raises(BuildFailed, match=r"^link: is a symbolic link; commit it as a regular"):
        tree.read("link", 1024)
    with pytest.raises(BuildFailed, match=r"^sub: is a directory"):
        tree.read("sub", 1024)
    with pytest.raises(BuildFailed, match=r"^big: is larger than 99 bytes"):
        tree.read("big", 99)


def test_a_required_var_an_addon_sets_is_left_to_it(env: tuple[Store, LogStore, App]) -> None:
    store, logs, app = env
    addons = FakeAddons(store, logs)
    tree = manifest(
        {
            "env": {"DATABASE_URL": {"description": "the database"}, "CACHE_URL": "x"},
            "addons": ["heroku-postgresql", {"plan": "heroku-redis", "as": "CACHE"}],
        }
    )
    begin(env, tree, Seams(addons=addons))
    assert store.config(app) == {
        "DATABASE_URL": "heroku-postgresql://x",
        "CACHE_URL": "heroku-redis://x",
    }
