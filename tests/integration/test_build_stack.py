"""The build stack through real pushes: a Python app whose C extension (psycopg2) is
compiled from its sdist builds on the stack's -build variant (compilers, Python headers,
libpq-dev) and serves its page from a dyno on the run stack, which links the library but
has no compiler; and a host whose build variant is missing fails the push naming the fix.

Skipped unless builds run in containers (root and a built stack with its build variant).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from platform_harness import Platform, commit, git, running, wait_for

from paas.artifacts import stacks

STACK = stacks.DEFAULT_STACK
BUILT = (
    os.geteuid() == 0
    and stacks.rootfs(STACK) is not None
    and stacks.build_rootfs(STACK) is not None
)
pytestmark = pytest.mark.skipif(not BUILT, reason="needs root and a built stack (run and build)")

PSYCOPG2 = "psycopg2==2.9.13"
APP_PY = """
import shutil

import psycopg2
from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def hello():
    return jsonify(
        libpq=psycopg2.__libpq_version__,
        compilers=[c for c in ("gcc", "cc", "c++", "make") if shutil.which(c)],
    )
"""
PROCFILE = "web: gunicorn app:app --workers 1 --bind 0.0.0.0:$PORT\n"


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    with running() as platform:
        yield platform


def write_repo(platform: Platform, name: str, requirements: str) -> Path:
    repo = platform.base / name
    repo.mkdir()
    (repo / "app.py").write_text(APP_PY)
    (repo / "Procfile").write_text(PROCFILE)
    (repo / "requirements.txt").write_text(requirements)
    git(repo, "init", "-q", "-b", "main")
    commit(repo, name)
    return repo


def deployed(platform: Platform, app: str, requirements: str) -> str:
    platform.paas("apps:create", app, "--no-remote")
    push = platform.push(app, write_repo(platform, app, requirements))
    assert push.returncode == 0, push.stderr[-4000:]
    return push.stderr


def page(platform: Platform, app: str) -> dict[str, object]:
    wait_for(lambda: platform.get(app)[0] == 200, 60, f"{app} serving")
    found = json.loads(platform.get(app)[1])
    assert isinstance(found, dict)
    return found


def test_a_c_extension_built_from_its_sdist_runs_on_the_run_stack(platform: Platform) -> None:
    # --no-binary: pip may not take a wheel (an option: never the shared cache's path).
    output = deployed(platform, "native", f"--no-binary psycopg2\nflask\ngunicorn\n{PSYCOPG2}\n")
    assert f"Built {PSYCOPG2}" in output, output  # compiled here, not a wheel's download
    found = page(platform, "native")
    assert isinstance(found["libpq"], int) and found["libpq"] >= 150000, found
    assert found["compilers"] == [], "the run stack has no compiler"


def test_an_sdist_only_requirement_takes_the_apps_own_build(platform: Platform) -> None:
    # psycopg2 has no wheels on PyPI: the shared cache's prime (wheels only) refuses it
    # and the app's own install compiles it on the build variant.
    output = deployed(platform, "native-shared", f"flask\ngunicorn\n{PSYCOPG2}\n")
    assert "Not shared with other apps" in output and f"Built {PSYCOPG2}" in output, output
    found = page(platform, "native-shared")
    assert isinstance(found["libpq"], int) and found["compilers"] == []


def test_the_build_variant_has_the_run_stacks_versions() -> None:
    run, build = stacks.rootfs(STACK), stacks.build_rootfs(STACK)
    assert run is not None and build is not None
    assert stacks.version_mismatches(run, build) == []
    assert (build / "usr" / "bin" / "gcc").exists() and not (run / "usr" / "bin" / "gcc").exists()
    for header in ("usr/include/postgresql/libpq-fe.h", "usr/include/openssl/ssl.h"):
        assert (build / header).is_file(), header


@pytest.fixture
def no_build_variant() -> Iterator[Path]:
    """A stacks directory of this test's own with the run stack only (a link to the host's)."""
    directory = Path(tempfile.mkdtemp(prefix="paas-stacks-", dir="/tmp"))
    directory.chmod(0o755)
    run = stacks.rootfs(STACK)
    assert run is not None
    version = directory / STACK / f"v{stacks.RECIPE_VERSION}"
    version.mkdir(parents=True)
    (version / "rootfs").symlink_to(run)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def test_a_missing_build_variant_fails_the_push_naming_the_command(
    no_build_variant: Path,
) -> None:
    with running(PAAS_STACKS_DIR=str(no_build_variant)) as platform:
        platform.paas("apps:create", "nobuild", "--no-remote")
        push = platform.push("nobuild", write_repo(platform, "nobuild", "flask\ngunicorn\n"))
    assert push.returncode != 0
    assert f"run `paas stacks:build {STACK}-build`" in push.stderr, push.stderr[-2000:]
