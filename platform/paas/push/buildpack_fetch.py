"""Bringing a build's buildpacks into its workspace: built-ins copied, git repositories
cloned and archives downloaded by the build user, and a cache of fetched buildpacks kept
by URL and ref.

Invariants: every fetch runs as the build user (never root) with an empty HOME, no git
environment of the hook, only the allow-list's protocols, no credentials and no redirects,
within a time cap; an archive is size-capped while it streams in, and its members are
checked (paas.domain.buildpack_archive) before the build user extracts it, so root never
extracts nor follows anything of it. The cache ($PAAS_HOME/buildpacks-cache, root's, 0700)
holds only pinned sources, a git tag or an archive URL, copied in by root without following
any link; a branch (or no ref) is fetched again by every build, as Heroku does. A build
only ever gets a copy of a cache entry, so no build can write the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from paas.domain import buildpack_archive, buildpack_source
from paas.domain.buildpack_archive import Member
from paas.domain.errors import BuildFailed
from paas.domain.settings import Settings
from paas.host import procs
from paas.isolation import users
from paas.isolation.users import Account
from paas.push.steps import CHUNK, Watchdog, first_line, run_capped

FETCH_TIMEOUT = 120
PYTHON = "/usr/bin/python3"
FETCH_GITCONFIG = """# Written by paas for buildpack fetches: no credentials, no redirects.
[safe]
\tdirectory = *
[http]
\tfollowRedirects = false
[credential]
\thelper =
[core]
\taskPass = /bin/false
"""
# Run by the build user as `python3 -I -S -c DOWNLOAD URL TIMEOUT`: the body to stdout,
# one line on stderr and a non-zero exit when it cannot; a redirect is an error.
DOWNLOAD = r"""
import shutil, sys, urllib.error, urllib.request
url, timeout = sys.argv[1], float(sys.argv[2])
class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
try:
    if url.startswith("file://"):
        source = open(urllib.request.url2pathname(url[7:].split("?", 1)[0]), "rb")
    else:
        source = urllib.request.build_opener(NoRedirects).open(url, timeout=timeout)
    with source:
        shutil.copyfileobj(source, sys.stdout.buffer, 65536)
except urllib.error.HTTPError as error:
    sys.exit(f"HTTP {error.code} {error.reason}")
except (OSError, ValueError) as error:
    sys.exit(str(getattr(error, "reason", None) or getattr(error, "strerror", None) or error))
"""


def cache_key(source: buildpack_source.Remote) -> str:
    """One cache entry per URL and ref: the SHA-256 of `URL#REF` as written."""
    return hashlib.sha256(source.shown.encode()).hexdigest()[:32]


@dataclass
class Fetcher:
    """Fetches for one build: `give` chowns to the build user, `within` cuts a timeout to
    the push's deadline, `timed_out` says which limit a fetch hit."""

    settings: Settings
    account: Account | None
    builtins: Path  # the built-in buildpacks' directory
    passed: dict[str, str]  # the host's proxy and CA settings a fetch keeps
    say: Callable[[str], None]
    give: Callable[..., None]
    within: Callable[[float], float]
    timed_out: Callable[[str, float], BuildFailed]
    fetched: int = 0  # how many remote fetches this build made (the cache's misses)

    def fetch(self, source: buildpack_source.Source, workspace: Path, index: int) -> Path:
        if isinstance(source, buildpack_source.Builtin):
            return self.copy_builtin(
                self.builtins / source.name, workspace, f"{index}-{source.name}"
            )
        entry = self.settings.buildpack_cache_dir / cache_key(source)
        if (entry / "pack").is_dir():
            self.say(f"-----> Using buildpack {source.shown} (cached)")
            return self.copy_in(entry / "pack", workspace, f"{index}-remote")
        self.say(f"-----> Fetching buildpack {source.shown}")
        self.fetched += 1
        target = workspace / "buildpacks" / f"{index}-remote"
        if source.archive:
            pack = self.download(source, target, workspace)
        else:
            self.clone(source, target, workspace)
            pack = target
        if source.archive or (source.ref and self.is_tag(source.ref, target, workspace)):
            self.keep(pack, entry)
        return pack

    def copy_in(self, source: Path, workspace: Path, name: str, links: bool = True) -> Path:
        """A copy of ``source`` for the build; a link is copied as a link (a fetched
        buildpack's are never followed) unless ``links`` is False."""
        target = workspace / "buildpacks" / name
        shutil.copytree(source, target, symlinks=links)
        self.give(target)
        return target

    def copy_builtin(self, source: Path, workspace: Path, name: str) -> Path:
        """A built-in, whole: the platform's own links (to buildpacks/common) resolved."""
        return self.copy_in(source, workspace, name, links=False)

    def environment(self, workspace: Path) -> dict[str, str]:
        """A fetch's whole environment: the host's proxy and CA settings, an empty HOME, a
        git config of our own, and only the allow-list's protocols."""
        home = workspace / "fetch-home"
        home.mkdir(exist_ok=True)
        self.give(home)
        gitconfig = workspace / "fetch.gitconfig"
        gitconfig.write_text(FETCH_GITCONFIG)
        gitconfig.chmod(0o644)
        env = dict(self.passed)
        env.update(
            PATH="/usr/local/bin:/usr/bin:/bin",
            HOME=str(home),
            LANG="C.UTF-8",
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=str(gitconfig),
            GIT_ALLOW_PROTOCOL=buildpack_source.protocols(self.settings.buildpack_sources),
            GIT_TERMINAL_PROMPT="0",
            GIT_SSH_COMMAND="ssh -o BatchMode=yes -o StrictHostKeyChecking=yes",
        )
        return env

    def clone(self, source: buildpack_source.Remote, target: Path, workspace: Path) -> None:
        """`git clone --depth 1` as the build user on the host (the stacks have no git)."""
        branch = ["--branch", source.ref] if source.ref else []
        argv = ["git", "clone", "--quiet", "--depth", "1", *branch, "--", source.url, str(target)]
        env = self.environment(workspace)
        timeout = self.within(FETCH_TIMEOUT)
        code, tail, expired = run_capped(argv, env, target.parent, timeout, self.account)
        if expired:
            raise self.timed_out(f"fetching buildpack {source.shown}", FETCH_TIMEOUT)
        if code != 0:
            lines = [line.strip() for line in tail.splitlines() if line.strip()]
            fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
            why = (fatal or lines or [f"git exit status {code}"])[0]
            raise BuildFailed(f"cannot fetch buildpack {source.shown}: {why[:300]}")

    def is_tag(self, ref: str, clone: Path, workspace: Path) -> bool:
        """Whether the clone's ref is a tag (kept in the cache) rather than a branch."""
        argv = ["git", "-C", str(clone), "rev-parse", "--verify", "--quiet", f"refs/tags/{ref}"]
        env = self.environment(workspace)
        code, _, _ = run_capped(argv, env, workspace, self.within(30), self.account)
        return code == 0

    def download(self, source: buildpack_source.Remote, target: Path, workspace: Path) -> Path:
        """Downloads the archive as the build user (capped while it streams), checks its
        members, and has the build user extract it; the buildpack's directory: the
        archive's root, or its one top directory when only that holds bin/."""
        limit = self.settings.buildpack_max_mb * 2**20
        timeout = self.within(FETCH_TIMEOUT)
        with tempfile.TemporaryFile(dir=workspace) as body:
            self.stream(source, body, limit, timeout, workspace)
            body.seek(0)
            members = read_members(body, source.url, 4 * limit)
            buildpack_archive.check(members, source.url, 4 * limit)
            body.seek(0)
            target.mkdir()
            self.give(target)
            self.extract(source, body, target, timeout)
        return pack_root(target)

    def stream(
        self,
        source: buildpack_source.Remote,
        body: IO[bytes],
        limit: int,
        timeout: float,
        workspace: Path,
    ) -> None:
        account = self.account
        argv = [PYTHON, "-I", "-S", "-c", DOWNLOAD, source.url, str(max(1.0, timeout))]
        with (
            tempfile.TemporaryFile() as err,
            subprocess.Popen(
                argv,
                cwd=workspace,
                env=self.environment(workspace),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,
                **users.run_as(account),
            ) as process,
        ):
            assert process.stdout is not None
            watchdog = Watchdog(timeout, [process.pid])
            total = 0
            try:
                while chunk := process.stdout.read1(CHUNK):  # type: ignore[attr-defined]
                    total += len(chunk)
                    if total > limit:
                        break
                    body.write(chunk)
            finally:
                watchdog.cancel()
                if process.poll() is None:
                    procs.signal_group(process.pid, 9)
            code = process.wait()
            if watchdog.fired:
                raise self.timed_out(f"fetching buildpack {source.url}", FETCH_TIMEOUT)
            if total > limit:
                raise BuildFailed(
                    f"buildpack archive {source.url} refused: it is larger than "
                    f"{self.settings.buildpack_max_mb} MB (PAAS_BUILDPACK_MAX_MB)"
                )
            if code != 0:
                raise BuildFailed(f"cannot fetch buildpack {source.url}: {first_line(err)}")

    def extract(
        self, source: buildpack_source.Remote, body: IO[bytes], target: Path, timeout: float
    ) -> None:
        account = self.account
        argv = ["tar", "-xz", "--no-same-owner", "--no-same-permissions", "-C", str(target)]
        with tempfile.TemporaryFile() as err:
            try:
                code = subprocess.run(
                    argv,
                    stdin=body,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                    timeout=timeout,
                    **users.run_as(account),
                ).returncode
            except subprocess.TimeoutExpired:
                raise self.timed_out(f"extracting buildpack {source.url}", timeout) from None
            if code != 0:
                raise BuildFailed(f"cannot extract buildpack {source.url}: {first_line(err)}")

    def keep(self, pack: Path, entry: Path) -> None:
        """Copies a fetched buildpack into the cache, as root, following no link; the entry
        appears whole (renamed into place) or not at all."""
        cache = self.settings.buildpack_cache_dir
        cache.mkdir(mode=0o700, parents=True, exist_ok=True)
        cache.chmod(0o700)
        staging = cache / f".new-{uuid.uuid4().hex}"
        staging.mkdir(mode=0o700)
        try:
            copy_plain(pack, staging / "pack", top=True)
            with contextlib.suppress(OSError):  # another build kept the same entry first
                os.rename(staging, entry)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def read_members(body: IO[bytes], url: str, max_bytes: int) -> list[Member]:
    """The archive's members as headers say (root reads them; nothing is extracted), the
    decompressed amount bounded as it goes."""
    members: list[Member] = []
    total = 0
    try:
        with tarfile.open(fileobj=body, mode="r|gz") as archive:
            for info in archive:
                total += info.size
                if total > max_bytes or len(members) > buildpack_archive.MAX_MEMBERS:
                    buildpack_archive.check([*members, _member(info)], url, max_bytes)
                members.append(_member(info))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise BuildFailed(
            f"buildpack archive {url} refused: it is not a gzipped tar archive ({error})"
        ) from None
    return members


def _member(info: tarfile.TarInfo) -> Member:
    if info.isreg():
        kind = "file"
    elif info.isdir():
        kind = "dir"
    elif info.issym():
        kind = "symlink"
    elif info.islnk():
        kind = "hardlink"
    elif info.ischr() or info.isblk():
        kind = "device"
    elif info.isfifo():
        kind = "FIFO"
    else:
        kind = "special file"
    return Member(info.name, kind, info.size if kind == "file" else 0, info.linkname)


def pack_root(target: Path) -> Path:
    """An archive's buildpack: its root, or its one top directory (as GitHub's archives
    have) when bin/ is only there."""
    if (target / "bin").is_dir() and not (target / "bin").is_symlink():
        return target
    tops = list(target.iterdir())
    if len(tops) == 1 and not tops[0].is_symlink() and (tops[0] / "bin").is_dir():
        return tops[0]
    raise BuildFailed(
        f"buildpack archive unpacks to no bin/ directory (found: "
        f"{', '.join(sorted(p.name for p in tops)[:5]) or 'nothing'}): put bin/detect and "
        "bin/compile at its root"
    )


def copy_plain(source: Path, target: Path, top: bool = False) -> None:
    """Copies directories, regular files (mode and exec bits) and links (as links): never
    follows a link nor opens a special file; leaves out the top's .git."""
    target.mkdir(mode=0o755)
    with os.scandir(source) as entries:
        for entry in entries:
            if top and entry.name == ".git":
                continue
            dest = target / entry.name
            if entry.is_symlink():
                os.symlink(os.readlink(entry.path), dest)
            elif entry.is_dir(follow_symlinks=False):
                copy_plain(Path(entry.path), dest)
            elif entry.is_file(follow_symlinks=False):
                _copy_file(entry.path, dest)


def _copy_file(path: str, dest: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as source:
        mode = os.fstat(source.fileno()).st_mode
        if not stat.S_ISREG(mode):
            return
        out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode & 0o755 | 0o644)
        with os.fdopen(out, "wb") as sink:
            shutil.copyfileobj(source, sink, CHUNK)
