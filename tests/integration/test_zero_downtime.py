"""Zero failed requests through the router while the platform changes underneath, with a
keep-alive and a connection-close client (see bench/load.py for every phase)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest
from loadkit import dynos_answering, under_load
from platform_harness import Platform, commit, wait_for

APP = "steady"
PHASE_SECONDS = 2.0
# Routed out (the router drains a server for up to 10 s), then stopped within its grace.
DRAIN_SECONDS = 60.0


@pytest.fixture(scope="module")
def steady(platform: Platform) -> Platform:
    platform.paas("apps:create", APP, "--no-remote")
    repo = platform.new_repo("steady-repo")
    assert platform.push(APP, repo).returncode == 0
    platform.paas("ps:scale", "web=2", "-a", APP)
    dynos_answering(platform, APP, 2)
    return platform


def assert_no_failure(
    platform: Platform, change: Callable[[], object], cut_responses: int = 0
) -> None:
    """No request fails; `cut_responses`: how many may end as a response cut short."""
    tallies = under_load(platform, APP, PHASE_SECONDS, change)
    for tally in tallies:
        assert tally.ok > 0
        cut = tally.errors.get("IncompleteRead", 0)
        assert tally.failed - min(cut, cut_responses) == 0, tally.errors


def test_redeploy(steady: Platform) -> None:
    repo = steady.base / "steady-repo"

    def redeploy() -> None:
        app_py = repo / "app.py"
        app_py.write_text(app_py.read_text().replace("Hello from paas", "Hello steady"))
        commit(repo, "new greeting")
        assert steady.push(APP, repo).returncode == 0
        wait_for(lambda: (steady.get_json(APP) or {}).get("message") == "Hello steady", 60, "v2")

    assert_no_failure(steady, redeploy)


def test_scale_up_and_down(steady: Platform) -> None:
    def up() -> None:
        steady.paas("scale", "web=4", "-a", APP)
        dynos_answering(steady, APP, 4)

    assert_no_failure(steady, up)

    def down() -> None:
        removed = {
            str(d["id"]): d.get("pid")
            for d in steady.dyno_statuses(APP)
            if d["name"] in ("web.3", "web.4")
        }
        assert len(removed) == 2, removed
        steady.paas("scale", "web=2", "-a", APP)
        # The load goes on through the whole drain and stop, and PHASE_SECONDS after it.
        wait_for(lambda: gone(steady, removed), DRAIN_SECONDS, "web.3 and web.4 to drain and stop")

    assert_no_failure(steady, down)


def gone(platform: Platform, removed: dict[str, object]) -> bool:
    """The removed dynos' records are gone and their processes have ended."""
    if any(str(d["id"]) in removed for d in platform.dyno_statuses(APP)):
        return False
    return not any(isinstance(pid, int) and alive(pid) for pid in removed.values())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_kill_9_of_a_dyno(steady: Platform) -> None:
    def kill() -> None:
        victim = next(d for d in steady.dyno_statuses(APP) if d.get("state") == "running")
        os.kill(int(victim["pid"]), signal.SIGKILL)  # type: ignore[call-overload]
        wait_for(
            lambda: all(d["id"] != victim["id"] for d in steady.dyno_statuses(APP)),
            30,
            "the killed dyno to be replaced",
        )

    # A dyno killed between writing a response's headers and its body (gunicorn writes
    # them apart) leaves that one response cut short: no proxy can finish it (Heroku logs
    # H13). Seen once in six runs of the suite; a refused, lost or 5xx request still fails.
    assert_no_failure(steady, kill, cut_responses=1)


def test_kill_9_of_the_control_plane(steady: Platform) -> None:
    def kill() -> None:
        steady.kill_server()
        steady.start()

    assert_no_failure(steady, kill)
