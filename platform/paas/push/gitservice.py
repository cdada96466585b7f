"""Bare git repositories per app and the smart-HTTP side of `git push`/`git fetch`.

The API streams a request body into `git receive-pack --stateless-rpc` and streams its
answer back, so the pre-receive hook's build output reaches the pusher live as `remote:`
lines. The hook (`python -m paas.push.hook`: the pipeline without the CLI's imports)
builds before any ref moves, which is what lets a failed build reject the push.

Invariant: a request body is never held whole: it is read in chunks, gunzipped as a
stream, and git is stopped once more than PAAS_MAX_PUSH_MB came out of it (a 413 when
that happens before git answered, which is always the case for a push).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from paas.domain.errors import InvalidParams, PaasError, TooLarge
from paas.domain.settings import Settings
from paas.host import cleanup, procs

SERVICES = ("git-receive-pack", "git-upload-pack")
CHUNK = 65536
HOOK = """#!/bin/sh
# Written by paas: every push to main/master is built and released before refs move.
exec {python} -m paas.push.hook
"""


def repo_path(settings: Settings, app: str) -> Path:
    return settings.repos_dir / f"{app}.git"


def ensure_repo(settings: Settings, app: str) -> Path:
    path = repo_path(settings, app)
    if not path.exists():
        settings.repos_dir.mkdir(parents=True, exist_ok=True)
        procs.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(path)])
        procs.run(
            ["git", "--git-dir", str(path), "config", "receive.denyDeletes", "true"],
            timeout=30,
        )
    hook = path / "hooks" / "pre-receive"
    hook.write_text(HOOK.format(python=sys.executable))
    hook.chmod(0o755)
    return path


def delete_repo(settings: Settings, app: str) -> None:
    cleanup.remove_tree(repo_path(settings, app))


def pkt_line(text: str) -> bytes:
    return f"{len(text) + 4:04x}{text}".encode()


def advertise(settings: Settings, app: str, service: str) -> Iterator[bytes]:
    """The answer to GET info/refs?service=...: a service line, then git's advertisement."""
    command = service.removeprefix("git-")
    refs = procs.run(
        ["git", command, "--stateless-rpc", "--advertise-refs", str(repo_path(settings, app))],
        timeout=60,
    )
    yield pkt_line(f"# service={service}\n") + b"0000" + refs


class Rpc:
    """One running service call: git fed from the request body on a thread, its output
    iterated by the response. `close` (called by the WSGI server, also when the response
    never started) stops git and releases the push lock."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        feeder: Feeder,
        lock: IO[str] | None,
    ) -> None:
        self.process = process
        self.feeder = feeder
        self.lock = lock
        self.first = b""

    def __iter__(self) -> Iterator[bytes]:
        if self.first:
            yield self.first
        assert self.process.stdout is not None
        while chunk := self.process.stdout.read1(CHUNK):  # type: ignore[attr-defined]
            yield chunk

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.feeder.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self.lock is not None:
            self.lock.close()  # releases the flock
            self.lock = None


class Feeder(threading.Thread):
    """Copies the request body into git's stdin, gunzipping as a stream, and stops git
    once more than `limit` bytes came out: nothing of the body is held whole."""

    def __init__(
        self, body: IO[bytes], gzipped: bool, stdin: IO[bytes], limit: int, stop: Callable[[], None]
    ) -> None:
        super().__init__(daemon=True)
        self.body = body
        self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
        self.stdin = stdin
        self.limit = limit
        self.stop = stop
        self.total = 0
        self.refused: PaasError | None = None

    def run(self) -> None:
        try:
            while data := self.body.read(CHUNK):
                for part in self.expand(data):
                    self.total += len(part)
                    if self.total > self.limit:
                        self.refuse(TooLarge(too_large_message(self.limit)))
                        return
                    self.stdin.write(part)
        except zlib.error:
            self.refuse(InvalidParams("the request body is not valid gzip data"))
        except (BrokenPipeError, OSError):
            pass  # git stopped reading (or the client left): git's answer says why
        finally:
            with contextlib.suppress(OSError):
                self.stdin.close()

    def expand(self, data: bytes) -> Iterator[bytes]:
        """The decompressed parts of one chunk, never more than CHUNK bytes at a time."""
        if self.inflate is None:
            yield data
            return
        while data:
            yield self.inflate.decompress(data, CHUNK)
            data = self.inflate.unconsumed_tail

    def refuse(self, error: PaasError) -> None:
        self.refused = error
        self.stop()


def too_large_message(limit: int) -> str:
    return (
        f"the push is larger than {limit // 2**20} MB (PAAS_MAX_PUSH_MB): keep large files "
        "out of the repository, or push fewer commits at once"
    )


def open_rpc(
    settings: Settings,
    app: str,
    service: str,
    body: IO[bytes],
    encoding: str | None,
    env: Mapping[str, str],
) -> Rpc:
    """Starts the service on a streamed request body. Blocks until git answers or stops,
    so a body over the limit (also once gunzipped) is refused before any answer starts."""
    if encoding not in (None, "", "identity", "gzip", "x-gzip"):
        raise InvalidParams(f"unsupported Content-Encoding {encoding!r}: use gzip or none")
    limit = settings.max_push_bytes
    lock = take_push_lock(settings, app) if service == "git-receive-pack" else None
    try:
        process = _start_service(settings, app, service, env)
    except BaseException:
        if lock is not None:
            lock.close()
        raise
    assert process.stdin is not None and process.stdout is not None
    feeder = Feeder(body, encoding in ("gzip", "x-gzip"), process.stdin, limit, process.kill)
    rpc = Rpc(process, feeder, lock)
    feeder.start()
    try:
        rpc.first = process.stdout.read1(CHUNK)  # type: ignore[attr-defined]
        if feeder.refused is not None:
            raise feeder.refused
    except BaseException:
        rpc.close()
        raise
    return rpc


def take_push_lock(settings: Settings, app: str) -> IO[str]:
    """One push per app at a time, ref update included: held until the Rpc closes."""
    lock = (settings.repos_dir / f"{app}.lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


@contextmanager
def push_lock(settings: Settings, app: str) -> Iterator[None]:
    lock = take_push_lock(settings, app)
    try:
        yield
    finally:
        lock.close()


def _start_service(
    settings: Settings, app: str, service: str, env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """git SERVICE --stateless-rpc. receive-pack gets git's own pack size cap too (a
    backstop above the body's: the Feeder stops git first, with a 413), and the
    hook gets the API's stderr (the platform log) as PAAS_PLATFORM_LOG_FD for tracebacks:
    what the hook prints on its own stdout and stderr goes to the pusher."""
    options = []
    if service == "git-receive-pack":
        options = ["-c", f"receive.maxInputSize={settings.max_push_bytes + CHUNK}"]
    log_fd = os.dup(2)
    try:
        return subprocess.Popen(
            [
                "git",
                *options,
                service.removeprefix("git-"),
                "--stateless-rpc",
                str(repo_path(settings, app)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **env, "PAAS_PLATFORM_LOG_FD": str(log_fd)},
            pass_fds=(log_fd,),
        )
    finally:
        os.close(log_fd)
