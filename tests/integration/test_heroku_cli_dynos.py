"""Heroku's own CLI drives paas's formation, dynos, logs and one-off dynos: each command's
output, and its effect on the dynos that really run (the supervisors' records on disk).

One platform for the module, one app `dynoshop` with web, worker and clock process types;
the tests run in file order and each leaves the formation as the next expects it.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from heroku_cli import HEROKU, HerokuCli
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
    """Heroku's CLI trusting the platform's rendezvous certificate, as its user would."""
    cli = HerokuCli(platform)
    cli.env["NODE_EXTRA_CA_CERTS"] = str(platform.home / "rendezvous" / "cert.pem")
    return cli


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
    scaled(platform, web=2, worker=1)
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
    rows = [line.replace("│", " ").split() for line in resized.stdout.splitlines()]
    assert ["worker", "Standard-2X", "1", "~$0.069", "$50"] in rows, resized.stdout
    assert ["web", "Standard-1X", "2", "~$0.069", "$50"] in rows, resized.stdout
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


def log_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def scaled(platform: Platform, **wanted: int) -> None:
    """The formation as `wanted`, through the API (for tests that need dynos, not scaling)."""
    updates = [{"type": kind, "quantity": n} for kind, n in wanted.items()]
    status, _ = platform.request_json("PATCH", f"/apps/{APP}/formation", {"updates": updates})
    assert status == 200
    settled(platform, wanted)


def test_logs_num_dyno_and_source(platform: Platform, cli: HerokuCli) -> None:
    scaled(platform, worker=1)
    wait_for(lambda: "worker-tick-" in cli("logs", "-a", APP).stdout, 30, "a worker line")
    five = log_lines(cli("logs", "-a", APP, "--num", "5").stdout)
    assert len(five) == 5
    assert all(re_logplex(line) for line in five), five

    def twenty_ticks() -> list[str] | None:
        """worker.1's last 20 lines, once all are its ticks (a worker just (re)started has
        its own state lines among them, and ticks twice a second)."""
        shown = log_lines(cli("logs", "-a", APP, "--dyno", "worker.1", "-n", "20").stdout)
        ticks = len(shown) == 20 and all(" app[worker.1]: worker-tick-" in s for s in shown)
        return shown if ticks else None

    wait_for(twenty_ticks, 40, "20 worker.1 ticks in a row, and no other dyno's line")
    of_type = log_lines(cli("logs", "-a", APP, "--process-type", "worker", "-n", "3").stdout)
    assert len(of_type) == 3 and all(" app[worker." in line for line in of_type)
    platform_only = log_lines(cli("logs", "-a", APP, "--source", "heroku", "-n", "50").stdout)
    assert platform_only and all(" paas[" in line for line in platform_only)
    assert any("Scaled to" in line for line in platform_only)


def re_logplex(line: str) -> bool:
    """`2026-12-02T00:10:00.123456+00:00 app[worker.1]: message`"""
    stamp, _, rest = line.partition(" ")
    return stamp.endswith("+00:00") and "T" in stamp and "]: " in rest


def test_logs_tail_streams_what_the_app_writes_after_it_started(
    platform: Platform, cli: HerokuCli
) -> None:
    tail = subprocess.Popen(
        [str(HEROKU), "logs", "--tail", "-a", APP, "--dyno", "worker.1", "-n", "1"],
        env=cli.env,
        cwd=cli.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, tail.kill)  # readline must not wait forever
    watchdog.start()
    try:
        assert tail.stdout is not None
        first = tail.stdout.readline()  # the history line: the stream is open
        assert " app[worker.1]: worker-tick-" in first, first
        streaming_since = time.time_ns()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = tail.stdout.readline()
            tick = line.rpartition("worker-tick-")[2].strip()
            if tick.isdigit() and int(tick) > streaming_since:
                break  # written by the worker after the tail was streaming
        else:
            raise AssertionError("no line written after the tail started came through")
        assert tail.poll() is None  # still following
    finally:
        watchdog.cancel()
        tail.kill()  # by its pid: stops the CLI as a user's Ctrl-C would
        tail.communicate(timeout=10)  # reaps it and closes its pipes


def test_heroku_run_prints_the_output_and_passes_the_exit_status(
    platform: Platform, cli: HerokuCli
) -> None:
    ran = cli("run", "-a", APP, "--", "echo", "hi from $DYNO")
    assert ran.stdout.replace("\r\n", "\n") == "hi from run.1\n", ran
    assert 'Running echo "hi from $DYNO" on dynoshop... up, run.1' in ran.stderr
    failed = cli("run", "-x", "-a", APP, "--", "sh -c 'exit 3'", check=False)
    assert failed.returncode == 3, failed
    assert "Process exited with code 3" in failed.stderr
    piped = cli("run", "--no-tty", "-a", APP, "--", "tr", "a-z", "A-Z", stdin="shout\n")
    assert piped.stdout.replace("\r\n", "\n") == "SHOUT\n", piped
    wait_for(lambda: not running_dynos(platform, "run"), 30, "the run dynos to end")


def test_heroku_run_detached_runs_to_its_end(platform: Platform, cli: HerokuCli) -> None:
    ran = cli("run:detached", "-a", APP, "--", "echo", "detached-ran")
    assert "Running echo detached-ran on dynoshop... done, run." in ran.stderr
    assert "Run heroku logs --app dynoshop --dyno run." in ran.stdout + ran.stderr
    wait_for(lambda: "detached-ran" in cli("logs", "-a", APP, "-n", "200").stdout, 60, "its line")


def test_ps_shows_a_one_off_and_ps_kill_ends_it(platform: Platform, cli: HerokuCli) -> None:
    started = cli("run:detached", "-a", APP, "-s", "Standard-2X", "--", "sleep", "300")
    name = started.stderr.rpartition("done, ")[2].split()[0].strip(",")
    assert name.startswith("run."), started.stderr
    wait_for(lambda: names(running_dynos(platform, "run")) == [name], 60, "the one-off")

    def shown() -> str | None:
        out = cli("ps", "-a", APP).stdout
        return out if f"{name} (Standard-2X): up" in out else None

    listed = wait_for(shown, 30, "the one-off up in heroku ps")
    assert "=== run: one-off processes (1)" in listed and ": sleep 300" in listed
    killed = cli("ps:kill", "--dyno-name", name, "-a", APP)
    assert f"Stopping dyno {name} on {APP}... done" in killed.stderr
    wait_for(lambda: not running_dynos(platform, "run"), 30, "the one-off to end")
