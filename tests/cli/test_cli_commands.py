"""The CLI commands against the fake API: argument checks, app lookup, output, requests."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_fake_api import FakeApi, run

from paas.cli import commands as cli

NOW = datetime(2026, 11, 28, 15, 18, 46, tzinfo=UTC)


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=True, timeout=30)
    return done.stdout.strip()


@pytest.fixture
def repo(isolated: Path) -> Path:
    """The working directory made a real git repository."""
    git("init", "-q")
    return Path.cwd()


def with_processes(api: FakeApi) -> None:
    api.formation[:] = [
        {"type": "web", "quantity": 2, "size": "Standard-1X", "command": "gunicorn app:app"},
        {"type": "worker", "quantity": 0, "size": "Standard-1X", "command": "python w.py"},
    ]
    common = {"type": "web", "release": {"version": 3}, "command": "gunicorn app:app"}
    api.dynos[:] = [
        {
            **common,
            "name": "web.2",
            "state": "crashed",
            "started_at": "2026-11-28T15:17:46+00:00",
            "uptime_seconds": None,
            "crash_count": 3,
            "last_exit_status": 1,
            "next_retry_at": "2026-11-28T15:19:06+00:00",
        },
        {
            **common,
            "name": "web.1",
            "state": "up",
            "started_at": "2026-11-28T15:13:46.677020+00:00",
            "uptime_seconds": 300.2,
            "crash_count": 0,
            "last_exit_status": None,
            "next_retry_at": None,
        },
    ]


@pytest.mark.parametrize(
    ("argument", "complaint"),
    [
        ("web=-1", "'web=-1': the quantity must be a whole number 0 or more"),
        ("web=abc", "'web=abc': the quantity must be a whole number 0 or more"),
        ("web", "'web' is not TYPE=QUANTITY"),
        ("=2", "'=2' is not TYPE=QUANTITY"),
    ],
)
@pytest.mark.parametrize("command", ["ps:scale", "scale"])
def test_scale_arguments_are_checked_before_anything_is_sent(
    logged_in: FakeApi, command: str, argument: str, complaint: str
) -> None:
    result = run(command, "worker=1", argument, "-a", "demo")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {complaint}")
    assert logged_in.requests == []


def test_scale_sends_the_updates(logged_in: FakeApi) -> None:
    with_processes(logged_in)
    result = run("ps:scale", "web=3", "worker=0", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert logged_in.sent("PATCH")[0].body == {
        "updates": [{"type": "web", "quantity": 3}, {"type": "worker", "quantity": 0}]
    }
    assert "web at 3:standard-1x" in result.stdout


def test_config_set_keeps_equals_signs_in_values(logged_in: FakeApi) -> None:
    result = run("config:set", "DATABASE_URL=postgres://u:p@h/db?a=b", "EMPTY=", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert logged_in.sent("PATCH")[0].body == {
        "DATABASE_URL": "postgres://u:p@h/db?a=b",
        "EMPTY": "",
    }
    assert run("config:get", "DATABASE_URL", "-a", "demo").stdout == "postgres://u:p@h/db?a=b\n"


def test_config_set_without_equals_names_the_argument(logged_in: FakeApi) -> None:
    result = run("config:set", "A=1", "NOPE", "-a", "demo")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: 'NOPE' is not KEY=VALUE")
    assert logged_in.requests == []


def test_config_listing_unset_and_get(logged_in: FakeApi) -> None:
    logged_in.config["demo"].update({"A": "1", "LONG_NAME": "two"})
    assert run("config", "-a", "demo").stdout == (
        "=== demo Config Vars\nA:         1\nLONG_NAME: two\n"
    )
    assert run("config:unset", "A", "-a", "demo").exit_code == 0
    assert logged_in.sent("PATCH")[0].body == {"A": None}
    missing = run("config:get", "A", "-a", "demo")
    assert missing.exit_code == 1
    assert missing.stdout == ""
    assert missing.stderr == "error: demo has no config var A\n"


def test_app_comes_from_the_paas_git_remote(logged_in: FakeApi, repo: Path) -> None:
    git("remote", "add", "paas", f"{logged_in.url}/demo.git")
    result = run("apps:info")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("=== demo\n")
    assert logged_in.requests[-1].path == "/apps/demo"


def test_no_app_and_no_remote_is_an_error(logged_in: FakeApi, repo: Path) -> None:
    result = run("ps")
    assert result.exit_code == 1
    assert result.stderr == f"error: {cli.NO_APP_MESSAGE}\n"
    assert logged_in.requests == []


def test_apps_create_adds_the_git_remote_and_git_remote_updates_it(
    logged_in: FakeApi, repo: Path
) -> None:
    result = run("apps:create", "shiny")
    assert result.exit_code == 0, result.output
    assert "shiny" in result.stdout and "http://shiny.paas.localhost:8080/" in result.stdout
    assert git("remote", "get-url", "paas") == f"{logged_in.url}/shiny.git"

    result = run("git:remote", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert git("remote", "get-url", "paas") == f"{logged_in.url}/demo.git"


def test_apps_destroy_needs_confirmation(logged_in: FakeApi) -> None:
    refused = run("apps:destroy", "-a", "demo")
    assert refused.exit_code == 1
    assert "--confirm demo" in refused.stderr
    assert logged_in.sent("DELETE") == []
    assert run("apps:destroy", "-a", "demo", "--confirm", "demo").exit_code == 0
    assert "demo" not in logged_in.apps


@pytest.mark.parametrize(
    "command",
    [
        ["apps"],
        ["apps:info", "-a", "demo"],
        ["config", "-a", "demo"],
        ["ps", "-a", "demo"],
        ["releases", "-a", "demo"],
        ["domains", "-a", "demo"],
    ],
)
def test_json_output_is_only_json(logged_in: FakeApi, command: list[str]) -> None:
    with_processes(logged_in)
    logged_in.releases.append({"id": "r1", "version": 1, "current": True})
    logged_in.domains.append("www.example.com")
    result = run(*command, "--json")
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)
    assert result.stderr == ""


def test_apps_info_json_is_the_app_object(logged_in: FakeApi) -> None:
    result = run("apps:info", "-a", "demo", "--json")
    assert json.loads(result.stdout) == logged_in.apps["demo"]


def test_ps_groups_dynos_by_type(logged_in: FakeApi) -> None:
    with_processes(logged_in)
    result = run("ps", "-a", "demo", obj=cli.Session(environ=_environ(), now=lambda: NOW))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "=== web (standard-1x): gunicorn app:app (2)",
        "web.1: up 2026/11/28 15:13:46 (~ 5m ago)",
        "web.2: crashed 2026/11/28 15:17:46 (~ 1m ago); crashed 3 times, last exit 1, "
        "next retry 15:19:06 (in ~ 20s)",
    ]


def test_releases_newest_first_with_current_marked(logged_in: FakeApi) -> None:
    logged_in.releases[:] = [
        {"version": 1, "description": "Deploy 0a1b2c3d", "status": "succeeded",
         "paas_status": "succeeded", "user": {"id": "u1", "email": "ann@example.com"},
         "current": False, "created_at": "2026-11-28T15:00:00+00:00"},
        {"version": 2, "description": "Set A config var", "status": "pending",
         "paas_status": "deploying", "user": {"id": None, "email": "admin"},
         "current": True, "created_at": "2026-11-28T15:10:00+00:00"},
    ]  # fmt: skip
    result = run("releases", "-a", "demo", obj=cli.Session(environ=_environ(), now=lambda: NOW))
    assert result.stdout.splitlines() == [
        "=== demo Releases - Current: v2",
        "v2  Set A config var  deploying  admin            2026/11/28 15:10:00 (~ 8m ago)"
        "   current",
        "v1  Deploy 0a1b2c3d   succeeded  ann@example.com  2026/11/28 15:00:00 (~ 18m ago)",
    ]


def test_builds_newest_first_with_the_pusher(logged_in: FakeApi) -> None:
    logged_in.builds[:] = [
        {"id": "1a2b3c4d-0000", "status": "failed", "source_blob": {"version": "0a1b2c3d9f"},
         "user": {"id": "u1", "email": "ann@example.com"}, "created_at": "2026-11-28T15:00:00Z"},
        {"id": "5e6f7a8b-0000", "status": "succeeded", "source_blob": {"version": "9f8e7d6c5b"},
         "user": {"id": None, "email": "admin"}, "created_at": "2026-11-28T15:10:00Z"},
    ]  # fmt: skip
    result = run("builds", "-a", "demo", obj=cli.Session(environ=_environ(), now=lambda: NOW))
    assert result.stdout.splitlines() == [
        "=== demo Builds",
        "5e6f7a8b  succeeded  9f8e7d6c  admin            2026/11/28 15:10:00 (~ 8m ago)",
        "1a2b3c4d  failed     0a1b2c3d  ann@example.com  2026/11/28 15:00:00 (~ 18m ago)",
    ]


@pytest.mark.parametrize(
    ("given", "body"), [(["v3"], {"release": 3}), (["3"], {"release": 3}), ([], {})]
)
def test_rollback_accepts_v_prefix_or_nothing(
    logged_in: FakeApi, given: list[str], body: dict[str, int]
) -> None:
    for status in ("succeeded", "succeeded", "succeeded", "deploying"):
        logged_in.add_release({"web": "serve"}, status)
    result = run("rollback", *given, "-a", "demo")
    assert result.exit_code == 0, result.output
    assert logged_in.sent("POST")[0].body == body


def test_rollback_rejects_a_bad_version(logged_in: FakeApi) -> None:
    result = run("rollback", "vx", "-a", "demo")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: 'vx' is not a release version")
    assert logged_in.requests == []


@pytest.mark.parametrize(
    ("args", "path"),
    [
        ([], "/apps/demo/dynos"),
        (["web"], "/apps/demo/dynos/web"),
        (["web.1"], "/apps/demo/dynos/web.1"),
    ],
)
def test_restart_targets(logged_in: FakeApi, args: list[str], path: str) -> None:
    with_processes(logged_in)
    result = run("restart", *args, "-a", "demo")
    assert result.exit_code == 0, result.output
    assert logged_in.sent("DELETE")[0].path == path
    assert result.stdout.startswith("Restarting")


def test_logs_passes_num_dyno_and_source(logged_in: FakeApi) -> None:
    logged_in.log_lines[:] = [f"2026-11-28T15:13:4{i}+00:00 app[web.1]: line {i}" for i in range(5)]
    result = run("logs", "-n", "2", "-d", "web.1", "-s", "app", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert logged_in.requests[-1].query == {"num": "2", "dyno": "web.1", "source": "app"}
    assert result.stdout.splitlines() == logged_in.log_lines[-2:]


def test_logs_tail_polls_after_the_cursor_and_stops_cleanly(logged_in: FakeApi) -> None:
    logged_in.log_lines[:] = ["first"]
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:
            raise KeyboardInterrupt  # what Ctrl-C does
        logged_in.log_lines.append(f"new {len(naps)}")

    result = run("logs", "--tail", "-a", "demo", obj=cli.Session(environ=_environ(), sleep=sleep))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["first", "new 1", "new 2"]
    assert naps == [0.5, 0.5, 0.5]
    assert [r.query.get("after") for r in logged_in.requests] == [None, "1", "2"]


def test_domains_add_list_remove(logged_in: FakeApi) -> None:
    assert run("domains:add", "www.example.com", "-a", "demo").exit_code == 0
    assert run("domains", "-a", "demo").stdout == "=== demo Domains\nwww.example.com\n"
    assert run("domains:remove", "www.example.com", "-a", "demo").exit_code == 0
    assert logged_in.domains == []


def _environ() -> dict[str, str]:
    return dict(os.environ)


def test_apps_walks_every_page_of_the_listing(logged_in: FakeApi) -> None:
    for i in range(250):
        logged_in.add_app(f"app{i:03d}")
    result = run("apps")
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == sorted([f"app{i:03d}" for i in range(250)] + ["demo"])
    assert len([r for r in logged_in.requests if r.path == "/apps"]) == 3  # pages of 100
