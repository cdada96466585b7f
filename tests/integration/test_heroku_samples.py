"""Heroku's own sample apps deploy unmodified, by a real `git push`.

Their code is not vendored here. Each test takes a local clone's path from an environment
variable and skips, saying so, when it is absent:

  PAAS_SAMPLE_PYTHON_GETTING_STARTED  a clone of github.com/heroku/python-getting-started
  PAAS_SAMPLE_NODE_GETTING_STARTED    a clone of github.com/heroku/node-js-getting-started

The Python sample pins its Python (.python-version, or runtime.txt before): the test deploys
the newest commit whose Python one of this host's built stacks has, on that stack.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from platform_harness import Platform, running, wait_for

from paas.artifacts import stacks

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (builds in containers)")

PYTHON_PIN = re.compile(r"(?:python-)?(\d+)\.(\d+)")


def clone_path(variable: str) -> Path:
    value = os.environ.get(variable)
    if not value:
        pytest.skip(f"{variable} is not set: give it the path of a local clone to deploy")
    path = Path(value)
    if not (path / ".git").exists() and not (path / "HEAD").exists():
        pytest.skip(f"{variable}={value} is not a git clone")
    return path


def git_out(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, timeout=60, check=False
    )
    return done.stdout if done.returncode == 0 else ""


def pinned_python(repo: Path, commit: str) -> str | None:
    """The major.minor a commit pins in .python-version (or runtime.txt: python-3.12.7)."""
    for name in (".python-version", "runtime.txt"):
        text = git_out(repo, "show", f"{commit}:{name}")
        lines = [line.strip() for line in text.splitlines()]
        pins = [line for line in lines if line and not line.startswith("#")]
        if pins and (match := PYTHON_PIN.match(pins[-1])):
            return f"{match.group(1)}.{match.group(2)}"
    return None


def newest_deployable(repo: Path, pythons: dict[str, str]) -> tuple[str, str]:
    """The newest commit whose pinned Python a built stack has, and that stack."""
    for commit in git_out(repo, "rev-list", "HEAD").split()[:500]:
        version = pinned_python(repo, commit)
        if version in pythons:
            return commit, pythons[version]
    pytest.skip(f"no commit of {repo} pins a Python of the built stacks {sorted(pythons)}")


def checkout(source: Path, commit: str, target: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(source), str(target)], check=True, timeout=300)
    subprocess.run(["git", "checkout", "-q", "-B", "main", commit], cwd=target, check=True)
    return target


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    with running() as platform:
        yield platform


def test_python_getting_started_deploys_unmodified(platform: Platform) -> None:
    source = clone_path("PAAS_SAMPLE_PYTHON_GETTING_STARTED")
    pythons = {version: name for name, version in stacks.python_versions().items()}
    commit, stack = newest_deployable(source, pythons)
    repo = checkout(source, commit, platform.base / "python-getting-started")
    platform.paas("apps:create", "pysample", "--no-remote", "--stack", stack)
    result = platform.push("pysample", repo)
    assert result.returncode == 0, result.stderr[-3000:]
    # On a dyno (DYNO is set) the sample redirects plain HTTP to HTTPS, as on Heroku: the
    # redirect is Django answering; the page itself, asked for as HTTPS, is its index.
    status, _ = wait_for(lambda: served(platform, "pysample"), 60, "the sample to answer")
    assert status == 301


def served(platform: Platform, app: str) -> tuple[int, str] | None:
    answer = platform.get(app)
    return answer if answer[0] in (200, 301) else None


def test_node_js_getting_started_deploys_unmodified(platform: Platform) -> None:
    source = clone_path("PAAS_SAMPLE_NODE_GETTING_STARTED")
    head = git_out(source, "rev-parse", "HEAD").strip()
    repo = checkout(source, head, platform.base / "node-js-getting-started")
    platform.paas("apps:create", "nodesample", "--no-remote")
    result = platform.push("nodesample", repo)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Node.js app detected" in result.stderr
    status, body = wait_for(lambda: served(platform, "nodesample"), 60, "the sample to answer")
    assert status == 200 and "Node" in body
