"""A real platform for integration tests: `paas server` on free loopback ports.

Everything it starts is stopped by pid or by `paas server --stop`; every wait is a bounded
poll.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from paas.host import procs

ROOT = Path(__file__).resolve().parents[2]
PAAS = ROOT / ".venv" / "bin" / "paas"
SAMPLE_APP = ROOT / "examples" / "flask-hello"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cmdline(pid: int) -> str:
    """A process's command line, words joined by spaces ('' once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def wait_for(check: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


class Platform:
    def __init__(self, **settings: str) -> None:
        """`settings`: extra PAAS_* variables for this platform, e.g. PAAS_BOOT_TIMEOUT."""
        self.base = Path(tempfile.mkdtemp(prefix="paas-it-", dir="/tmp"))
        self.base.chmod(0o711)  # the dyno user must reach PAAS_HOME
        self.home = self.base / "home"
        self.api_port = free_port()
        self.http_port = free_port()
        self.token = "it-admin-token-" + os.urandom(8).hex()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.env = {
            **os.environ,
            "PAAS_HOME": str(self.home),
            "PAAS_API_PORT": str(self.api_port),
            "PAAS_HTTP_PORT": str(self.http_port),
            "PAAS_DOMAIN": "paas.localhost",
            "PAAS_ADMIN_TOKEN": self.token,
            "PAAS_API_URL": self.api_url,
            "PAAS_API_TOKEN": self.token,
            "PAAS_STOP_GRACE": "5",
            "PAAS_BUILD_MEMORY_MB": "512",
            # Not root, every app shares the tests' uid: the tests' apps trust each other.
            "PAAS_SHARED_UID": "0" if os.geteuid() == 0 else "1",
            "HOME": str(self.base),
            "GIT_TERMINAL_PROMPT": "0",
            # Test buildpacks are git repos under BASE/buildpacks (see `buildpack`).
            "PAAS_BUILDPACK_SOURCES": f"heroku/,https://,file://{self.base}/buildpacks/",
            **settings,
        }
        self.server: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.launch()
        wait_for(self.api_answers, 30, "the API to answer")

    def launch(self) -> None:
        """Starts `paas server` in the background, its output in BASE/server.log."""
        with (self.base / "server.log").open("ab") as log:
            self.server = subprocess.Popen(
                [str(PAAS), "server"],
                env=self.env,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def api_answers(self) -> bool:
        status, _ = self.request("GET", "/account")
        return status == 200

    def request(self, method: str, path: str, token: str | None = None) -> tuple[int, object]:
        connection = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=10)
        try:
            connection.request(
                method, path, headers={"Authorization": f"Bearer {token or self.token}"}
            )
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            connection.close()

    def request_json(self, method: str, path: str, body: object) -> tuple[int, object]:
        """One API call with a JSON body; the answer's status and its JSON."""
        connection = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=10)
        try:
            connection.request(
                method,
                path,
                body=json.dumps(body),
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/json",
                },
            )
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            connection.close()

    def kill_server(self) -> None:
        assert self.server is not None
        self.server.send_signal(signal.SIGKILL)
        self.server.wait(10)

    def stop(self) -> None:
        if os.environ.get("PAAS_TEST_KEEP"):  # debugging: leave the platform to inspect
            print(f"kept platform at {self.base}")
            return
        # Twice at most: a server slow to exit may still have started dynos (or HAProxy)
        # after the first stop looked at them; the second finds them, with it gone.
        for _ in range(2):
            stopped = subprocess.run(
                [str(PAAS), "server", "--stop"], env=self.env, timeout=120, capture_output=True
            )
            if self.server is not None and self.server.poll() is None:
                self.server.kill()
                self.server.wait(10)
            if stopped.returncode == 0 and not self.live_supervisors():
                break
            print(f"paas server --stop left dynos running: {stopped.stderr[-2000:]!r}")
        shutil.rmtree(self.base, ignore_errors=True)

    def live_supervisors(self) -> list[int]:
        """The pids of this platform's dyno supervisors still running."""
        found = []
        for path in self.home.glob("dynos/*/status.json"):
            try:
                status = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            pid, started = status.get("supervisor_pid"), status.get("supervisor_started")
            if isinstance(pid, int) and procs.alive(pid, started):
                found.append(pid)
        return found

    def paas(
        self,
        *args: str,
        check: bool = True,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(PAAS), *args],
            env=env or self.env,
            cwd=cwd or self.base,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"paas {' '.join(args)} failed: {result.stderr}")
        return result

    def buildpack(self, name: str, scripts: dict[str, str]) -> str:
        """A buildpack as a git repo under BASE/buildpacks (readable by the build user);
        `scripts`: bin/NAME → its shell text. Returns its file:// URL."""
        repo = self.base / "buildpacks" / name
        (repo / "bin").mkdir(parents=True)
        for script, text in scripts.items():
            (repo / "bin" / script).write_text(f"#!/bin/sh\n{text}\n")
            (repo / "bin" / script).chmod(0o755)
        git(repo, "init", "-q", "-b", "main")
        commit(repo, f"{name} buildpack")
        subprocess.run(["chmod", "-R", "a+rX", str(self.base / "buildpacks")], check=True)
        return f"file://{repo}"

    def git_url(self, app: str, token: str | None = None) -> str:
        return f"http://paas:{token or self.token}@127.0.0.1:{self.api_port}/{app}.git"

    def new_repo(self, name: str) -> Path:
        repo = self.base / name
        shutil.copytree(SAMPLE_APP, repo)
        git(repo, "init", "-q", "-b", "main")
        commit(repo, "sample app")
        return repo

    def push(
        self, app: str, repo: Path, token: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "push", self.git_url(app, token), "main"],
            cwd=repo,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def get(self, app: str, path: str = "/") -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=5)
        try:
            connection.request("GET", path, headers={"Host": f"{app}.paas.localhost"})
            response = connection.getresponse()
            return response.status, response.read().decode()
        finally:
            connection.close()

    def get_json(self, app: str) -> dict[str, str] | None:
        status, body = self.get(app)
        return json.loads(body) if status == 200 else None

    def dyno_statuses(self, app: str) -> list[dict[str, object]]:
        """What the supervisors recorded on disk (pids of running dynos)."""
        found = []
        for directory in (self.home / "dynos").iterdir():
            try:  # a dyno directory may be half-made or being removed right now
                spec = json.loads((directory / "spec.json").read_text())
                status = json.loads((directory / "status.json").read_text())
            except FileNotFoundError:
                continue
            if spec["app"] == app:
                found.append({**spec, **status})
        return found


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60)


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(
        repo,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@paas.localhost",
        "commit",
        "-q",
        "-m",
        message,
    )


@contextmanager
def running(**settings: str) -> Iterator[Platform]:
    """A started platform with these extra settings, stopped whatever happens."""
    platform = Platform(**settings)
    try:
        platform.start()
        yield platform
    finally:
        platform.stop()
