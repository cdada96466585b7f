"""Bare git repositories per app and the smart-HTTP side of `git push`/`git fetch`.

The API streams a request body into `git receive-pack --stateless-rpc` and streams its
answer back, so the pre-receive hook's build output reaches the pusher live as `remote:`
lines. The hook (`python -m paas hook pre-receive`) builds before any ref moves, which is
what lets a failed build reject the push.
"""

from __future__ import annotations

import fcntl
import gzip
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from paas.settings import Settings

SERVICES = ("git-receive-pack", "git-upload-pack")
HOOK = """#!/bin/sh
# Written by paas: every push to main/master is built and released before refs move.
exec {python} -m paas hook pre-receive
"""


def repo_path(settings: Settings, app: str) -> Path:
    return settings.repos_dir / f"{app}.git"


def ensure_repo(settings: Settings, app: str) -> Path:
    path = repo_path(settings, app)
    if not path.exists():
        settings.repos_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "init", "--quiet", "--bare", "--initial-branch=main", str(path)],
            check=True,
            timeout=30,
        )
        subprocess.run(
            ["git", "--git-dir", str(path), "config", "receive.denyDeletes", "true"],
            check=True,
            timeout=30,
        )
    hook = path / "hooks" / "pre-receive"
    hook.write_text(HOOK.format(python=sys.executable))
    hook.chmod(0o755)
    return path


def delete_repo(settings: Settings, app: str) -> None:
    shutil.rmtree(repo_path(settings, app), ignore_errors=True)


def pkt_line(text: str) -> bytes:
    return f"{len(text) + 4:04x}{text}".encode()


def advertise(settings: Settings, app: str, service: str) -> Iterator[bytes]:
    """The answer to GET info/refs?service=...: a service line, then git's advertisement."""
    result = subprocess.run(
        [
            "git",
            service.removeprefix("git-"),
            "--stateless-rpc",
            "--advertise-refs",
            str(repo_path(settings, app)),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    yield pkt_line(f"# service={service}\n") + b"0000" + result.stdout


def serve_rpc(
    settings: Settings,
    app: str,
    service: str,
    body: bytes,
    encoding: str | None,
    env: Mapping[str, str],
) -> Iterator[bytes]:
    """Runs the service on the request body and yields its output as it comes."""
    if encoding == "gzip":
        body = gzip.decompress(body)
    if service == "git-receive-pack":
        with push_lock(settings, app):  # one push per app at a time, ref update included
            yield from _run_service(settings, app, service, body, env)
    else:
        yield from _run_service(settings, app, service, body, env)


@contextmanager
def push_lock(settings: Settings, app: str) -> Iterator[None]:
    with (settings.repos_dir / f"{app}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _run_service(
    settings: Settings, app: str, service: str, body: bytes, env: Mapping[str, str]
) -> Iterator[bytes]:
    process = subprocess.Popen(
        ["git", service.removeprefix("git-"), "--stateless-rpc", str(repo_path(settings, app))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    assert process.stdin is not None and process.stdout is not None
    stdin = process.stdin

    def feed() -> None:
        try:
            stdin.write(body)
        except BrokenPipeError:
            pass
        finally:
            stdin.close()

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        output = process.stdout
        while chunk := output.read1(65536):  # type: ignore[attr-defined]
            yield chunk
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        writer.join(timeout=5)
