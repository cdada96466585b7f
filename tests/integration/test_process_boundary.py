"""The process boundary, through a real platform: a command that fails while the agent
starts a dyno or the hook builds is the platform's own error, reported once where the
app's owner reads it, and nothing else stops; an unexpected failure of an agent tick is a
traceback in the server log, and the agent goes on; the API's gunicorn shares no state
with other gunicorns of the user.

The failures are real ones: a slug whose tar is damaged (so `tar -x` fails) and a full
filesystem under the slugs (a tmpfs, so the build's `tar -c` meets ENOSPC). On the code
before procs.run, the first aborted every tick (no app was routed or drained again) and the
second left the build `pending` with a traceback for the pusher.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from platform_harness import Platform, commit, git, running, wait_for

WEB = "web: exec python3 -m http.server $PORT\n"
QUIET = {"detect": "echo quiet", "compile": "true"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts a full filesystem: root")


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    # No XDG_RUNTIME_DIR: gunicorn's default control socket would be HOME/.gunicorn's.
    with running(XDG_RUNTIME_DIR="") as platform:
        yield platform


@pytest.fixture(scope="module")
def quiet(platform: Platform) -> str:
    return platform.buildpack("quiet", QUIET)


def deploy(platform: Platform, app: str, buildpack: str) -> subprocess.CompletedProcess[str]:
    """A new app of one web dyno; its repo holds its name, so every app has its own slug."""
    repo = platform.base / f"{app}-repo"
    repo.mkdir()
    (repo / "Procfile").write_text(WEB)
    (repo / "name.txt").write_text(app)
    git(repo, "init", "-q", "-b", "main")
    commit(repo, app)
    platform.paas("apps:create", app, "--no-remote")
    platform.paas("config:set", f"BUILDPACK_URL={buildpack}", "-a", app)
    return platform.push(app, repo)


def app_log(platform: Platform, app: str) -> str:
    return platform.paas("logs", "-a", app, "-n", "1000").stdout


def query(platform: Platform, sql: str, app: str) -> list[str]:
    with sqlite3.connect(platform.home / "state.db") as db:
        rows = db.execute(sql, (app,)).fetchall()
    return [str(row[0]) for row in rows]


def running_web(platform: Platform, app: str) -> int:
    return sum(
        1 for d in platform.dyno_statuses(app) if d["type"] == "web" and d["state"] != "exited"
    )


def test_a_damaged_slug_fails_one_apps_start_and_the_others_still_route_and_drain(
    platform: Platform, quiet: str
) -> None:
    for app in ("broken", "fine"):
        push = deploy(platform, app, quiet)
        assert push.returncode == 0, push.stderr
    (artifact,) = query(
        platform,
        # its deploy's (the BUILDPACK_URL set before it made a release without code)
        "SELECT r.artifact FROM releases r JOIN apps a ON a.id = r.app_id WHERE a.name = ? "
        "AND r.artifact != ''",
        "broken",
    )
    name = artifact.removeprefix("sha256:")
    shutil.rmtree(platform.home / "slugs" / name)  # unpacked again from its tar, which is
    (platform.home / "slugs" / f"{name}.tar").write_bytes(b"not a tar archive\n" * 1000)

    platform.paas("ps:scale", "web=2", "-a", "broken")
    platform.paas("ps:scale", "web=2", "-a", "fine")
    wait_for(
        lambda: "Routing to web.1, web.2" in app_log(platform, "fine"),
        60,
        "the other app's new dyno to be routed while the broken one's start fails",
    )
    platform.paas("ps:scale", "web=1", "-a", "fine")
    wait_for(
        lambda: running_web(platform, "fine") == 1,
        60,
        "the other app's extra dyno to be drained and stopped",
    )

    failures = [line for line in app_log(platform, "broken").splitlines() if "Cannot" in line]
    assert len(failures) == 1, failures  # once, though every tick since has retried
    assert f"slug {artifact} cannot be unpacked (tar: " in failures[0], failures[0]
    assert "deploy again" in failures[0]
    assert running_web(platform, "broken") == 1  # what ran before runs on
    assert not list((platform.home / "slugs").glob("*.unpack"))  # no half-unpacked tree


def test_a_full_disk_under_the_build_fails_the_push_in_one_line_and_the_build(
    platform: Platform, quiet: str
) -> None:
    slugs = platform.home / "slugs"
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "paas-test-full", str(slugs)],
        check=True,
        timeout=30,
    )
    try:
        fill(slugs / "filler")
        push = deploy(platform, "full", quiet)
        left = sorted(p.name for p in slugs.iterdir())
    finally:
        subprocess.run(["umount", "-l", str(slugs)], check=True, timeout=30)
    assert push.returncode != 0
    rejected = [line for line in push.stderr.splitlines() if "Push rejected:" in line]
    assert len(rejected) == 1, push.stderr
    assert "tar --sort=name" in rejected[0] and "No space left on device" in rejected[0]
    assert "Traceback" not in push.stderr
    assert query(
        platform,
        "SELECT b.status FROM builds b JOIN apps a ON a.id = b.app_id WHERE a.name = ?",
        "full",
    ) == ["failed"]
    assert "Build failed: tar " in app_log(platform, "full")
    assert left == ["filler"]  # the half-written tar went


def fill(path: Path) -> None:
    """Writes PATH until its filesystem is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError, match="No space left on device"):
            while True:
                os.write(fd, b"\0" * 65536)
    finally:
        os.close(fd)


def agent_pid(platform: Platform) -> int:
    """The server's `paas agent` child."""
    assert platform.server is not None
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == platform.server.pid and b"agent" in argv:
            return int(entry.name)
    raise AssertionError("the server has no agent child")


def test_an_unexpected_tick_failure_is_a_traceback_and_the_agent_keeps_ticking(
    platform: Platform,
) -> None:
    log = platform.base / "server.log"
    routes = platform.home / "router" / "routes.json"
    before = log.read_text().count("agent: tick failed")
    generation = json.loads(routes.read_text())["generation"]
    # A directory where the agent writes the next route table before it renames it: every
    # tick now fails to publish, and the router keeps reading the last table.
    blocker = routes.with_suffix(f".tmp{agent_pid(platform)}")
    blocker.mkdir()
    try:
        platform.paas("apps:create", "tick-probe", "--no-remote")  # a table to publish
        wait_for(lambda: "agent: tick failed" in log.read_text()[-20000:], 30, "a failed tick")
        # Proving a silence takes a wait: four more ticks fail the same way, unsaid.
        time.sleep(1.0)
    finally:
        blocker.rmdir()
    text = log.read_text()
    assert text.count("agent: tick failed") == before + 1
    failure = text[text.rindex("agent: tick failed") :]
    assert failure.splitlines()[1] == "Traceback (most recent call last):"
    assert "IsADirectoryError" in failure
    published = wait_for(
        lambda: (t := json.loads(routes.read_text()))["generation"] > generation and t,
        30,
        "the agent to tick again",
    )
    assert "tick-probe" in [a["app"] for a in published["apps"]]
    assert "exited with" not in text  # no platform process died of it


def test_the_api_gunicorn_opens_no_control_socket_other_gunicorns_share(
    platform: Platform,
) -> None:
    """gunicorn 25.1+ opens HOME/.gunicorn/gunicorn.ctl by default: one path for every
    gunicorn of the user, which the last one to exit deletes under the others."""
    assert platform.api_answers()
    assert not (platform.base / ".gunicorn").exists()
    bound = Path("/proc/net/unix").read_text().splitlines()
    assert [line for line in bound if "gunicorn" in line and str(platform.base) in line] == []


def test_cleanups_that_succeed_say_nothing(platform: Platform) -> None:
    """Starts, stops and the container runtime probe at server start leave no `cleanup:`
    line: what is already gone is the expected state. (A probe whose bundle was removed
    through its bind-mounted stack once said so here, thousands of times over.)"""
    assert "cleanup:" not in (platform.base / "server.log").read_text()
    for app in ("broken", "fine"):
        assert "cleanup:" not in app_log(platform, app)
