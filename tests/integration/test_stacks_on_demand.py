"""Stacks built on demand, for real: `paas stack:set debian-12` on a host where it is not
built starts its build (run and build variants, mmdebstrap) in the server; the CLI
follows its progress, `--no-wait` leaves it running, `paas stacks` shows it building, and
a push to an app waiting for it waits too (its progress in the push output), then builds
and runs on it. A build that fails (an unreachable mirror) is recorded with its reason,
and the app stays deployable on its old stack.

Each platform gets a stacks directory of the test's own (PAAS_STACKS_DIR, removed after)
holding links to the host's default stack, so nothing is built into the shared cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from platform_harness import PAAS, Platform, commit, running, wait_for

from paas.artifacts import stacks

DEFAULT = stacks.DEFAULT_STACK
BUILT = (
    os.geteuid() == 0
    and stacks.rootfs(DEFAULT) is not None
    and stacks.build_rootfs(DEFAULT) is not None
    and shutil.which("mmdebstrap") is not None
)
pytestmark = pytest.mark.skipif(not BUILT, reason="needs root, mmdebstrap and a built stack")
UNREACHABLE_MIRROR = "http://127.0.0.1:9/debian"


@pytest.fixture
def stacks_dir() -> Iterator[Path]:
    """A stacks directory with the host's default stack linked in, and nothing else."""
    directory = Path(tempfile.mkdtemp(prefix="paas-stacks-", dir="/tmp"))
    directory.chmod(0o755)
    version = directory / DEFAULT / f"v{stacks.RECIPE_VERSION}"
    version.mkdir(parents=True)
    for tree in (stacks.rootfs(DEFAULT), stacks.build_rootfs(DEFAULT)):
        assert tree is not None
        (version / tree.name).symlink_to(tree)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def deploy(platform: Platform, app: str) -> Path:
    platform.paas("apps:create", app, "--no-remote")
    repo = platform.new_repo(app)
    push = platform.push(app, repo)
    assert push.returncode == 0, push.stderr[-3000:]
    return repo


def new_commit(repo: Path) -> None:
    (repo / "CHANGES").write_text(f"{os.urandom(4).hex()}\n")
    commit(repo, "a change")


def stacks_listing(platform: Platform) -> str:
    return platform.paas("stacks").stdout


def app_stack(platform: Platform, app: str) -> str:
    info = platform.paas("apps:info", "-a", app).stdout
    return next(line.split()[-1] for line in info.splitlines() if line.startswith("Stack"))


@pytest.mark.slow
def test_stack_set_builds_a_missing_stack_and_a_push_waits_for_it(stacks_dir: Path) -> None:
    with running(PAAS_STACKS_DIR=str(stacks_dir)) as platform:
        follower_repo, waiter_repo = deploy(platform, "follower"), deploy(platform, "waiter")
        # The CLI that follows the build, in the background; the other one leaves at once.
        follower = subprocess.Popen(
            [str(PAAS), "stack:set", "debian-12", "-a", "follower"],
            env=platform.env,
            cwd=platform.base,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(
                lambda: (
                    "debian-12: Debian bookworm, Python 3.11, building" in stacks_listing(platform)
                ),
                30,
                "`paas stacks` to show debian-12 building",
            )
            left = platform.paas("stack:set", "debian-12", "--no-wait", "-a", "waiter")
            assert "building it" in left.stdout and "a push meanwhile waits" in left.stdout
            assert app_stack(platform, "waiter") == DEFAULT  # until it is built
            new_commit(waiter_repo)
            push = platform.push("waiter", waiter_repo)
            followed, errors = follower.communicate(timeout=1200)
        finally:
            if follower.poll() is None:
                follower.kill()
                follower.wait()
        assert push.returncode == 0, push.stderr[-3000:]
        pushed = push.stderr
        assert "Waiting for stack debian-12 to be built" in pushed
        assert "Building debian-12-build" in pushed, pushed  # its progress, as it came
        assert "Stack debian-12: built" in pushed, pushed
        assert "Using Python 3.11" in pushed, pushed
        assert follower.returncode == 0, errors
        assert "Building stack debian-12 (Debian bookworm) with mmdebstrap" in followed
        assert "Stack set to debian-12 for follower" in followed
        # The server moved the follower when the build ended; its next push builds there.
        assert app_stack(platform, "follower") == "debian-12"
        assert app_stack(platform, "waiter") == "debian-12"
        listing = stacks_listing(platform)
        assert (
            f"debian-12-build: builds of debian-12 (compilers, headers), built at {stacks_dir}"
            in listing
        )
        new_commit(follower_repo)
        again = platform.push("follower", follower_repo)
        assert again.returncode == 0 and "Using Python 3.11" in again.stderr, again.stderr
        wait_for(lambda: platform.get_json("follower"), 60, "follower serving on debian-12")
    built = stacks.build_rootfs("debian-12", stacks_dir)
    assert built is not None and (built / "usr" / "bin" / "gcc").exists()
    assert stacks.version_mismatches(stacks_dir / "debian-12" / "v5" / "rootfs", built) == []


def test_a_failed_stack_build_leaves_the_app_on_its_stack(stacks_dir: Path) -> None:
    with running(
        PAAS_STACKS_DIR=str(stacks_dir), PAAS_DEBIAN_MIRROR=UNREACHABLE_MIRROR
    ) as platform:
        repo = deploy(platform, "stays")
        failed = platform.paas("stack:set", "debian-12", "-a", "stays", check=False)
        assert failed.returncode != 0
        assert "stack debian-12 failed to build: mmdebstrap failed" in failed.stderr
        assert UNREACHABLE_MIRROR in failed.stderr
        assert "retry with `paas stack:set debian-12 -a stays`" in failed.stderr
        assert app_stack(platform, "stays") == DEFAULT
        assert "failed: mmdebstrap failed building debian-12" in stacks_listing(platform)
        new_commit(repo)
        push = platform.push("stays", repo)
        assert push.returncode == 0, push.stderr[-3000:]
        assert "Stack debian-12 did not build (mmdebstrap failed" in push.stderr
        assert f"building on {DEFAULT} still" in push.stderr
        wait_for(lambda: platform.get_json("stays"), 60, "stays serving")
        assert app_stack(platform, "stays") == DEFAULT
    assert not list(stacks_dir.glob("debian-12/.debian-12-*")), "no staging left behind"
