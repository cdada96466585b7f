"""The core loop, end to end: real git pushes, real HAProxy, real dyno processes.

The tests in this module share one platform and one app, and run in order.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import shutil
import signal
import subprocess
import time

import pytest
from platform_harness import PAAS, Platform, commit, free_port, wait_for

from paas.artifacts import stacks
from paas.domain import sizes
from paas.isolation import cgroups, container

APP = "e2e"


def answered_by(platform: Platform, count: int, timeout: float = 30) -> set[str]:
    """Polls through the router until `count` distinct dynos have answered."""
    seen: set[str] = set()

    def enough() -> bool:
        body = platform.get_json(APP)
        if body:
            seen.add(body["dyno"])
        return len(seen) >= count

    wait_for(enough, timeout, f"{count} dynos to answer")
    return seen


def serving(platform: Platform, key: str, value: str, timeout: float = 30) -> None:
    wait_for(
        lambda: (platform.get_json(APP) or {}).get(key) == value,
        timeout,
        f"{key}={value} through the router",
    )


def release_count(platform: Platform) -> int:
    return len(json.loads(platform.paas("releases", "-a", APP, "--json").stdout))


def test_push_deploys_and_serves_through_the_router(platform: Platform) -> None:
    platform.paas("apps:create", APP, "--no-remote")
    repo = platform.new_repo("repo")
    result = platform.push(APP, repo)
    assert result.returncode == 0, result.stderr
    assert "remote: -----> Python app detected" in result.stderr
    assert "Launching... done, v1" in result.stderr
    serving(platform, "dyno", "web.1")
    info = json.loads(platform.paas("apps:info", "-a", APP, "--json").stdout)
    assert info["git_url"] == f"{platform.api_url}/{APP}.git"
    assert info["web_url"] == f"http://{APP}.paas.localhost:{platform.http_port}/"


def test_unknown_host_gets_404(platform: Platform) -> None:
    status, _ = platform.get("nosuchapp")
    assert status == 404


def test_custom_domain_routes_to_the_app(platform: Platform) -> None:
    platform.paas("domains:add", "www.example.test", "-a", APP)

    def served() -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", platform.http_port, timeout=5)
        try:
            connection.request("GET", "/", headers={"Host": "WWW.example.test:80"})
            return bool(json.loads(connection.getresponse().read()).get("dyno") == "web.1")
        except ValueError:
            return False
        finally:
            connection.close()

    wait_for(served, 30, "the custom domain to route")
    events = platform.paas("logs", "-a", APP, "--dyno", "router", "-n", "50").stdout
    assert "paas[router]: Routing to web.1" in events


def test_config_set_is_visible_without_a_push(platform: Platform) -> None:
    builds_before = len(json.loads(platform.paas("apps:info", "-a", APP, "--json").stdout))
    platform.paas("config:set", "GREETING=hello from config", "-a", APP)
    serving(platform, "message", "hello from config")
    releases = json.loads(platform.paas("releases", "-a", APP, "--json").stdout)
    assert releases[-1]["description"] == "Set GREETING config vars"
    assert platform.paas("config:get", "GREETING", "-a", APP).stdout.strip() == "hello from config"
    assert builds_before == len(json.loads(platform.paas("apps:info", "-a", APP, "--json").stdout))
    status, builds = platform.request("GET", f"/apps/{APP}/builds")
    assert status == 200 and isinstance(builds, list) and len(builds) == 1  # no rebuild


def test_scale_up_to_three_and_back_to_one(platform: Platform) -> None:
    platform.paas("ps:scale", "web=3", "-a", APP)
    assert answered_by(platform, 3) == {"web.1", "web.2", "web.3"}
    platform.paas("scale", "web=1", "-a", APP)

    def only_web1() -> bool:
        dynos = json.loads(platform.paas("ps", "-a", APP, "--json").stdout)
        return [d["name"] for d in dynos] == ["web.1"]

    wait_for(only_web1, 30, "scale down to web.1")
    assert {platform.get_json(APP)["dyno"] for _ in range(6)} == {"web.1"}  # type: ignore[index]


def running_dynos(platform: Platform) -> list[dict[str, object]]:
    return [d for d in platform.dyno_statuses(APP) if d.get("state") == "running"]


def the_running_dyno(platform: Platform) -> dict[str, object]:
    def single() -> dict[str, object] | None:
        running = running_dynos(platform)
        return running[0] if len(running) == 1 else None

    return wait_for(single, 30, "exactly one running dyno")


def memory_limit_bytes(dyno: dict[str, object]) -> int:
    """The memory limit the kernel enforces on a container dyno: its cgroup's, read from
    the cgroup its pid 1 is in (not what the platform's spec asked for)."""
    plan = container.plan_from(dyno["container"])
    assert plan is not None
    pid = container.init_pid(str(dyno["id"]), plan)
    group = None if pid is None else cgroups.of_process(pid)
    assert group is not None, f"no cgroup found for {dyno['id']} (pid {pid})"
    name = "memory.max" if group.version == 2 else "memory.limit_in_bytes"
    return int(group.file("memory", name).read_text())


def test_resize_restarts_dynos_with_the_new_size(platform: Platform) -> None:
    before = the_running_dyno(platform)
    platform.paas("ps:resize", "web=standard-2x", "-a", APP)
    formation = platform.request("GET", f"/apps/{APP}/formation")[1]
    assert isinstance(formation, list) and formation[0]["size"] == "Standard-2X"

    def replaced() -> bool:
        ids = [d["id"] for d in running_dynos(platform)]
        return len(ids) == 1 and ids[0] != before["id"]

    wait_for(replaced, 30, "the dyno to restart at standard-2x")
    serving(platform, "dyno", "web.1")


def test_resized_dyno_runs_under_the_new_memory_limit(platform: Platform) -> None:
    dyno = the_running_dyno(platform)
    if not dyno.get("container"):
        reason = json.loads((platform.home / "run" / "isolation.json").read_text())["reason"]
        pytest.skip(
            f"dynos run as plain processes here ({reason}): nothing enforces a size's memory "
            "limit on a plain process, so there is none to check"
        )
    assert memory_limit_bytes(dyno) == sizes.memory_mb("standard-2x") * 2**20 == 2**30


def test_resize_to_an_unknown_size_is_refused(platform: Platform) -> None:
    result = platform.paas("ps:resize", "web=huge", "-a", APP, check=False)
    assert result.returncode != 0 and "invalid dyno size" in result.stderr
    formation = platform.request("GET", f"/apps/{APP}/formation")[1]
    assert isinstance(formation, list) and formation[0]["size"] == "Standard-2X"


def test_killed_dyno_is_replaced(platform: Platform) -> None:
    (victim,) = [d for d in platform.dyno_statuses(APP) if d.get("state") == "running"]
    os.kill(int(victim["pid"]), signal.SIGKILL)  # type: ignore[call-overload]

    def replaced() -> bool:
        running = [d for d in platform.dyno_statuses(APP) if d.get("state") == "running"]
        return any(d["id"] != victim["id"] for d in running) and bool(platform.get_json(APP))

    wait_for(replaced, 30, "a replacement dyno")
    dynos = json.loads(platform.paas("ps", "-a", APP, "--json").stdout)
    assert dynos[0]["crash_count"] == 1 and dynos[0]["last_exit_status"] == 137


def test_code_change_is_redeployed(platform: Platform) -> None:
    repo = platform.base / "repo"
    app_py = repo / "app.py"
    app_py.write_text(app_py.read_text().replace('"Hello from paas"', '"Hello v2"'))
    platform.paas("config:unset", "GREETING", "-a", APP)
    commit(repo, "new greeting")
    result = platform.push(APP, repo)
    assert result.returncode == 0, result.stderr
    # Not installed again: from the app's cache, or the platform's shared one (containers).
    reused = ("Dependencies unchanged", "Reusing the platform's shared environment")
    assert any(words in result.stderr for words in reused), result.stderr
    assert "Resolved" not in result.stderr
    serving(platform, "message", "Hello v2")


def test_failed_build_rejects_the_push_and_keeps_serving(platform: Platform) -> None:
    repo = platform.base / "repo"
    before = release_count(platform)
    (repo / "requirements.txt").write_text("flask\ngunicorn\nno-such-package-paas-test==9.9\n")
    commit(repo, "broken dependency")
    result = platform.push(APP, repo)
    assert result.returncode != 0
    assert "pre-receive hook declined" in result.stderr
    assert release_count(platform) == before
    assert platform.get_json(APP)["message"] == "Hello v2"  # type: ignore[index]
    (repo / "requirements.txt").write_text("flask\ngunicorn\n")
    commit(repo, "fix dependency")


def test_bad_procfile_fails_the_build_naming_the_line(platform: Platform) -> None:
    repo = platform.base / "repo"
    procfile = repo / "Procfile"
    good = procfile.read_text()
    procfile.write_text(good + "this is not a process line\n")
    commit(repo, "broken Procfile")
    result = platform.push(APP, repo)
    assert result.returncode != 0
    assert "Procfile line 2" in result.stderr
    procfile.write_text(good)
    commit(repo, "fixed Procfile")


def test_rollback_serves_the_previous_release(platform: Platform) -> None:
    releases = json.loads(platform.paas("releases", "-a", APP, "--json").stdout)
    first_deploy = releases[0]["version"]
    platform.paas("rollback", f"v{first_deploy}", "-a", APP)
    serving(platform, "message", "Hello from paas")
    latest = json.loads(platform.paas("releases", "-a", APP, "--json").stdout)[-1]
    assert latest["description"] == f"Rollback to v{first_deploy}" and latest["current"]


def test_logs_show_dyno_output_and_platform_events(platform: Platform) -> None:
    app_lines = platform.paas("logs", "-a", APP, "--source", "app", "-n", "500").stdout
    assert " app[web.1]: " in app_lines and "Listening at" in app_lines
    events = platform.paas("logs", "-a", APP, "--source", "paas", "-n", "500").stdout
    assert "paas[web.1]: State changed from starting to up" in events
    assert "paas[api]: Release v1 created" in events
    one = platform.paas("logs", "-a", APP, "--dyno", "web.2", "-n", "500").stdout
    assert one and all("[web.2]" in line for line in one.splitlines())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("apps:create", "../x", "--no-remote"), "invalid app name"),
        (("ps:scale", "web=-1", "-a", APP), "web=-1"),
        (("ps:scale", "web=abc", "-a", APP), "web=abc"),
        (("ps", "-a", "no-such-app"), "not found"),
        (("config:set", "PORT=1", "-a", APP), "reserved"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    platform: Platform, args: tuple[str, ...], message: str
) -> None:
    before = (platform.paas("apps").stdout, release_count(platform))
    result = platform.paas(*args, check=False)
    assert result.returncode != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert (platform.paas("apps").stdout, release_count(platform)) == before


def test_wrong_token_is_refused(platform: Platform) -> None:
    result = platform.paas("apps", check=False, env={**platform.env, "PAAS_API_TOKEN": "wrong"})
    assert result.returncode != 0 and "invalid credentials" in result.stderr
    status, body = platform.request("GET", "/apps", token="wrong")
    assert status == 401
    assert body == {
        "id": "unauthorized",
        "message": "invalid credentials: the API token was not accepted",
    }
    before = release_count(platform)
    push = platform.push(APP, platform.base / "repo", token="wrong")
    assert push.returncode != 0 and "Authentication failed" in push.stderr
    assert release_count(platform) == before


def test_dynos_survive_kill_9_of_the_control_plane(platform: Platform) -> None:
    before = sorted(
        str(d["id"]) for d in platform.dyno_statuses(APP) if d.get("state") == "running"
    )
    assert platform.server is not None
    pgrep = subprocess.run(
        ["pgrep", "-P", str(platform.server.pid)], capture_output=True, text=True, timeout=10
    )
    children = [int(p) for p in pgrep.stdout.split()]
    assert children
    platform.kill_server()
    wait_for(
        lambda: not any(os.path.exists(f"/proc/{p}") for p in children),
        15,
        "the control plane's children to end with it",
    )
    assert platform.get_json(APP)  # the dyno and HAProxy keep serving
    platform.start()
    wait_for(lambda: platform.get_json(APP), 15, "serving after restart")
    after = sorted(str(d["id"]) for d in platform.dyno_statuses(APP) if d.get("state") == "running")
    assert after == before  # adopted, not restarted


def test_logs_tail_follows_new_lines(platform: Platform) -> None:
    tail = subprocess.Popen(
        [str(PAAS), "logs", "--tail", "-a", APP, "-n", "1", "--source", "paas"],
        env=platform.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert tail.stdout is not None
        ready, _, _ = select.select([tail.stdout], [], [], 20)
        assert ready, "logs --tail printed no first line"
        seen = tail.stdout.readline()  # the tail is following from here on
        platform.paas("config:set", "TAILED=1", "-a", APP)
        deadline = time.monotonic() + 20
        while "Set TAILED config vars" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([tail.stdout], [], [], 0.5)
            if ready:
                seen += tail.stdout.readline()
        assert "Set TAILED config vars" in seen
    finally:
        tail.kill()
        tail.wait(10)
        if tail.stdout is not None:
            tail.stdout.close()


def test_concurrent_pushes_are_serialized(platform: Platform) -> None:
    repo = platform.base / "repo"
    before = release_count(platform)
    (repo / "first.txt").write_text("first push\n")
    commit(repo, "first push")
    first = subprocess.Popen(
        ["git", "push", "-f", platform.git_url(APP), "main"],
        cwd=repo,
        env=platform.env,
        stderr=subprocess.PIPE,
        text=True,
    )
    other = platform.base / "repo2"
    shutil.copytree(repo, other)
    (other / "extra.txt").write_text("second push\n")
    commit(other, "second push")
    second = platform.push(APP, other)
    _, first_err = first.communicate(timeout=300)
    outcomes = [first.returncode, second.returncode]
    assert 0 in outcomes
    # Each build's output is whole: never two builds' steps interleaved in one push.
    for output in (first_err, second.stderr):
        assert output.count("-----> Python app detected") <= 1
    versions = [
        r["version"] for r in json.loads(platform.paas("releases", "-a", APP, "--json").stdout)
    ]
    assert versions == list(range(1, len(versions) + 1))
    assert len(versions) == before + outcomes.count(0)


def test_destroyed_app_stops_serving(platform: Platform) -> None:
    platform.paas("apps:create", "doomed", "--no-remote")
    repo = platform.new_repo("doomed-repo")
    assert platform.push("doomed", repo).returncode == 0
    wait_for(lambda: platform.get_json("doomed"), 30, "doomed to serve")
    platform.paas("apps:destroy", "-a", "doomed", "--confirm", "doomed")
    wait_for(lambda: platform.get("doomed")[0] == 404, 30, "doomed to be gone from the router")
    wait_for(lambda: not platform.dyno_statuses("doomed"), 30, "doomed's dynos to stop")


def custom_buildpack_app(platform: Platform, app: str, compile_script: str) -> None:
    """An app built by a one-off buildpack (BUILDPACK_URL), its repo at BASE/APP-repo."""
    buildpack = platform.buildpack(app, {"detect": f"echo {app}", "compile": compile_script})
    platform.paas("apps:create", app, "--no-remote")
    platform.paas("config:set", f"BUILDPACK_URL={buildpack}", "-a", app)
    repo = platform.base / f"{app}-repo"
    repo.mkdir()
    (repo / "Procfile").write_text("web: exec python3 -m http.server $PORT\n")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True, timeout=30)
    commit(repo, f"{app} app")


def test_build_output_streams_live_from_a_buildpack_url(platform: Platform) -> None:
    custom_buildpack_app(
        platform, "streamed", "echo '-----> first step'\nsleep 3\necho '-----> second step'"
    )
    repo = platform.base / "streamed-repo"
    first_seen = None
    with subprocess.Popen(
        ["git", "push", platform.git_url("streamed"), "main"],
        cwd=repo,
        env=platform.env,
        stderr=subprocess.PIPE,
        text=True,
    ) as push:
        assert push.stderr is not None
        for line in push.stderr:
            if "first step" in line:
                first_seen = time.monotonic()
        assert push.wait(60) == 0
    assert first_seen is not None and time.monotonic() - first_seen > 2.0
    platform.paas("apps:destroy", "-a", "streamed", "--confirm", "streamed")


@pytest.mark.skipif(
    os.geteuid() != 0
    or stacks.rootfs(stacks.DEFAULT_STACK) is None
    or not (shutil.which("skopeo") and shutil.which("umoci") and shutil.which("runc")),
    reason="needs root, a built stack, skopeo, umoci and runc",
)
def test_exported_image_is_a_valid_oci_archive_that_runs(platform: Platform) -> None:
    archive = platform.base / "e2e.tar"
    platform.paas("images:export", "-a", APP, "-o", str(archive))
    inspect = subprocess.run(
        ["skopeo", "inspect", f"oci-archive:{archive}:web"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert inspect.returncode == 0, inspect.stderr
    assert len(json.loads(inspect.stdout)["Layers"]) == 2
    layout, bundle = platform.base / "layout", platform.base / "bundle"
    layout.mkdir()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(layout)], check=True, timeout=120)
    subprocess.run(
        ["umoci", "unpack", "--image", f"{layout}:web", str(bundle)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    port = free_port()
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["env"] = [e for e in config["process"]["env"] if not e.startswith("PORT=")]
    config["process"]["env"].append(f"PORT={port}")
    config["process"]["terminal"] = False
    namespaces = config["linux"]["namespaces"]
    config["linux"]["namespaces"] = [n for n in namespaces if n["type"] != "network"]
    (bundle / "config.json").write_text(json.dumps(config))
    state = platform.base / "runc-state"
    name = f"export-test-{os.getpid()}"
    with subprocess.Popen(
        ["runc", "--root", str(state), "run", "--bundle", str(bundle), name],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as container:
        try:

            def answers() -> bool:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                try:
                    connection.request("GET", "/")
                    return connection.getresponse().status == 200
                finally:
                    connection.close()

            wait_for(answers, 30, "the exported image's web entrypoint to answer")
        finally:
            subprocess.run(
                ["runc", "--root", str(state), "kill", name, "KILL"],
                capture_output=True,
                timeout=30,
            )
            container.wait(30)
            subprocess.run(
                ["runc", "--root", str(state), "delete", "--force", name],
                capture_output=True,
                timeout=30,
            )


@pytest.mark.skipif(
    os.geteuid() != 0 or stacks.rootfs(stacks.DEFAULT_STACK) is None,
    reason="builds run in a capped container only as root with a built stack",
)
def test_a_build_that_eats_memory_is_killed_at_its_cap(platform: Platform) -> None:
    custom_buildpack_app(
        platform, "greedy", "python3 -c 'b = []\nwhile True: b.append(bytearray(2**24))'"
    )
    repo = platform.base / "greedy-repo"
    before = platform.get_json(APP)
    result = platform.push("greedy", repo)
    assert result.returncode != 0
    assert "ran out of memory and was killed (limit 512 MB)" in result.stderr
    assert platform.get_json(APP) == before  # serving dynos unaffected
    platform.paas("apps:destroy", "-a", "greedy", "--confirm", "greedy")
