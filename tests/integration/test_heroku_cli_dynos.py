"""Heroku's own CLI drives paas's formation, dynos, logs and one-off dynos: each command's
output, and its effect on the dynos that really run (the supervisors' records on disk).

One platform for the module, one app `dynoshop` with web, worker and clock process types;
the tests run in file order and each leaves the formation as the next expects it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from heroku_cli import HerokuCli
from platform_harness import Platform, commit, git, running, wait_for

pytestmark = pytest.mark.integration
APP = "dynoshop"
PROCFILE = (
    "web: python3 -m http.server $PORT\n"
    "worker: while true; do echo worker-tick-$(date +%s%N); sleep 0.5; done\n"
    "clock: sleep 100000\n"
)


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    with running() as platform:
        repo = platform.base / APP
        repo.mkdir()
        (repo / "Procfile").write_text(PROCFILE)
        git(repo, "init", "-q", "-b", "main")
        commit(repo, "a Procfile app")
        platform.paas("apps:create", APP, "--no-remote")
        pushed = platform.push(APP, repo)
        assert pushed.returncode == 0, pushed.stderr
        yield platform


@pytest.fixture(scope="module")
def cli(platform: Platform) -> HerokuCli:
    return HerokuCli(platform)


def running_dynos(platform: Platform, kind: str | None = None) -> list[dict[str, object]]:
    """The app's dynos whose supervisors record them running, newest state on disk."""
    return [
        d
        for d in platform.dyno_statuses(APP)
        if d.get("state") == "running" and (kind is None or d["type"] == kind)
    ]


def names(dynos: list[dict[str, object]]) -> list[str]:
    return sorted(str(d["name"]) for d in dynos)


def settled(platform: Platform, wanted: dict[str, int]) -> dict[str, list[str]]:
    """Waits until exactly `wanted` dynos of each type run; their names by type."""

    def check() -> dict[str, list[str]] | None:
        now = {kind: names(running_dynos(platform, kind)) for kind in wanted}
        return now if all(len(now[k]) == n for k, n in wanted.items()) else None

    return wait_for(check, 60, f"dynos {wanted}")


def test_ps_scale_several_types_at_once(platform: Platform, cli: HerokuCli) -> None:
    scaled = cli("ps:scale", "web=2", "worker=1", "-a", APP)
    assert "now running web at 2:Standard-1X, worker at 1:Standard-1X" in scaled.stderr
    now = settled(platform, {"web": 2, "worker": 1, "clock": 0})
    assert now == {"web": ["web.1", "web.2"], "worker": ["worker.1"], "clock": []}
    shown = cli("ps:scale", "-a", APP)
    assert shown.stdout.split() == [
        "clock=0:Standard-1X",
        "web=2:Standard-1X",
        "worker=1:Standard-1X",
    ]


def test_ps_lists_the_dynos_by_command(platform: Platform, cli: HerokuCli) -> None:
    wait_for(
        lambda: (
            [d for d in json.loads(cli("ps", "-a", APP, "--json").stdout) if d["state"] == "up"]
            and all(d["state"] == "up" for d in json.loads(cli("ps", "-a", APP, "--json").stdout))
        ),
        60,
        "every dyno up",
    )
    listed = cli("ps", "-a", APP).stdout
    assert "=== web (Standard-1X): python3 -m http.server $PORT (2)" in listed
    assert "=== worker (Standard-1X): while true;" in listed
    for name in ("web.1", "web.2", "worker.1"):
        assert f"{name}: up " in listed
    dynos = json.loads(cli("ps", "-a", APP, "--json").stdout)
    assert {d["name"] for d in dynos} == {"web.1", "web.2", "worker.1"}
    assert all(d["app"]["name"] == APP and d["release"]["version"] == 1 for d in dynos)


def test_ps_restart_all_a_type_and_one_dyno(platform: Platform, cli: HerokuCli) -> None:
    def pids(kind: str | None = None) -> dict[str, object]:
        return {str(d["name"]): d.get("pid") for d in running_dynos(platform, kind)}

    before = pids()
    restarted = cli("ps:restart", "--dyno-name", "web.1", "-a", APP)
    assert f"Restarting dyno web.1 on {APP}... done" in restarted.stderr
    wait_for(lambda: pids("web").get("web.1") not in (None, before["web.1"]), 60, "a new web.1")
    assert pids("web")["web.2"] == before["web.2"] and pids("worker") == {
        "worker.1": before["worker.1"]
    }

    before = pids()
    restarted = cli("ps:restart", "--process-type", "worker", "-a", APP)
    assert f"Restarting all worker dynos on {APP}... done" in restarted.stderr
    wait_for(lambda: pids("worker").get("worker.1") not in (None, before["worker.1"]), 60, "worker")
    assert pids("web") == {k: v for k, v in before.items() if k.startswith("web")}

    before = pids()
    restarted = cli("ps:restart", "-a", APP)
    assert f"Restarting all dynos on {APP}... done" in restarted.stderr
    wait_for(
        lambda: len(pids()) == 3 and not set(pids().values()) & set(before.values()),
        90,
        "every dyno replaced",
    )


def test_ps_stop_a_dyno_and_a_type(platform: Platform, cli: HerokuCli) -> None:
    """As on Heroku, a stopped formation dyno is replaced by a fresh one."""
    settled(platform, {"web": 2, "worker": 1})
    worker = running_dynos(platform, "worker")[0]["pid"]
    stopped = cli("ps:stop", "--dyno-name", "worker.1", "-a", APP)
    assert f"Stopping dyno worker.1 on {APP}... done" in stopped.stderr
    wait_for(
        lambda: [d for d in running_dynos(platform, "worker") if d.get("pid") != worker],
        60,
        "a fresh worker.1",
    )
    web = {d.get("pid") for d in running_dynos(platform, "web")}
    stopped = cli("ps:stop", "--process-type", "web", "-a", APP)
    assert f"Stopping all web dynos on {APP}... done" in stopped.stderr
    wait_for(
        lambda: (
            len(fresh := {d.get("pid") for d in running_dynos(platform, "web")}) == 2
            and not fresh & web
        ),
        90,
        "fresh web dynos",
    )
    refused = cli("ps:stop", "--dyno-name", "nope.1", "-a", APP, check=False)
    assert refused.returncode != 0 and "no dyno or process type 'nope.1'" in refused.stderr


def test_ps_type_resizes_a_type(platform: Platform, cli: HerokuCli) -> None:
    resized = cli("ps:type", "worker=standard-2x", "-a", APP)
    assert "worker │ Standard-2X" in resized.stdout or "worker  Standard-2X" in " ".join(
        resized.stdout.split("  ")
    )
    status, formation = platform.request("GET", f"/apps/{APP}/formation/worker")
    assert status == 200 and isinstance(formation, dict) and formation["size"] == "Standard-2X"
    wait_for(
        lambda: [d for d in running_dynos(platform, "worker") if memory_of(d) == 1024],
        90,
        "a worker with 1024 MB",
    )
    refused = cli("ps:resize", "worker=huge-9x", "-a", APP, check=False)
    assert refused.returncode != 0 and "use one of Standard-1X, Standard-2X" in refused.stderr


def memory_of(dyno: dict[str, object]) -> object:
    container = dyno.get("container")
    env = dyno.get("env")
    if isinstance(container, dict) and "memory_mb" in container:
        return container["memory_mb"]
    return env.get("PAAS_MEMORY_MB") if isinstance(env, dict) else None
