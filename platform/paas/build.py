"""The builder: a git revision in, an immutable slug and its process types out.

It follows the classic buildpack API (bin/detect, bin/compile BUILD CACHE ENV,
bin/release) and runs every buildpack step as the unprivileged build user with a minimal
environment, argv lists and a timeout. It never writes a release: it returns an Artifact
or raises BuildFailed, so a failed build cannot touch what is running.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from paas import container, procfile, procs, stacks
from paas.container import BuildSandbox, SandboxPlan
from paas.errors import BuildFailed, PaasError
from paas.settings import Settings
from paas.slugs import SlugStore
from paas.users import Account

BUILTIN_BUILDPACKS = Path(__file__).resolve().parents[2] / "buildpacks"
COMPILE_TIMEOUT = 15 * 60
STEP_TIMEOUT = 120
STEP_UMASK = 0o022
STACK = "paas-host"
PASSED_THROUGH = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_TRUSTED_HOST",
    "PIP_DEFAULT_TIMEOUT",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
    "UV_NATIVE_TLS",
    "UV_HTTP_TIMEOUT",
    "UV_FIND_LINKS",
)


class Output(Protocol):
    def write(self, text: str, /) -> int: ...
    def flush(self) -> None: ...


@dataclass(frozen=True)
class Artifact:
    digest: str
    process_types: dict[str, str]


@dataclass(frozen=True)
class BuildRequest:
    app: str
    app_id: str
    commit: str
    config: Mapping[str, str]
    git_dir: Path
    git_env: Mapping[str, str]


class Builder:
    def __init__(
        self,
        settings: Settings,
        account: Account | None,
        out: Output,
        sandbox: SandboxPlan | None = None,
    ) -> None:
        """`account`: the app's own uid, which every step runs as (None: not root)."""
        self.settings = settings
        self.account = account
        self.out = out
        self.sandbox_plan = sandbox
        self.stack = STACK if sandbox is None else sandbox.stack
        self.sandbox: BuildSandbox | None = None
        self.slugs = SlugStore(settings.slugs_dir)

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def build(self, request: BuildRequest) -> Artifact:
        build_id = uuid.uuid4().hex
        scratch = self.settings.builds_dir / build_id
        workspace = scratch / "build"
        app_dir = workspace / "app"
        try:
            self.make_scratch(scratch)
            app_dir.mkdir(parents=True)
            self.export(request, app_dir)
            declared = read_procfile(app_dir)
            self.prepare(workspace, request)
            if self.sandbox_plan is None:
                return self.run_buildpacks(request, workspace, declared)
            binds = [workspace, self.cache_dir(request)]
            sandbox_dir = scratch / "sandbox"
            # The tools are shared by every app's builds: read-only, like the host's files.
            host_files = host_paths(self.environment(request, workspace))
            host_files.insert(0, self.settings.tools_dir)
            with BuildSandbox(
                build_id, sandbox_dir, self.sandbox_plan, binds, host_files
            ) as sandbox:
                self.sandbox = sandbox
                return self.run_buildpacks(request, workspace, declared)
        finally:
            self.sandbox = None
            container.unmount(scratch)
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.with_suffix(".img").unlink(missing_ok=True)

    def make_scratch(self, scratch: Path) -> None:
        """The build's own filesystem of PAAS_BUILD_DISK_MB (as root): the workspace and
        the sandbox's upper layer, so a build that fills it gets ENOSPC, not the host."""
        if self.account is not None and self.settings.build_disk_mb:
            container.mount_disk(scratch, scratch.with_suffix(".img"), self.settings.build_disk_mb)
        else:
            scratch.mkdir()
        scratch.chmod(0o711)  # a plain-process build reaches its own 0700 workspace

    def run_buildpacks(
        self, request: BuildRequest, workspace: Path, declared: dict[str, str]
    ) -> Artifact:
        app_dir = workspace / "app"
        buildpacks = self.select_buildpacks(request, workspace)
        defaults: dict[str, str] = {}
        for buildpack in buildpacks:
            self.compile(buildpack, workspace, request)
            defaults = self.release(buildpack, workspace, request)
        process_types = {**defaults, **declared}
        if not process_types:
            raise BuildFailed(
                "no process types: add a Procfile with a line such as `web: gunicorn app:app`"
            )
        started = time.monotonic()
        digest = self.slugs.add(app_dir)
        self.say(f"-----> Compressing... done, {digest[:19]} ({time.monotonic() - started:.1f}s)")
        return Artifact(digest, process_types)

    def export(self, request: BuildRequest, app_dir: Path) -> None:
        """Extracts the pushed revision (still in git's quarantine) into the build dir."""
        env = {**request.git_env, "GIT_DIR": str(request.git_dir)}
        archive = subprocess.run(
            ["git", "archive", "--format=tar", request.commit],
            env=env,
            capture_output=True,
            timeout=STEP_TIMEOUT,
        )
        if archive.returncode != 0:
            raise BuildFailed(
                f"cannot read revision {request.commit[:8]}: {archive.stderr.decode()}"
            )
        subprocess.run(
            ["tar", "-x", "--no-same-owner", "-C", str(app_dir)],
            input=archive.stdout,
            check=True,
            timeout=STEP_TIMEOUT,
        )

    def prepare(self, workspace: Path, request: BuildRequest) -> None:
        """ENV/ holds the config vars, secrets: it, the workspace and the app's cache are
        the build uid's alone (0700, files 0600), whatever the umask."""
        env_dir = workspace / "env"
        env_dir.mkdir(mode=0o700)
        for key, value in request.config.items():
            fd = os.open(env_dir / key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(value)
        (workspace / "home").mkdir(mode=0o700)
        (workspace / "buildpacks").mkdir(mode=0o700)  # the build uid's, like the workspace
        cache = self.cache_dir(request)
        cache.mkdir(mode=0o700, parents=True, exist_ok=True)
        for private in (workspace, env_dir, cache):
            private.chmod(0o700)
        self.give_to_build_user(workspace, cache)

    def cache_dir(self, request: BuildRequest) -> Path:
        return self.settings.cache_dir / request.app_id

    def give_to_build_user(self, *paths: Path) -> None:
        if self.account is None:
            return
        for path in paths:
            subprocess.run(
                ["chown", "-R", f"{self.account.uid}:{self.account.gid}", str(path)],
                check=True,
                timeout=STEP_TIMEOUT,
            )

    def select_buildpacks(self, request: BuildRequest, workspace: Path) -> list[Path]:
        url = request.config.get("BUILDPACK_URL")
        listed = workspace / "app" / ".buildpacks"
        urls = [url] if url else []
        if not urls and listed.is_file():
            urls = [u.strip() for u in listed.read_text().splitlines() if u.strip()]
        if urls:
            packs = [self.fetch_buildpack(u, workspace, i) for i, u in enumerate(urls)]
            for pack in packs:
                if self.detect(pack, workspace, request) is None:
                    raise BuildFailed(
                        f"buildpack {pack.name} cannot build this app (bin/detect failed)"
                    )
            return packs
        for candidate in sorted(BUILTIN_BUILDPACKS.iterdir()):
            pack = self.copy_buildpack(candidate, workspace, 0)
            if self.detect(pack, workspace, request) is not None:
                return [pack]
        raise BuildFailed(
            "unable to select a buildpack: no built-in buildpack detected this app "
            "(a Python app needs requirements.txt or pyproject.toml); "
            "or set BUILDPACK_URL with `paas config:set BUILDPACK_URL=...`"
        )

    def copy_buildpack(self, source: Path, workspace: Path, index: int) -> Path:
        target = workspace / "buildpacks" / f"{index}-{source.name}"
        shutil.copytree(source, target, symlinks=True)
        self.give_to_build_user(target)
        return target

    def fetch_buildpack(self, url: str, workspace: Path, index: int) -> Path:
        builtin = BUILTIN_BUILDPACKS / url.removeprefix("heroku/")
        if "/" not in url.removeprefix("heroku/") and builtin.is_dir():
            return self.copy_buildpack(builtin, workspace, index)
        if Path(url).is_absolute() and Path(url).is_dir():
            return self.copy_buildpack(Path(url), workspace, index)
        repo, _, ref = url.partition("#")
        target = workspace / "buildpacks" / f"{index}-remote"
        args = ["git", "clone", "--quiet", "--depth", "1", *(["--branch", ref] if ref else [])]
        self.say(f"-----> Fetching buildpack {url}")
        clone = subprocess.run(
            [*args, repo, str(target)], capture_output=True, text=True, timeout=STEP_TIMEOUT
        )
        if clone.returncode != 0:
            raise BuildFailed(f"cannot fetch buildpack {url}: {clone.stderr.strip()}")
        self.give_to_build_user(target)
        return target

    def environment(self, request: BuildRequest, workspace: Path) -> dict[str, str]:
        env = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
        env.update(
            PATH=f"{self.settings.tools_dir}:/usr/local/bin:/usr/bin:/bin",
            HOME=str(workspace / "home"),
            LANG="C.UTF-8",
            STACK=self.stack,
            PAAS_STACK_PYTHONS=" ".join(f"{n}={r.python}" for n, r in stacks.RECIPES.items()),
            SOURCE_VERSION=request.commit,
            UV_PYTHON_DOWNLOADS="never",
        )
        return env

    def run_step(
        self,
        argv: list[str],
        request: BuildRequest,
        workspace: Path,
        timeout: float,
        echo: bool = True,
    ) -> tuple[int, str]:
        """Runs one buildpack script as the build user (in the sandbox when there is one),
        streaming its output live."""
        account = self.account
        env = self.environment(request, workspace)
        if self.sandbox is not None:
            argv, account = self.sandbox.argv(argv, env, workspace / "app"), None
        with subprocess.Popen(
            argv,
            cwd=workspace / "app",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
            # Not the platform's 077: the runtime makes the bind mounts' parent dirs with
            # it, and the build's own files end up in a world-readable slug anyway.
            umask=STEP_UMASK,
            user=account.uid if account else None,
            group=account.gid if account else None,
            extra_groups=[] if account else None,
        ) as process:
            expired = threading.Event()

            def expire() -> None:  # a silent, hung step must not hold the push forever
                expired.set()
                procs.signal_group(process.pid, signal.SIGKILL)
                self.finish_step()

            watchdog = threading.Timer(timeout, expire)
            watchdog.start()
            lines = []
            assert process.stdout is not None
            try:
                for line in process.stdout:
                    lines.append(line)
                    if echo:
                        self.out.write(line)
                        self.out.flush()
            finally:
                watchdog.cancel()
            if expired.is_set():
                process.wait()
                raise BuildFailed(
                    f"{Path(argv[0]).name} took longer than {timeout:.0f}s and was stopped"
                )
            code = process.wait()
            if self.finish_step():
                limit = self.sandbox_plan.memory_mb if self.sandbox_plan else 0
                raise BuildFailed(
                    f"the build ran out of memory and was killed (limit {limit} MB): reduce what "
                    "the build installs at once, or raise PAAS_BUILD_MEMORY_MB"
                )
            return code, "".join(lines)

    def finish_step(self) -> bool:
        """Ends a sandboxed step; True when the kernel OOM-killed part of it."""
        return self.sandbox is not None and self.sandbox.finish_step()

    def detect(self, buildpack: Path, workspace: Path, request: BuildRequest) -> str | None:
        argv = [str(buildpack / "bin" / "detect"), str(workspace / "app")]
        code, text = self.run_step(argv, request, workspace, STEP_TIMEOUT, echo=False)
        if code != 0:
            return None
        name = text.strip() or buildpack.name
        self.say(f"-----> {name} app detected")
        return name

    def compile(self, buildpack: Path, workspace: Path, request: BuildRequest) -> None:
        argv = [
            str(buildpack / "bin" / "compile"),
            str(workspace / "app"),
            str(self.cache_dir(request)),
            str(workspace / "env"),
        ]
        code, _ = self.run_step(argv, request, workspace, COMPILE_TIMEOUT)
        if code != 0:
            raise BuildFailed(
                f"the {buildpack.name.split('-', 1)[-1]} buildpack failed to compile "
                f"(exit status {code}): see the output above"
            )

    def release(self, buildpack: Path, workspace: Path, request: BuildRequest) -> dict[str, str]:
        script = buildpack / "bin" / "release"
        if not script.exists():
            return {}
        argv = [str(script), str(workspace / "app")]
        code, text = self.run_step(argv, request, workspace, STEP_TIMEOUT, echo=False)
        if code != 0:
            raise BuildFailed(f"bin/release of {buildpack.name} failed (exit status {code})")
        return default_process_types(text)


def host_paths(env: dict[str, str]) -> list[Path]:
    """Local files and directories the host's index and CA settings point at (a CA bundle,
    a find-links directory, a file:// index), so a sandboxed build sees them too."""
    found: set[Path] = set()
    for key in PASSED_THROUGH:
        for word in env.get(key, "").replace(",", " ").split():
            path = Path(word.removeprefix("file://"))
            if path.is_absolute() and path.exists():
                found.add(path)
    return sorted(found)


def read_procfile(app_dir: Path) -> dict[str, str]:
    path = app_dir / "Procfile"
    if not path.is_file():
        return {}
    try:
        return procfile.parse(path.read_text(errors="replace"))
    except PaasError as error:
        raise BuildFailed(error.message) from None


def default_process_types(release_yaml: str) -> dict[str, str]:
    """Reads `default_process_types` from bin/release's YAML (a flat mapping)."""
    types: dict[str, str] = {}
    inside = False
    for line in release_yaml.splitlines():
        if not line.strip() or line.startswith("---"):
            continue
        if not line.startswith((" ", "\t")):
            inside = line.split(":", 1)[0].strip() == "default_process_types"
            continue
        if inside and ":" in line:
            name, command = line.strip().split(":", 1)
            types[name.strip()] = command.strip().strip("'\"")
    return types


def ensure_tools(settings: Settings) -> None:
    """Puts uv where the build user can run it (the platform's venv may be private)."""
    settings.tools_dir.mkdir(parents=True, exist_ok=True)
    source = Path(sys.prefix) / "bin" / "uv"
    target = settings.tools_dir / "uv"
    if source.exists() and (not target.exists() or target.stat().st_size != source.stat().st_size):
        tmp = target.with_suffix(".tmp")
        shutil.copy2(source, tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
