"""`paas run`, `run:detached` and `ps:stop` on a real platform: one-off dynos of a deployed
app, in containers when the tests run as root, driven through the real CLI (a pty where a
terminal is wanted).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import termios
import time
import urllib.request
from collections.abc import Iterator

import pytest
from platform_harness import PAAS, Platform, commit, git, running, wait_for

from paas.cli import client as client_errors
from paas.cli import websocket
from paas.host import procs
from paas.state import one_offs
from paas.state.store import Store

pytestmark = pytest.mark.integration
APP = "runner"
OTHER = "bystander"
PROCFILE = (
    "web: python3 -m http.server $PORT\nworker: echo worker-ran $GREETING\ngreet: echo greet-ran\n"
)


def deploy(platform: Platform, app: str) -> None:
    repo = platform.base / app
    repo.mkdir()
    (repo / "Procfile").write_text(PROCFILE)
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "a Procfile app")
    platform.paas("apps:create", app, "--no-remote")
    pushed = platform.push(app, repo)
    assert pushed.returncode == 0, pushed.stderr


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    with running() as platform:
        deploy(platform, APP)
        platform.paas("config:set", "GREETING=hello", "-a", APP)
        deploy(platform, OTHER)
        yield platform


def run(
    platform: Platform, *args: str, stdin: bytes = b"", timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """`paas run -a APP ARGS…` with `stdin` piped in (so: no terminal)."""
    return subprocess.run(
        [str(PAAS), "run", "-a", APP, *args],
        env=platform.env,
        input=stdin,
        capture_output=True,
        timeout=timeout,
    )


def run_dynos(platform: Platform, app: str = APP) -> list[dict[str, object]]:
    """The app's one-off run.N dynos whose directories exist, with their status."""
    return [d for d in platform.dyno_statuses(app) if str(d["name"]).startswith("run.")]


def test_the_cli_exits_with_the_commands_exit_status(platform: Platform) -> None:
    assert run(platform, "--", "true").returncode == 0
    assert run(platform, "--", "sh", "-c", "exit 3").returncode == 3
    assert run(platform, "--", "kill -9 $$").returncode == 137  # SIGKILL: 128 + 9
    assert run(platform, "--", "kill -TERM $$").returncode == 143


def test_stdin_is_streamed_until_its_end(platform: Platform) -> None:
    data = os.urandom(300_000).hex().encode()  # 600 kB: more than any pipe holds at once
    result = run(platform, "--", "sha256sum", stdin=data)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()
    lines = run(platform, "--", "wc -l", stdin=b"one\ntwo\nthree\n")
    assert lines.stdout.strip() == b"3"


def test_stdout_and_stderr_stay_separate_streams(platform: Platform) -> None:
    result = run(platform, "--no-tty", "--", "echo to-out; echo to-err >&2; echo more-out")
    assert result.returncode == 0
    assert result.stdout == b"to-out\nmore-out\n"
    running, *rest = result.stderr.splitlines()  # the CLI's own `Running …` line first
    assert running.startswith(b"Running ") and rest == [b"to-err"]


def test_it_sees_the_apps_config_vars_and_the_env_given(platform: Platform) -> None:
    result = run(
        platform, "-e", "EXTRA=given", "-e", "GREETING=over", "--", "echo $EXTRA $GREETING"
    )
    assert result.stdout == b"given over\n"
    plain = run(platform, "--", "echo $GREETING $DYNO")
    assert re.fullmatch(rb"hello run\.\d+\n", plain.stdout), plain.stdout


def test_a_procfile_process_name_runs_that_processs_command(platform: Platform) -> None:
    assert run(platform, "worker").stdout == b"worker-ran hello\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")
def test_it_runs_inside_a_container_of_its_own(platform: Platform) -> None:
    script = (
        "id -u; hostname; ip -4 -o addr show eth0; ls /proc | grep -c '^[0-9]';"
        " for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done"
    )
    result = run(platform, "--", script)
    assert result.returncode == 0, result.stderr
    uid, hostname, address, count, *processes = result.stdout.decode().splitlines()
    assert int(uid) != 0  # the app's own unprivileged uid
    assert hostname.startswith(f"{APP}.run.")  # the dyno's own UTS namespace
    assert "10.213." in address  # its own network namespace, on the dyno bridge
    assert int(count) < 10  # its own PID namespace: tini, bash and these commands
    assert not any("http.server" in p for p in processes)  # not the web dyno's processes


def test_a_terminal_session_driven_by_a_pty(platform: Platform) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI on the pty's slave, its terminal
        os.execve(str(PAAS), [str(PAAS), "run", "-a", APP, "--", "bash"], platform.env)
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
        screen = Screen(fd)
        screen.until(b"$ ", 30)
        screen.type(b"stty size; tty\r")
        screen.until(b"33 111", 10)
        screen.until(b"/dev/pts/", 10)
        screen.type(b"echo typed-$((6*7))\r")
        screen.until(b"typed-42", 10)  # line editing and a shell that reads the line
        screen.type(b"sleep 300; echo slept\r")
        time.sleep(0.5)
        screen.type(b"\x03")  # Ctrl-C: SIGINT to the dyno's foreground process group
        screen.type(b"echo after-interrupt\r")
        screen.until(b"after-interrupt\r\n", 10)
        assert b"\r\nslept" not in screen.seen  # sleep was interrupted, and bash went on
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 20, 70, 0, 0))
        os.kill(pid, signal.SIGWINCH)
        time.sleep(0.3)
        screen.type(b"stty size\r")
        screen.until(b"20 70", 10)
        screen.type(b"exit 5\r")
        _, status = os.waitpid(pid, 0)
        pid = 0  # reaped
        assert os.waitstatus_to_exitcode(status) == 5
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


class Screen:
    """What the CLI printed on its pty, read as it comes."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.seen = b""

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def until(self, text: bytes, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        start = len(self.seen) - len(text) if len(self.seen) > len(text) else 0
        while text not in self.seen[start:]:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} on the terminal; it shows {self.seen[-400:]!r}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    self.seen += os.read(self.fd, 65536)
                except OSError:  # the CLI exited: its pty is closed
                    raise AssertionError(f"no {text!r}: {self.seen[-400:]!r}") from None


def test_a_dropped_client_leaves_no_dyno_behind(platform: Platform) -> None:
    client = subprocess.Popen(
        [str(PAAS), "run", "-a", APP, "--no-tty", "--", "sleep 300"],
        env=platform.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        dyno = wait_for(lambda: next(iter(live_run_dynos(platform)), None), 30, "the run dyno")
    finally:
        client.kill()  # kill -9: no goodbye reaches the API
        client.wait(10)
        assert client.stdin is not None
        client.stdin.close()
    wait_for(lambda: not run_dynos(platform), 15, "the run dyno's directory to go")
    dyno_id = str(dyno["id"])
    if os.geteuid() == 0:
        containers = subprocess.run(
            ["runc", "--root", str(platform.home / "run" / "oci"), "list", "-q"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert dyno_id not in containers
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
        assert dyno_id not in namespaces.stdout
    pid, started = dyno.get("supervisor_pid"), dyno.get("supervisor_started")
    assert isinstance(pid, int) and isinstance(started, int)
    assert not procs.alive(pid, started)


def test_ctrl_c_once_reaches_the_command_and_twice_drops_the_session(platform: Platform) -> None:
    once = start_client(platform, "sleep 300")
    try:
        wait_for(lambda: live_run_dynos(platform), 30, "the run dyno")
        once.send_signal(signal.SIGINT)  # without a terminal: passed on as SIGINT
        assert once.wait(30) == 130  # the command died of it: 128 + 2
    finally:
        stop_client(once)
    wait_for(lambda: not run_dynos(platform), 15, "its dyno to go")
    twice = start_client(platform, "trap '' INT; sleep 300")  # a command that ignores it
    try:
        wait_for(lambda: live_run_dynos(platform), 30, "the run dyno")
        twice.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert twice.poll() is None and live_run_dynos(platform)  # ignored: it runs on
        twice.send_signal(signal.SIGINT)
        assert twice.wait(30) == 1  # the session dropped
    finally:
        stop_client(twice)
    wait_for(lambda: not run_dynos(platform), 15, "the dropped session's dyno to go")


def start_client(platform: Platform, command: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(PAAS), "run", "-a", APP, "--no-tty", "--", command],
        env=platform.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_client(client: subprocess.Popen[bytes]) -> None:
    if client.poll() is None:
        client.kill()
    client.wait(10)


def test_a_client_that_stops_answering_loses_its_dyno(platform: Platform) -> None:
    """Network loss, as the API sees it: the connection stays open, nothing answers its
    pings (the CLI is stopped with SIGSTOP)."""
    client = subprocess.Popen(
        [str(PAAS), "run", "-a", APP, "--no-tty", "--", "sleep 300"],
        env=platform.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: live_run_dynos(platform), 30, "the run dyno")
        client.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        wait_for(lambda: not run_dynos(platform), 15, "the dyno of a silent client to go")
        assert time.monotonic() - started < 10
    finally:
        client.send_signal(signal.SIGCONT)
        _, stderr = client.communicate(timeout=30)
    assert client.returncode == 1 and b"connection to run." in stderr


def test_a_second_client_is_refused(platform: Platform) -> None:
    client = subprocess.Popen(
        [str(PAAS), "run", "-a", APP, "--no-tty", "--", "sleep 300"],
        env=platform.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        dyno = wait_for(lambda: next(iter(live_run_dynos(platform)), None), 30, "the run dyno")
        path = f"/apps/{APP}/dynos/{dyno['name']}/attach"
        with pytest.raises(client_errors.ApiError) as refused:
            websocket.WebSocket.connect(platform.api_url, path, platform.token, 30)
        assert refused.value.status == 409 and "attached already" in refused.value.message
    finally:
        client.kill()
        client.wait(10)
        assert client.stdin is not None
        client.stdin.close()
    wait_for(lambda: not run_dynos(platform), 15, "the run dyno to go")


def live_run_dynos(platform: Platform) -> list[dict[str, object]]:
    return [d for d in run_dynos(platform) if d.get("state") == "running"]


def test_ps_shows_a_one_off_dyno_and_ps_stop_stops_it(platform: Platform) -> None:
    started = platform.paas("run:detached", "-a", APP, "--", "sleep 300").stdout
    name = re.search(r"run\.\d+", started)
    assert name is not None, started
    dyno = name.group(0)

    def listed() -> str | None:
        shown = platform.paas("ps", "-a", APP).stdout
        return shown if f"{dyno}: up" in shown else None

    shown = wait_for(listed, 30, f"{dyno} in paas ps")
    assert "=== run: one-off processes (1)" in shown
    assert f"{dyno}: up" in shown and ": sleep 300" in shown
    stopped = platform.paas("ps:stop", "-a", APP, dyno)
    assert f"Stopping {dyno}" in stopped.stdout
    wait_for(lambda: dyno not in platform.paas("ps", "-a", APP).stdout, 30, f"{dyno} to stop")
    wait_for(lambda: not run_dynos(platform), 15, "its directory to go")
    replaced = platform.paas("ps:stop", "-a", APP, "web.1")  # as Heroku: a fresh web.1 comes
    assert "Stopping web.1 dyno on" in replaced.stdout
    refused = platform.paas("ps:stop", "-a", APP, "nope.1", check=False)
    assert refused.returncode == 1 and "no dyno or process type 'nope.1'" in refused.stderr


def test_run_detached_output_goes_to_the_log(platform: Platform) -> None:
    started = platform.paas("run:detached", "-a", APP, "--", "echo from-detached; exit 4").stdout
    name = re.search(r"run\.\d+", started)
    assert name is not None, started

    def logged() -> str | None:
        lines = platform.paas("logs", "-a", APP, "--dyno", name.group(0)).stdout
        return lines if "Process exited with status 4" in lines else None

    lines = wait_for(logged, 30, "the detached dyno's output in the log")
    assert f"app[{name.group(0)}]: from-detached" in lines
    # Never restarted: its one start, its one exit.
    assert lines.count("Starting process with command") == 1


def test_a_one_off_never_counts_as_an_extra_dyno_nor_is_routed(platform: Platform) -> None:
    platform.paas("run:detached", "-a", APP, "--", "sleep 300")
    wait_for(lambda: live_run_dynos(platform), 30, "the run dyno")
    time.sleep(1.0)  # several agent ticks
    assert live_run_dynos(platform)  # not stopped as a dyno the formation lacks
    routes = json.loads((platform.home / "router" / "routes.json").read_text())
    servers = [s for a in routes["apps"] if a["app"] == APP for s in a["servers"]]
    assert servers and all(".web." in s["name"] or s["name"].startswith("web.") for s in servers)
    for dyno in live_run_dynos(platform):
        platform.paas("ps:stop", "-a", APP, str(dyno["name"]))
    wait_for(lambda: not run_dynos(platform), 30, "the run dynos to stop")


@pytest.mark.skipif(os.geteuid() != 0, reason="a memory cap needs a container")
def test_its_size_is_given_or_its_types(platform: Platform) -> None:
    platform.paas("ps:resize", "worker=standard-2x", "-a", APP)
    for args, memory in ((["-s", "768M"], 768), (["--type", "worker"], 1024), ([], 512)):
        platform.paas("run:detached", "-a", APP, *args, "--", "sleep 300")
        dyno = wait_for(lambda: next(iter(live_run_dynos(platform)), None), 30, "the dyno")
        plan = dyno["container"]
        assert isinstance(plan, dict) and plan["memory_mb"] == memory, args
        platform.paas("ps:stop", "-a", APP, str(dyno["name"]))
        wait_for(lambda: not run_dynos(platform), 30, "the run dyno to stop")


def test_a_one_off_requested_from_code_reports_its_exit_status(platform: Platform) -> None:
    """The way paas.push (app.json's postdeploy) and the API ask for a detached one-off."""
    store = Store(platform.home / "state.db")
    app = store.app(APP)
    asked = one_offs.request(store, app, "echo from-code; exit 7")
    assert asked.name.startswith("run.") and asked.state == one_offs.REQUESTED
    ended = one_offs.wait(store, app, asked.id, timeout=30)
    assert ended.state == one_offs.EXITED and ended.exit_status == 7
    wait_for(lambda: not run_dynos(platform), 15, "its directory to go")


def test_bad_requests_are_one_line_errors(platform: Platform) -> None:
    missing = platform.paas("run", "-a", "no-such-app", "--", "true", check=False)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert "not found" in missing.stderr
    size = platform.paas("run", "-a", APP, "-s", "huge", "--", "true", check=False)
    assert size.returncode == 1 and "invalid dyno size" in size.stderr
    platform.paas("apps:create", "empty-app", "--no-remote")
    empty = platform.paas("run", "-a", "empty-app", "--", "true", check=False)
    assert empty.returncode == 1 and "no release" in empty.stderr


def test_a_stopped_client_of_a_chatty_dyno_loses_it_and_frees_its_session(
    platform: Platform,
) -> None:
    """A client that stops reading while its dyno writes on (`yes`): every send to it would
    block, pings included, yet the dyno ends and the next session runs."""
    client = subprocess.Popen(
        [str(PAAS), "run", "-a", APP, "--no-tty", "--", "yes"],
        env=platform.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: live_run_dynos(platform), 30, "the run dyno")
        client.send_signal(signal.SIGSTOP)
        wait_for(lambda: not run_dynos(platform), 30, "the dyno of a stopped client to go")
    finally:
        client.send_signal(signal.SIGCONT)
        stop_client(client)
    later = run(platform, "--", "echo", "still-served", timeout=30)
    assert later.returncode == 0 and b"still-served" in later.stdout


def test_a_client_that_stops_reading_a_chatty_dyno_loses_it(platform: Platform) -> None:
    """The same over a slow link (a small receive buffer: little in flight), the client
    connected and reading nothing: the API's sends stay blocked, unless it gives up."""
    request = urllib.request.Request(
        f"{platform.api_url}/apps/{APP}/dynos",
        data=json.dumps({"command": "yes", "attach": True}).encode(),
        headers={"Authorization": f"Bearer {platform.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        path = json.load(answer)["attach_path"]
    ws = websocket.WebSocket.connect(platform.api_url, path, platform.token, 30)
    try:
        ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        wait_for(lambda: live_run_dynos(platform), 30, "the run dyno")
        wait_for(lambda: not run_dynos(platform), 30, "the dyno of a stalled client to go")
    finally:
        ws.sock.close()
    later = run(platform, "--", "echo", "still-served", timeout=30)
    assert later.returncode == 0 and b"still-served" in later.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="a memory cap needs a container")
def test_an_attached_dyno_past_its_memory_says_r15(platform: Platform) -> None:
    hog = "python3 -c 'b = []\nwhile True: b.append(bytearray(16 * 2**20))'"
    ran = run(platform, "-s", "64M", "--", hog)
    assert ran.returncode == 137, ran.stderr
    name = re.search(rb"up, (run\.\d+)", ran.stderr)
    assert name is not None, ran.stderr
    logs = platform.paas("logs", "-a", APP, "-n", "200").stdout
    said = [line for line in logs.splitlines() if f"[{name.group(1).decode()}]" in line]
    assert any("Error R15" in line for line in said), said


def test_input_the_dyno_never_reads_ends_the_session_saying_so(platform: Platform) -> None:
    ran = run(platform, "--", "sleep 300", stdin=b"x" * (8 << 20), timeout=60)
    assert ran.returncode == 1
    assert b"read none of the last 1 MiB of input" in ran.stderr, ran.stderr
    wait_for(lambda: not run_dynos(platform), 15, "its dyno to go")
