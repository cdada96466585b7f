"""API tokens through a running platform: rotation revokes, a generated token is not
printed to a file, `paas login` and `git push` keep the token out of every command line,
and failed authentications are limited per client address.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import threading
from pathlib import Path

from platform_harness import PAAS, Platform, commit, git, wait_for

from paas.state.store import Store

LIMIT = 10  # paas.api.auth.POLICY: failures allowed per address and minute


def ask(
    platform: Platform, token: str | None, source: str = "127.0.0.1", path: str = "/account"
) -> tuple[int, dict[str, str], object]:
    """One GET from the given loopback source address: status, headers, JSON body."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", platform.api_port, timeout=10, source_address=(source, 0)
    )
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read() or b"0")
    finally:
        connection.close()


def restart(platform: Platform, **env: str) -> None:
    """Stops the server (dynos keep running) and starts it again with changed settings."""
    assert platform.server is not None
    platform.server.terminate()
    platform.server.wait(30)
    platform.env.update(env)
    platform.start()


def tiny_repo(platform: Platform, name: str) -> Path:
    """A Python app with nothing to install: the quickest real build."""
    repo = platform.base / name
    repo.mkdir()
    (repo / "requirements.txt").write_text("")
    (repo / "Procfile").write_text("web: exec python3 -m http.server $PORT\n")
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "tiny app")
    return repo


class CommandLineWatch:
    """Reads every process's command line while it runs, looking for one secret."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.leaks: list[str] = []
        self.seen_git_http = False
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.scan, daemon=True)

    def scan(self) -> None:
        while not self.done.is_set():
            for pid in (p for p in os.listdir("/proc") if p.isdigit()):
                try:
                    line = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                self.seen_git_http |= b"remote-http" in line
                if self.secret in line:
                    self.leaks.append(line.replace(b"\0", b" ").decode(errors="replace"))
            self.done.wait(0.01)

    def __enter__(self) -> CommandLineWatch:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.done.set()
        self.thread.join(10)


def test_rotating_the_admin_token_revokes_the_old_one_and_keeps_named_ones() -> None:
    platform = Platform(PAAS_CONTAINERS="off")
    try:
        platform.start()
        old = platform.token
        Store(platform.home / "state.db").add_token("ci-token-" + "x" * 20, "ci")
        new = "it-rotated-token-" + os.urandom(8).hex()
        platform.token = new
        restart(platform, PAAS_ADMIN_TOKEN=new, PAAS_API_TOKEN=new)
        assert ask(platform, new)[0] == 200
        assert ask(platform, old)[0] == 401
        assert ask(platform, "ci-token-" + "x" * 20)[0] == 200
        assert (platform.home / "admin-token").read_text().strip() == new
        assert "previous one is revoked" in (platform.base / "server.log").read_text()
    finally:
        platform.stop()


def test_a_short_admin_token_is_refused_at_start() -> None:
    platform = Platform(PAAS_CONTAINERS="off", PAAS_ADMIN_TOKEN="short")
    try:
        result = subprocess.run(
            [str(PAAS), "server"], env=platform.env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode != 0
        assert "PAAS_ADMIN_TOKEN is shorter than 16 characters" in result.stderr
    finally:
        platform.stop()


def test_a_generated_token_is_not_printed_when_stdout_is_not_a_terminal() -> None:
    platform = Platform(PAAS_CONTAINERS="off", PAAS_ADMIN_TOKEN="", PAAS_API_TOKEN="")
    token_file = platform.home / "admin-token"
    log = platform.base / "server.log"
    try:
        platform.launch()  # stdout is the log file, not a terminal
        token = wait_for(
            lambda: token_file.read_text().strip() if token_file.exists() else None,
            30,
            "the token file",
        )
        platform.token = token
        wait_for(platform.api_answers, 30, "the API to answer the generated token")
        assert token_file.stat().st_mode & 0o777 == 0o600
        text = log.read_text()
        assert token not in text
        assert f"kept in {token_file}" in text
    finally:
        platform.stop()


def test_the_eleventh_bad_attempt_gets_429_and_a_good_token_still_works(
    platform: Platform,
) -> None:
    for attempt in range(LIMIT):
        status, _, body = ask(platform, f"guess-{attempt}", source="127.0.0.3")
        assert status == 401, (attempt, body)
    status, headers, body = ask(platform, "guess-last", source="127.0.0.3")
    assert status == 429
    assert isinstance(body, dict) and body["id"] == "rate_limit"
    assert "too many failed authentications from 127.0.0.3" in body["message"]
    assert 1 <= int(headers["Retry-After"]) <= 60
    # Refused from the same address with a wrong token again; accepted with the right one.
    assert ask(platform, "guess-again", source="127.0.0.3")[0] == 429
    assert ask(platform, platform.token, source="127.0.0.3")[0] == 200
    # Other addresses are counted apart; asking without credentials is no attempt.
    assert ask(platform, "one-guess", source="127.0.0.4")[0] == 401
    assert ask(platform, None, source="127.0.0.3")[0] == 401


def test_login_from_stdin_and_push_keep_the_token_out_of_command_lines(
    platform: Platform, tmp_path: Path
) -> None:
    home = tmp_path / "user"
    home.mkdir()
    env = {k: v for k, v in platform.env.items() if k not in ("PAAS_API_TOKEN", "PAAS_API_URL")}
    env["HOME"] = str(home)
    with CommandLineWatch(platform.token) as watch:
        login = subprocess.run(
            [str(PAAS), "login", "--api-url", platform.api_url],
            input=platform.token + "\n",
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert login.returncode == 0, login.stderr
        assert (home / ".netrc").stat().st_mode & 0o777 == 0o600
        subprocess.run(
            [str(PAAS), "apps:create", "quiet", "--no-remote"],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        repo = tiny_repo(platform, "quiet-repo")
        url = f"{platform.api_url}/quiet.git"
        git(repo, "remote", "add", "paas", url)
        push = subprocess.run(
            ["git", "push", "paas", "main"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert push.returncode == 0, push.stderr
    assert watch.seen_git_http  # the watch did see the push's processes
    assert watch.leaks == []
    assert platform.token not in (repo / ".git" / "config").read_text()


def test_paas_is_a_git_credential_helper_for_the_api_host_only(
    platform: Platform, tmp_path: Path
) -> None:
    home = tmp_path / "helper-user"
    (home / ".config" / "paas").mkdir(parents=True)
    stored = {"api_url": platform.api_url, "token": platform.token}
    (home / ".config" / "paas" / "credentials.json").write_text(json.dumps(stored))
    env = {k: v for k, v in platform.env.items() if k not in ("PAAS_API_TOKEN", "PAAS_API_URL")}
    env["HOME"] = str(home)  # no ~/.netrc here: only the helper can answer
    helper = ["-c", "credential.helper=", "-c", f"credential.helper=!{PAAS} git:credentials"]
    url = f"{platform.api_url}/quiet.git"
    listed = subprocess.run(
        ["git", *helper, "ls-remote", url], env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert "refs/heads/main" in listed.stdout
    other = subprocess.run(
        [str(PAAS), "git:credentials", "get"],
        input="protocol=http\nhost=example.com\n\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert other.returncode == 0 and other.stdout == ""
