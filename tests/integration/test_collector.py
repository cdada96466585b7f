"""The collector through real pushes: 50 deploys of one app leave PAAS_HOME within a bound
that does not grow with the deploys, the oldest kept release still rolls back, other
branches are refused, a destroyed app's artifacts go, and crash leftovers go at start.

The bound (KEPT = PAAS_IMAGES_KEPT = 3): at most KEPT + 1 slugs and image indexes (the kept
releases, plus one whose dynos may still be draining), exactly KEPT builds rows, no build
workspace, one cache per app, and slugs + images + cache + builds take no more room after
50 deploys than after KEPT + 2 (10 % slack).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from platform_harness import Platform, commit, git, running, wait_for

from paas.state.store import Store

KEPT = 3
DEPLOYS = 50
APP = "churn"


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    with running(PAAS_IMAGES_KEPT=str(KEPT)) as platform:
        yield platform


def tiny_repo(platform: Platform, name: str, text: str) -> Path:
    """A Python app with nothing to install that serves version.txt: the quickest build."""
    repo = platform.base / name
    repo.mkdir()
    (repo / "requirements.txt").write_text("")
    (repo / "Procfile").write_text("web: exec python3 -m http.server $PORT\n")
    (repo / "version.txt").write_text(text)
    git(repo, "init", "-q", "-b", "main")
    commit(repo, text)
    return repo


def deploy(platform: Platform, app: str, repo: Path, text: str) -> None:
    (repo / "version.txt").write_text(text)
    commit(repo, text)
    pushed = platform.push(app, repo)
    assert pushed.returncode == 0, pushed.stderr


def serves(platform: Platform, app: str, text: str) -> None:
    wait_for(lambda: platform.get(app, "/version.txt") == (200, text), 30, f"{app}: {text}")


def disk_use(*directories: Path) -> int:
    """Bytes under the directories, each inode once (slug trees and layers hard-link)."""
    seen, total = set(), 0
    for directory in directories:
        for root, dirs, files in os.walk(directory):
            for name in dirs + files:
                info = os.lstat(os.path.join(root, name))
                if (info.st_dev, info.st_ino) not in seen:
                    seen.add((info.st_dev, info.st_ino))
                    total += info.st_blocks * 512
    return total


def slug_digests(platform: Platform) -> set[str]:
    return {p.name.partition(".")[0] for p in (platform.home / "slugs").iterdir()}


def image_refs(platform: Platform) -> list[str]:
    index = json.loads((platform.home / "images" / "index.json").read_text())
    return [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]


def artifact_dirs(platform: Platform) -> list[Path]:
    return [platform.home / d for d in ("slugs", "images", "cache", "builds")]


def builds_rows(platform: Platform, app: str) -> int:
    store = Store(platform.home / "state.db")
    return len(store.builds(store.app(app)))


def test_fifty_deploys_stay_within_a_bound_and_the_oldest_kept_release_rolls_back(
    platform: Platform,
) -> None:
    platform.paas("apps:create", APP, "--no-remote")
    repo = tiny_repo(platform, "churn-repo", "initial")
    steady = 0
    for number in range(DEPLOYS):
        deploy(platform, APP, repo, f"deploy {number}")
        if number == KEPT + 1:
            steady = disk_use(*artifact_dirs(platform))
    serves(platform, APP, f"deploy {DEPLOYS - 1}")

    assert len(slug_digests(platform)) <= KEPT + 1
    refs = image_refs(platform)
    if refs:  # images exist where a stack is built
        assert len(refs) <= KEPT + 1 and all(r.startswith(f"{APP}-v") for r in refs)
    assert builds_rows(platform, APP) == KEPT
    app_id = Store(platform.home / "state.db").app(APP).id
    assert list((platform.home / "builds").iterdir()) == []
    # One app's cache: its directory, and (as root) the image that holds it.
    assert {p.name.partition(".")[0] for p in (platform.home / "cache").iterdir()} == {app_id}
    assert disk_use(*artifact_dirs(platform)) <= steady * 1.1

    releases = json.loads(platform.paas("releases", "-a", APP, "--json").stdout)
    versions = [r["version"] for r in releases]
    oldest_kept = versions[-KEPT]
    platform.paas("rollback", f"v{oldest_kept}", "-a", APP)
    serves(platform, APP, f"deploy {DEPLOYS - KEPT}")
    collected = platform.paas("rollback", f"v{oldest_kept - 2}", "-a", APP, check=False)
    assert collected.returncode != 0 and "garbage-collected" in collected.stderr


def test_a_push_of_another_branch_is_refused_and_stores_nothing(platform: Platform) -> None:
    repo = platform.base / "churn-repo"
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "big.bin").write_bytes(os.urandom(1 << 16))
    commit(repo, "feature work")
    pushed = subprocess.run(
        ["git", "push", platform.git_url(APP), "feature"],
        cwd=repo,
        env=platform.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pushed.returncode != 0
    assert "only main or master is stored and deployed, not refs/heads/feature" in pushed.stderr
    bare = platform.home / "repos" / f"{APP}.git"
    heads = subprocess.run(
        ["git", "--git-dir", str(bare), "for-each-ref", "--format=%(refname)"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert heads == ["refs/heads/main"]
    git(repo, "checkout", "-q", "main")


def test_destroy_removes_what_only_that_app_used(platform: Platform) -> None:
    shared = "shared tree"
    keeper = tiny_repo(platform, "keeper-repo", shared)
    doomed = tiny_repo(platform, "doomed-repo", shared)
    for app, repo in (("keeper", keeper), ("doomed", doomed)):
        platform.paas("apps:create", app, "--no-remote")
        pushed = platform.push(app, repo)
        assert pushed.returncode == 0, pushed.stderr
    deploy(platform, "doomed", doomed, "only doomed has this")
    store = Store(platform.home / "state.db")
    doomed_id = store.app("doomed").id
    keeper_release = store.current_release(store.app("keeper"))
    doomed_release = store.current_release(store.app("doomed"))
    assert keeper_release is not None and doomed_release is not None
    shared_slug = keeper_release.artifact.removeprefix("sha256:")
    own_slug = doomed_release.artifact.removeprefix("sha256:")
    assert (platform.home / "cache" / doomed_id).is_dir()

    platform.paas("apps:destroy", "-a", "doomed", "--confirm", "doomed")
    assert not (platform.home / "cache" / doomed_id).exists()
    assert not (platform.home / "repos" / "doomed.git").exists()
    assert not any(r.startswith("doomed-") for r in image_refs(platform))
    # Its slug goes once its dynos are gone (a draining container dyno still runs from it).
    wait_for(lambda: not platform.dyno_statuses("doomed"), 60, "doomed's dynos to go")
    deploy(platform, "keeper", keeper, "keeper again")
    assert own_slug not in slug_digests(platform)
    assert shared_slug in slug_digests(platform)  # keeper's previous release, kept
    serves(platform, "keeper", "keeper again")


def test_crash_leftovers_go_at_server_start(platform: Platform) -> None:
    workspace = platform.home / "builds" / ("ab" * 16)
    (workspace / "app").mkdir(parents=True)
    (platform.home / "builds" / f"{'ab' * 16}.sandbox").mkdir()
    orphan = platform.home / "slugs" / ("cd" * 32)
    orphan.mkdir()
    (orphan / "Procfile").write_text("web: true\n")
    kept_before = slug_digests(platform) - {orphan.name}
    assert platform.server is not None
    platform.server.terminate()
    platform.server.wait(30)
    platform.start()
    assert list((platform.home / "builds").iterdir()) == []
    assert not orphan.exists()
    assert slug_digests(platform) == kept_before
    serves(platform, "keeper", "keeper again")
