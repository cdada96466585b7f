"""What other local users and other apps can read on the host, through a real platform.

As `nobody` (uid 65534) and as another app's uid, the platform's secrets — state.db,
logs.db and their WAL files, a dyno's spec and container config, a build's env files — are
refused. Each app runs as a uid of its own, in containers and as plain processes
(PAAS_CONTAINERS=off). Needs root (that is where uids can differ); skipped otherwise.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from platform_harness import Platform, running, wait_for

from paas.artifacts import stacks
from paas.domain.settings import Settings
from paas.isolation import container, users
from paas.push.builder import Builder, BuildRequest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: uids per app")
NOBODY = 65534
CONTAINERS = stacks.rootfs(stacks.DEFAULT_STACK) is not None


def readable_by(uid: int, path: Path) -> bool:
    """Whether a process of `uid` (gid equal, no other group) can read `path`."""
    result = subprocess.run(
        ["head", "-c", "1", str(path)],
        user=uid,
        group=uid,
        extra_groups=[],
        capture_output=True,
        timeout=30,
    )
    return result.returncode == 0


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def deploy(platform: Platform, app: str, secret: str) -> None:
    platform.paas("apps:create", app, "--no-remote")
    platform.paas("config:set", f"SECRET={secret}", "-a", app)
    result = platform.push(app, platform.new_repo(f"repo-{app}"))
    assert result.returncode == 0, result.stderr
    wait_for(lambda: platform.get_json(app), 60, f"{app} to serve")


def dyno_dirs(platform: Platform, app: str) -> list[Path]:
    return [
        platform.home / "dynos" / str(status["id"])
        for status in platform.dyno_statuses(app)
        if status.get("state") == "running"
    ]


@contextmanager
def secrets_on_disk(platform: Platform, app: str) -> Iterator[list[Path]]:
    """The databases and their WAL files (kept while this holds a connection to each), and
    the app's dyno specs."""
    home = platform.home
    held = [sqlite3.connect(home / f"{db}.db") for db in ("state", "logs")]
    for db in held:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    found = [home / f"{db}.db{part}" for db in ("state", "logs") for part in ("", "-wal", "-shm")]
    found += [d / "spec.json" for d in dyno_dirs(platform, app)]
    try:
        yield found
    finally:
        for db in held:
            db.close()


def two_apps(first: str, second: str, **settings: str) -> Iterator[Platform]:
    with running(**settings) as platform:
        deploy(platform, first, "alpha-secret")
        deploy(platform, second, "beta-secret")
        yield platform


@pytest.fixture(scope="module")
def with_containers() -> Iterator[Platform]:
    if not CONTAINERS:
        pytest.skip("needs a built stack")
    yield from two_apps("hca", "hcb")


@pytest.fixture(scope="module")
def plain() -> Iterator[Platform]:
    yield from two_apps("hpa", "hpb", PAAS_CONTAINERS="off")


def test_nobody_cannot_read_the_databases_specs_or_container_configs(
    with_containers: Platform,
) -> None:
    configs = [d / "bundle" / "config.json" for d in dyno_dirs(with_containers, "hca")]
    assert configs and all("alpha-secret" in p.read_text() for p in configs)
    with secrets_on_disk(with_containers, "hca") as paths:
        for path in [*paths, *configs]:
            assert path.stat().st_mode & 0o077 == 0, path
            assert not readable_by(NOBODY, path), path


def test_each_app_runs_in_containers_as_its_own_uid_over_a_root_only_layer(
    with_containers: Platform,
) -> None:
    uids = {}
    for app in ("hca", "hcb"):
        (directory,) = dyno_dirs(with_containers, app)
        plan = container.plan_from(json.loads((directory / "spec.json").read_text())["container"])
        assert plan is not None
        pid = container.init_pid(directory.name, plan)
        assert pid is not None
        uids[app] = uid_of(pid)
        layer = Path(plan.layer).stat()
        assert (layer.st_uid, layer.st_mode & 0o777) == (0, 0o700)
        assert plan.disk_mb == 1024  # the writable layer is size-capped (PAAS_DYNO_DISK_MB)
    assert uids["hca"] != uids["hcb"]
    assert min(uids.values()) >= users.APP_UID_BASE


def test_plain_process_apps_run_as_different_uids_and_cannot_read_each_other(
    plain: Platform,
) -> None:
    (dir_a,) = dyno_dirs(plain, "hpa")
    (dir_b,) = dyno_dirs(plain, "hpb")
    status_a = json.loads((dir_a / "status.json").read_text())
    status_b = json.loads((dir_b / "status.json").read_text())
    uid_a, uid_b = uid_of(status_a["pid"]), uid_of(status_b["pid"])
    assert uid_a != uid_b and 0 not in (uid_a, uid_b)
    assert readable_by(uid_b, dir_b / "app" / "app.py")  # its own code
    assert not readable_by(uid_a, dir_b / "app" / "app.py")  # another app's code
    assert not readable_by(uid_a, dir_b / "spec.json")  # its config vars
    with secrets_on_disk(plain, "hpb") as paths:
        for path in paths:
            assert not readable_by(uid_a, path), path
            assert not readable_by(NOBODY, path), path


def test_a_builds_env_files_are_the_build_uids_alone() -> None:
    """bin/compile's ENV_DIR holds every config var."""
    base = Path(tempfile.mkdtemp(prefix="paas-env-", dir="/tmp"))
    try:
        base.chmod(0o711)
        account = users.Account(users.APP_UID_BASE + 4321, users.APP_UID_BASE + 4321)
        builder = Builder(Settings(home=base / "home"), account, io.StringIO())
        request = BuildRequest("demo", "demo-id", "0" * 40, {"SECRET": "s3"}, base, {})
        workspace = base / "build"
        (workspace / "app").mkdir(parents=True)
        builder.prepare(workspace, request)
        env_file = workspace / "env" / "SECRET"
        assert readable_by(account.uid, env_file)  # the build itself
        assert not readable_by(NOBODY, env_file)
        assert not readable_by(account.uid + 1, env_file)  # another app's build
        assert env_file.stat().st_mode & 0o777 == 0o600
        builder.tear_down(workspace, request)  # prepare mounted the app's cache
        assert not os.path.ismount(builder.cache_dir(request))
    finally:
        shutil.rmtree(base, ignore_errors=True)
