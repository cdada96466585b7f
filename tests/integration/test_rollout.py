"""Rollout: the release phase runs before any dyno moves, and a release whose web dynos
never answer is not rolled out: the push fails and the old release keeps serving.

The tests share one platform (boot timeout 6 s) and one app, and run in order.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from loadkit import under_load
from platform_harness import Platform, commit, running, wait_for

from paas.dynos.runtime import ProcessRuntime

APP = "rollout"
BOOT_TIMEOUT = 6


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    with running(PAAS_BOOT_TIMEOUT=str(BOOT_TIMEOUT)) as platform:
        yield platform


@pytest.fixture(scope="module")
def repo(platform: Platform) -> Path:
    platform.paas("apps:create", APP, "--no-remote")
    repo = platform.new_repo("repo")
    result = platform.push(APP, repo)
    assert result.returncode == 0, result.stderr
    return repo


def greet(repo: Path, greeting: str, procfile: str) -> None:
    app_py = repo / "app.py"
    text = app_py.read_text()
    start = text.index('os.environ.get("GREETING", "') + len('os.environ.get("GREETING", "')
    end = text.index('"', start)
    app_py.write_text(text[:start] + greeting + text[end:])
    (repo / "Procfile").write_text(procfile)
    commit(repo, greeting)


def message(platform: Platform) -> str | None:
    return (platform.get_json(APP) or {}).get("message")


def releases(platform: Platform) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = json.loads(
        platform.paas("releases", "-a", APP, "--json").stdout
    )
    return listed


def push_under_load(platform: Platform, repo: Path) -> subprocess.CompletedProcess[str]:
    """Pushes while two clients send requests; asserts none of them failed."""
    results = []
    tallies = under_load(platform, APP, 0.5, lambda: results.append(platform.push(APP, repo)))
    for tally in tallies:
        assert tally.ok > 0 and tally.failed == 0, tally.errors
    return results[0]


def live_releases(platform: Platform) -> set[int]:
    """Releases that have a live web dyno, from the supervisors' own records."""
    return {
        s.spec.release
        for s in ProcessRuntime(platform.home / "dynos", {}).list()
        if s.spec.app == APP and s.spec.type == "web" and s.state in ("starting", "up")
    }


WEB = "web: gunicorn app:app --preload --workers 2 --bind 0.0.0.0:$PORT\n"


def test_release_phase_runs_before_rollout(platform: Platform, repo: Path) -> None:
    greet(repo, "Hello v2", WEB + 'release: echo "migrating to $GREETING_TARGET"\n')
    platform.paas("config:set", "GREETING_TARGET=v2", "-a", APP)
    result = platform.push(APP, repo)
    assert result.returncode == 0, result.stderr
    assert "Running release command" in result.stderr
    assert "migrating to v2" in result.stderr
    assert message(platform) == "Hello v2"  # the push ended once the new release served
    version = releases(platform)[-1]["version"]
    events = platform.paas("logs", "-a", APP, "--num", "500").stdout
    phase_done = events.index("Release command succeeded")
    web_started = events.index(f"Starting process of release v{version}", phase_done - 1)
    assert phase_done < web_started


def test_failing_release_phase_aborts_its_release(platform: Platform, repo: Path) -> None:
    greet(repo, "Hello v3", WEB + 'release: echo "migration broke" >&2; exit 1\n')
    result = push_under_load(platform, repo)
    assert result.returncode != 0
    assert "migration broke" in result.stderr
    assert "release command exited with status 1" in result.stderr
    assert releases(platform)[-1]["status"] == "failed"
    assert message(platform) == "Hello v2"
    assert live_releases(platform) == {int(str(releases(platform)[-2]["version"]))}


def test_web_that_never_answers_is_not_rolled_out(platform: Platform, repo: Path) -> None:
    greet(repo, "Hello v4", "web: sleep 600\n")
    result = push_under_load(platform, repo)
    assert result.returncode != 0
    assert "did not pass the health check within the boot timeout" in result.stderr
    failed = releases(platform)[-1]
    assert failed["status"] == "failed"
    assert message(platform) == "Hello v2"
    wait_for(
        lambda: int(str(failed["version"])) not in live_releases(platform),
        20,
        "the failed release's dyno to be stopped",
    )
    logs = platform.paas("logs", "-a", APP, "--num", "200").stdout
    assert f"Release v{failed['version']} failed" in logs


def test_web_that_crashes_at_boot_fails_fast(platform: Platform, repo: Path) -> None:
    greet(repo, "Hello v5", "web: echo 'cannot boot' >&2; exit 3\n")
    result = platform.push(APP, repo)
    assert result.returncode != 0
    assert "web.1 exited (3) before the rollout ended" in result.stderr
    assert message(platform) == "Hello v2"


def app_json_check(repo: Path, attempts: int) -> None:
    check = {"type": "startup", "path": "/health", "content": "healthy", "attempts": attempts}
    (repo / "app.json").write_text(
        json.dumps({"healthchecks": {"web": [{**check, "timeout": 1, "wait": 0}]}})
    )


def test_web_failing_its_http_health_check_is_not_rolled_out(
    platform: Platform, repo: Path
) -> None:
    app_json_check(repo, attempts=2)  # the port opens at once, but /health is a 404
    greet(repo, "Hello v6", WEB)
    result = push_under_load(platform, repo)
    assert result.returncode != 0
    assert "Health check: GET /health expecting 'healthy'" in result.stderr
    assert "did not pass the health check within the boot timeout (2s)" in result.stderr, (
        result.stderr
    )
    assert message(platform) == "Hello v2"


def test_web_passing_its_http_health_check_is_rolled_out(platform: Platform, repo: Path) -> None:
    app_json_check(repo, attempts=20)
    app_py = repo / "app.py"
    app_py.write_text(
        app_py.read_text() + '\n\n@app.get("/health")\ndef health():\n    return "healthy"\n'
    )
    greet(repo, "Hello v7", WEB)
    result = push_under_load(platform, repo)
    assert result.returncode == 0, result.stderr
    assert message(platform) == "Hello v7"


def test_config_change_after_failures_builds_on_the_serving_code(
    platform: Platform, repo: Path
) -> None:
    platform.paas("config:set", "GREETING=configured", "-a", APP)
    wait_for(lambda: message(platform) == "configured", 30, "the new config to be served")
    wait_for(lambda: releases(platform)[-1]["status"] == "succeeded", 30, "the release to settle")
    assert releases(platform)[-1]["description"] == "Set GREETING config vars"
