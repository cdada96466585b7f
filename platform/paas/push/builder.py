"""The builder: a git revision in, an immutable slug and its process types out.

It follows the classic buildpack API (bin/detect, bin/compile BUILD CACHE ENV,
bin/release) and runs every buildpack step as the unprivileged build user with a minimal
environment, argv lists and a timeout. It never writes a release: it returns an Artifact
or raises BuildFailed, so a failed build cannot touch what is running.

The pushed tree is hostile: it is extracted and buildpacks are fetched as the build user,
never as root; the files the platform itself reads from it (Procfile, .buildpacks) go
through pushed_tree; buildpack sources pass buildpack_source's allow-list. Memory use is
bounded whatever a push or a step does: the tree is piped from git into tar and counted,
step output is streamed in chunks and only its head is kept, and every step ends by the
push's deadline.
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import math
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from paas.artifacts import runtimes, stacks
from paas.artifacts.depcache import DepCache
from paas.artifacts.images import ImageStore
from paas.artifacts.slugs import SlugStore
from paas.domain import buildpack_release, buildpack_source, healthcheck, procfile, requirements
from paas.domain.errors import BuildFailed, PaasError
from paas.domain.output import Output
from paas.domain.settings import Settings
from paas.host import platform_log, procs
from paas.isolation import container, users
from paas.isolation.container import BuildSandbox, SandboxPlan
from paas.isolation.users import Account
from paas.push import buildpack_fetch, pushed_tree, python_provider
from paas.push.steps import CHUNK, Watchdog, first_line, pipe

BUILTIN_BUILDPACKS = Path(__file__).resolve().parents[3] / "buildpacks"
# The order the built-ins are tried in when an app names none (the first to detect wins):
# the languages first, in Heroku's documented order (Node.js before Python), then static
# (its static.json or public/index.html may sit beside a language's files), and the
# Procfile-only one last, as it detects any app with a Procfile.
BUILTIN_DETECT_ORDER = ("nodejs", "python", "static", "procfile")
COMPILE_TIMEOUT = 15 * 60
STEP_TIMEOUT = 120
STEP_UMASK = 0o022
STACK = "paas-host"
DEPS_USER = "paas-deps"  # the shared dependency cache's prime steps run as it
STEP_OUTPUT_KEPT = 64 * 1024  # characters of a step's output kept for parsing (detect, release)
BUILDPACKS_FILE_BYTES = 16 * 1024
# Sources the export files ($2 .. $N+1, N=$1) of earlier buildpacks, then runs the rest.
SOURCE_EXPORTS = 'n="$1"; shift; for _ in $(seq "$n"); do . "$1" || exit 1; shift; done; exec "$@"'
CONFIG_DEFAULTS = ".profile.d/000-paas-buildpack-config.sh"
# Every built-in's bin/detect in one build step, in order (a step is a container start):
# prints the first that detects the app, then the first line of what it printed.
DETECT_FIRST = (
    'app="$1"; shift; for pack in "$@"; do'
    ' if name=$("$pack/bin/detect" "$app"); then'
    " printf 'paas-detected %s\\n%s\\n' \"$pack\" \"${name%%$'\\n'*}\"; exit 0; fi;"
    " done; exit 100"
)
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
    # The Node.js buildpack: an npm registry mirror, and where Node binaries come from.
    "NPM_CONFIG_REGISTRY",
    "npm_config_registry",
    "COREPACK_NPM_REGISTRY",
    "PAAS_NODE_BINARY_SOURCE",
)


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
    buildpacks: tuple[str, ...] = ()  # the app's stored buildpacks (`paas buildpacks`)


@dataclass(frozen=True)
class SharedDeps:
    """The shared dependency cache as builds use it: its store, and the account its prime
    steps run as (the platform's, no app's)."""

    cache: DepCache
    account: Account


class Builder:
    def __init__(
        self,
        settings: Settings,
        account: Account | None,
        out: Output,
        sandbox: SandboxPlan | None = None,
        deadline: float = math.inf,
        shared: SharedDeps | None = None,
    ) -> None:
        """`account`: the app's own uid, which every step runs as (None: not root);
        `deadline`: time.monotonic() by which the whole build must be done; `shared`: the
        shared dependency cache (None: each app builds its own environment)."""
        self.shared = shared
        self.settings = settings
        self.deadline = deadline
        self.account = account
        self.out = out
        self.sandbox_plan = sandbox
        self.stack = STACK if sandbox is None else sandbox.stack
        self.sandbox: BuildSandbox | None = None
        self.slugs = SlugStore(settings.slugs_dir)
        self.teardown: threading.Thread | None = None
        self.prime_sandbox: BuildSandbox | None = None  # removed with the build's own
        self.runtimes: runtimes.RuntimeStore | None = None  # offered to sandboxed builds
        self.offers: list[runtimes.Offer] = []  # made into the store at teardown
        self.fetcher = buildpack_fetch.Fetcher(
            settings=settings,
            account=account,
            builtins=BUILTIN_BUILDPACKS,
            passed={k: os.environ[k] for k in PASSED_THROUGH if k in os.environ},
            say=self.say,
            give=self.give_to_build_user,
            within=self.within,
            timed_out=self.timed_out,
        )
        self.pythons = python_provider.PythonProvider(
            settings=settings,
            account=account,
            passed=self.fetcher.passed,
            say=self.say,
            give=self.give_to_build_user,
            within=self.within,
            timed_out=self.timed_out,
        )

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def within(self, timeout: float) -> float:
        """A step's timeout, cut to what is left before the push's deadline."""
        return max(0.0, min(timeout, self.deadline - time.monotonic()))

    def timed_out(self, what: str, timeout: float) -> BuildFailed:
        if time.monotonic() >= self.deadline - 1.0:
            return BuildFailed(
                f"the push took longer than {self.settings.push_timeout_seconds:.0f}s "
                f"(PAAS_PUSH_TIMEOUT) and was stopped during {what}"
            )
        return BuildFailed(f"{what} took longer than {timeout:.0f}s and was stopped")

    def build(self, request: BuildRequest) -> Artifact:
        build_id = uuid.uuid4().hex
        scratch = self.settings.builds_dir / build_id
        workspace = scratch / "build"
        app_dir = workspace / "app"
        sandbox: BuildSandbox | None = None
        try:
            self.make_scratch(scratch)
            app_dir.mkdir(parents=True)
            self.give_to_build_user(workspace, app_dir)
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
            plan = BuildSandbox(build_id, sandbox_dir, self.sandbox_plan, binds, host_files)
            self.offer_runtimes(plan)
            sandbox = self.sandbox = plan.__enter__()  # left in tear_down
            return self.run_buildpacks(request, workspace, declared)
        finally:
            self.sandbox = None
            # Off the push's critical path: the release and the rollout go on meanwhile,
            # and the hook waits for it before it ends (wait_for_teardown, or at exit).
            # No step runs any more: each step's container was removed when it ended.
            self.teardown = threading.Thread(
                target=self.tear_down, args=(scratch, request, sandbox)
            )
            self.teardown.start()

    def tear_down(
        self, scratch: Path, request: BuildRequest, sandbox: BuildSandbox | None = None
    ) -> None:
        """Removes the sandboxes (a prime's and the build's: their overlays are on the
        build's disk) first, unmounts the app's cache (kept: its writes go to its image)
        and removes the build's own disk.
        The top of its thread: whatever fails is the platform log's, never the push's (the
        build is over) nor the pusher's to read as a traceback."""
        try:
            for used in (self.prime_sandbox, sandbox):
                if used is not None:
                    used.__exit__(None, None, None)
            self.make_runtimes(request)  # from the cache: before it is unmounted
            container.unmount(self.cache_dir(request))
            container.remove_disk(scratch, scratch.with_suffix(".img"))
        except Exception:
            platform_log.exception(f"paas: tearing down build {scratch.name} failed:")

    def wait_for_teardown(self) -> None:
        if self.teardown is not None:
            self.teardown.join()

    def make_scratch(self, scratch: Path) -> None:
        """The build's own filesystem of PAAS_BUILD_DISK_MB (as root): the workspace and
        the sandbox's upper layer, so a build that fills it gets ENOSPC, not the host."""
        # Traversable by the build's uid whoever made it (made under umask 077, it is not).
        self.settings.builds_dir.mkdir(parents=True, exist_ok=True)
        self.settings.builds_dir.chmod(0o711)
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
        python = self.python_home(request, workspace, buildpacks)
        # The shared environments are built with the stack's Python: not this app's then.
        entry = None if python else self.shared_entry(request, workspace, buildpacks)
        for number, buildpack in enumerate(buildpacks):
            offered = {"PAAS_SHARED_VENV": str(entry)} if entry and is_python(buildpack) else {}
            if python is not None and is_python(buildpack):
                offered["PAAS_MANAGED_PYTHON"] = str(python)
            self.compile(buildpack, workspace, request, buildpacks[:number], offered)
        if entry is not None and self.shared is not None:
            self.shared.cache.remember(request.app_id, entry)
        # Heroku's multi-buildpack: only the last buildpack's bin/release counts.
        info = self.release(buildpacks[-1], workspace, request)
        write_config_defaults(app_dir, info.config_vars)
        if info.config_vars:
            self.say(
                "-----> Default config vars from bin/release (where the app sets none): "
                + ", ".join(sorted(info.config_vars))
            )
        defaults = info.default_process_types
        process_types = {**defaults, **declared}
        if not process_types:
            raise BuildFailed(
                "no process types: add a Procfile with a line such as `web: gunicorn app:app`"
            )
        self.settle_runtimes(app_dir, request)
        started = time.monotonic()
        digest = self.slugs.add(app_dir)
        self.say(f"-----> Compressing... done, {digest[:19]} ({time.monotonic() - started:.1f}s)")
        return Artifact(digest, process_types)

    def offer_runtimes(self, sandbox: BuildSandbox) -> None:
        """The shared runtime store, read-only at runtimes.MOUNT in every step (not
        listable: a step reaches an entry by its name); each entry is pinned for the
        collector while this push runs."""
        store = runtimes.store_of(self.settings.home)
        store.pin_all()
        sandbox.readonly_mounts = ((str(store.directory), str(runtimes.MOUNT)),)
        self.runtimes = store

    def settle_runtimes(self, app_dir: Path, request: BuildRequest) -> None:
        """Reads the buildpacks' .paas/runtimes.json (docs/buildpacks.md, "Shared
        runtimes"): what the slug runs on must be in the store; what it offers is made at
        teardown. The file becomes the slug's manifest: the names, nothing else."""
        data = pushed_tree.read_bytes(app_dir, runtimes.MANIFEST, runtimes.MANIFEST_BYTES)
        if data is None or self.runtimes is None:  # no store offered: no link to one
            return
        declared = runtimes.parse_declaration(data)
        for name in declared.runtimes:
            if not self.runtimes.has(name):
                raise BuildFailed(
                    f"{runtimes.MANIFEST} names runtime {name}, which this host does not "
                    "have: a buildpack links only to what it finds under $PAAS_RUNTIMES "
                    "(remove the file if the app's repository holds it)"
                )
        cache = self.cache_dir(request).resolve()
        for offer in declared.offers:
            if not self.runtimes.has(offer.name) and Path(offer.archive).is_relative_to(cache):
                self.offers.append(offer)
        write_app_file(app_dir, runtimes.MANIFEST, runtimes.manifest(declared.runtimes))

    def make_runtimes(self, request: BuildRequest) -> None:
        """The build's offers into the store, from archives in the app's cache (no step
        runs any more: nothing of the app changes them meanwhile). A failure is the
        platform log's: this build's slug has its own copy."""
        if self.runtimes is None:
            return
        cache = self.cache_dir(request).resolve()
        unpackers = {p.name: p / "bin" / "runtime" for p in _builtins(BUILTIN_BUILDPACKS)}
        for offer in self.offers:
            unpack = unpackers.get(offer.kind)
            archive = Path(offer.archive).resolve()  # through no link out of the cache
            if unpack is None or not unpack.is_file() or not archive.is_relative_to(cache):
                continue
            try:
                account = deps_account()
                entry = self.runtimes.add(offer, archive, [str(unpack)], (account.uid, account.gid))
                # Its image layer now too, off the next push's path: the releases share it.
                ImageStore(self.settings.images_dir).runtime_layer(entry)
            except (OSError, PaasError) as error:
                platform_log.line(f"paas: shared runtime {offer.name} not made: {error}")

    def export(self, request: BuildRequest, app_dir: Path) -> None:
        """Extracts the pushed revision (still in git's quarantine) into the build dir:
        `git archive` piped into tar run as the build user, the stream counted so the tree
        cannot exceed max_tree_bytes."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **request.git_env}
        env["GIT_DIR"] = str(request.git_dir)
        account = self.account
        limit = self.settings.max_tree_bytes
        timeout = self.within(STEP_TIMEOUT)
        with (
            tempfile.TemporaryFile() as archive_err,
            tempfile.TemporaryFile() as tar_err,
            subprocess.Popen(
                ["git", "archive", "--format=tar", request.commit],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=archive_err,
                start_new_session=True,
            ) as archive,
            subprocess.Popen(
                ["tar", "-x", "--no-same-owner", "--no-same-permissions", "-C", str(app_dir)],
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=tar_err,
                start_new_session=True,
                **users.run_as(account),
            ) as tar,
        ):
            assert archive.stdout is not None and tar.stdin is not None
            watchdog = Watchdog(timeout, [archive.pid, tar.pid])
            try:
                total, complete = pipe(archive.stdout, tar.stdin, limit)
                if complete:
                    archive.wait()  # the watchdog still stops a hung git or tar
                    tar.wait()
            finally:
                watchdog.cancel()
                if archive.poll() is None or tar.poll() is None:
                    procs.signal_group(archive.pid, signal.SIGKILL)
                    procs.signal_group(tar.pid, signal.SIGKILL)
            if watchdog.fired:
                raise self.timed_out("extracting the pushed revision", timeout)
            if total > limit:
                raise BuildFailed(
                    f"the pushed revision's files take more than {limit // 2**20} MB: "
                    "keep large files out of the repository (the limit is 4 x PAAS_MAX_PUSH_MB)"
                )
            revision = request.commit[:8]
            if tar.wait() != 0:  # first: a failed tar is why git archive was stopped
                raise BuildFailed(f"cannot extract revision {revision}: {first_line(tar_err)}")
            if archive.wait() != 0:
                raise BuildFailed(f"cannot read revision {revision}: {first_line(archive_err)}")

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
        if self.account is not None and self.settings.build_cache_mb:
            # Kept between builds but capped: a build filling it gets ENOSPC, not the host.
            image = cache.with_suffix(".img")
            container.mount_kept_disk(cache, image, self.settings.build_cache_mb)
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
            owner = f"{self.account.uid}:{self.account.gid}"
            procs.run(["chown", "-R", owner, str(path)], timeout=STEP_TIMEOUT)

    def sources(
        self, request: BuildRequest, workspace: Path
    ) -> tuple[str, list[buildpack_source.Source]]:
        """Where the app's buildpacks come from, in Heroku's order, and what they are:
        the app's stored buildpacks, else BUILDPACK_URL, else .buildpacks, else app.json's
        `buildpacks`; ("", []) for detection. Each is checked against the allow-list."""
        allowed = self.settings.buildpack_sources
        builtins = builtin_names()
        if request.buildpacks:
            origin = "the app's buildpacks"
            return origin, buildpack_source.parse_all(request.buildpacks, allowed, builtins, origin)
        url = request.config.get("BUILDPACK_URL", "").strip()
        if url:
            return "BUILDPACK_URL", [buildpack_source.parse(url, allowed, builtins)]
        app_dir = workspace / "app"
        listed = pushed_tree.read_bytes(app_dir, ".buildpacks", BUILDPACKS_FILE_BYTES)
        if listed is not None:
            text = listed.decode(errors="replace")
            return ".buildpacks", buildpack_source.parse_list(text, allowed, builtins)
        manifest = pushed_tree.read_bytes(app_dir, "app.json", healthcheck.MAX_FILE_BYTES)
        if manifest is not None:
            urls = buildpack_source.app_json_urls(manifest.decode("utf-8-sig", errors="replace"))
            if urls:
                return "app.json", buildpack_source.parse_all(urls, allowed, builtins, "app.json")
        return "", []

    def select_buildpacks(self, request: BuildRequest, workspace: Path) -> list[Path]:
        origin, sources = self.sources(request, workspace)
        if sources:
            if len(sources) > 1:
                self.say(f"-----> {len(sources)} buildpacks from {origin}, compiled in order")
            packs = [self.fetcher.fetch(s, workspace, i) for i, s in enumerate(sources)]
            for pack in packs:
                if self.detect(pack, workspace, request) is None:
                    raise BuildFailed(
                        f"buildpack {pack.name} cannot build this app (bin/detect failed)"
                    )
            return packs
        detected = self.detect_builtin(workspace, request)
        if detected is not None:
            return [detected]
        raise BuildFailed(
            "unable to select a buildpack: no built-in buildpack detected this app "
            "(a Python app needs requirements.txt or pyproject.toml, a static site "
            "static.json or public/index.html, any other app a Procfile); "
            "or set one with `paas buildpacks:set URL`"
        )

    def detect_builtin(self, workspace: Path, request: BuildRequest) -> Path | None:
        """The first built-in, in BUILTIN_DETECT_ORDER, whose bin/detect takes the app."""
        packs = [self.copy_buildpack(c, workspace, 0) for c in builtin_detect_order()]
        argv = ["/bin/bash", "-c", DETECT_FIRST, "detect", str(workspace / "app")]
        code, text = self.run_step(
            argv + [str(p) for p in packs], request, workspace, STEP_TIMEOUT, echo=False
        )
        lines = text.splitlines()
        marks = [i for i, line in enumerate(lines) if line.startswith("paas-detected ")]
        if code != 0 or not marks:
            return None
        chosen = lines[marks[-1]].removeprefix("paas-detected ")
        pack = next((p for p in packs if str(p) == chosen), None)
        if pack is not None:
            name = lines[marks[-1] + 1].strip() if marks[-1] + 1 < len(lines) else ""
            self.say(f"-----> {name or pack.name.split('-', 1)[-1]} app detected")
        return pack

    def copy_buildpack(self, source: Path, workspace: Path, index: int) -> Path:
        return self.fetcher.copy_builtin(source, workspace, f"{index}-{source.name}")

    def environment(self, request: BuildRequest, workspace: Path) -> dict[str, str]:
        env = step_environment(
            os.environ,
            self.settings.tools_dir,
            workspace / "home",
            self.stack,
            request.commit,
            workspace / "app",
        )
        if self.runtimes is not None:
            env["PAAS_RUNTIMES"] = str(runtimes.MOUNT)
        return env

    def run_step(
        self,
        argv: list[str],
        request: BuildRequest,
        workspace: Path,
        timeout: float,
        echo: bool = True,
        extra_env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> tuple[int, str]:
        """Runs one buildpack script as the build user (in the sandbox when there is one),
        streaming its output live; returns its exit status and the head of its output.
        `workspace`'s home is HOME, its app the working directory unless `cwd` says."""
        account = self.account
        env = {**self.environment(request, workspace), **(extra_env or {})}
        cwd = workspace / "app" if cwd is None else cwd
        if self.sandbox is not None:
            argv, account = self.sandbox.argv(argv, env, cwd), None
        limit = self.within(timeout)
        with subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Not the platform's 077: the runtime makes the bind mounts' parent dirs with
            # it, and the build's own files end up in a world-readable slug anyway.
            umask=STEP_UMASK,
            **users.run_as(account),
        ) as process:
            assert process.stdout is not None
            # A silent, hung step must not hold the push forever.
            watchdog = Watchdog(limit, [process.pid], on_fire=self.finish_step)
            try:
                kept = self.relay(process.stdout, echo)
            except BaseException:
                procs.signal_group(process.pid, signal.SIGKILL)
                self.finish_step()
                raise
            finally:
                watchdog.cancel()
            if watchdog.fired:
                process.wait()
                raise self.timed_out(Path(argv[0]).name, limit)
            code = process.wait()
            if self.finish_step():
                limit_mb = self.sandbox_plan.memory_mb if self.sandbox_plan else 0
                raise BuildFailed(
                    f"the build ran out of memory and was killed (limit {limit_mb} MB): reduce "
                    "what the build installs at once, or raise PAAS_BUILD_MEMORY_MB"
                )
            return code, kept

    def relay(self, stream: IO[bytes], echo: bool) -> str:
        """Passes a step's output on as it comes, in chunks (a line may be any length);
        keeps only its first STEP_OUTPUT_KEPT characters."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        kept: list[str] = []
        size = 0
        while chunk := stream.read1(CHUNK):  # type: ignore[attr-defined]
            text = decoder.decode(chunk)
            if size < STEP_OUTPUT_KEPT:
                kept.append(text[: STEP_OUTPUT_KEPT - size])
                size += len(kept[-1])
            if echo and text:
                self.out.write(text)
                self.out.flush()
        rest = decoder.decode(b"", final=True)  # an incomplete last character
        if echo and rest:
            self.out.write(rest)
        return "".join(kept)

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

    def compile(
        self,
        buildpack: Path,
        workspace: Path,
        request: BuildRequest,
        before: list[Path],
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        """bin/compile BUILD CACHE ENV; the `export` file of each buildpack compiled before
        it is sourced first (Heroku's multi-buildpack), in order."""
        argv = [
            str(buildpack / "bin" / "compile"),
            str(workspace / "app"),
            str(self.cache_dir(request)),
            str(workspace / "env"),
        ]
        exports = [str(p / "export") for p in before if (p / "export").is_file()]
        if exports:
            argv = [
                "/bin/bash",
                "-c",
                SOURCE_EXPORTS,
                "compile",
                str(len(exports)),
                *exports,
                *argv,
            ]
        code, _ = self.run_step(argv, request, workspace, COMPILE_TIMEOUT, extra_env=extra_env)
        if code != 0:
            raise BuildFailed(
                f"the {buildpack.name.split('-', 1)[-1]} buildpack failed to compile "
                f"(exit status {code}): see the output above"
            )

    def release(
        self, buildpack: Path, workspace: Path, request: BuildRequest
    ) -> buildpack_release.ReleaseInfo:
        script = buildpack / "bin" / "release"
        if not script.exists():
            return buildpack_release.ReleaseInfo()
        argv = [str(script), str(workspace / "app")]
        code, text = self.run_step(argv, request, workspace, STEP_TIMEOUT, echo=False)
        if code != 0:
            raise BuildFailed(f"bin/release of {buildpack.name} failed (exit status {code})")
        name = buildpack.name.split("-", 1)[-1]
        if len(text) >= STEP_OUTPUT_KEPT:  # what was kept is only its head
            raise buildpack_release.too_long(name)
        return buildpack_release.parse(text, name)

    def python_home(
        self, request: BuildRequest, workspace: Path, buildpacks: list[Path]
    ) -> Path | None:
        """A Python the app asks for and its stack lacks, from the host-wide store
        (paas.push.python_provider), mounted read-only into the build's steps; None when
        the built-in Python buildpack does not build the app, or has the stack's."""
        if not any(is_python(pack) for pack in buildpacks):
            return None
        rootfs = Path("/") if self.sandbox_plan is None else self.sandbox_plan.stack_rootfs
        home = self.pythons.provide(workspace / "app", request.config, rootfs, workspace)
        if home is not None and self.sandbox is not None:
            self.sandbox.readonly_binds += (str(home),)
        return home

    def shared_entry(
        self, request: BuildRequest, workspace: Path, buildpacks: list[Path]
    ) -> Path | None:
        """The shared dependency cache's entry for this build, primed first when there is
        none yet, mounted read-only into the build's later steps; None when the app's
        dependencies are not shared (not the built-in Python buildpack, a lock file, a
        requirements.txt with options or URLs, an index of its own) or cannot be."""
        if self.shared is None or self.sandbox is None or self.sandbox_plan is None:
            return None
        app_dir = workspace / "app"
        if not any(is_python(pack) for pack in buildpacks) or any(
            os.path.lexists(app_dir / name) for name in requirements.PREFERRED_FILES
        ):
            return None
        data = pushed_tree.read_bytes(app_dir, "requirements.txt", requirements.MAX_BYTES + 1)
        if (
            data is None
            or not requirements.shareable(data)
            or requirements.own_index(request.config)
        ):
            return None
        version = (BUILTIN_BUILDPACKS / "python" / "VERSION").read_text()
        host = [(k, os.environ[k]) for k in PASSED_THROUGH if k in os.environ]
        stack_root = str(self.sandbox_plan.stack_rootfs)
        key = requirements.key(data, self.stack, stack_root, version, host)
        cache = self.shared.cache
        entry = cache.offer(request.app_id, key)
        if entry is None and not cache.failed_recently(key):
            entry = self.prime(request, workspace, key, data)
        if entry is not None:
            self.sandbox.readonly_binds += (str(entry),)
        return entry

    def prime(self, request: BuildRequest, workspace: Path, key: str, data: bytes) -> Path | None:
        """Builds the entry for `key` in a container of its own, as the platform's deps
        account: it sees the requirements file (the pushed bytes, checked), a pristine copy
        of the built-in Python buildpack, the tools and a staging directory, and runs
        bin/prime (wheels only, nothing of a package runs). None when it fails: the app's
        own build then installs as before."""
        assert self.shared is not None and self.sandbox_plan is not None
        shared, plan = self.shared, self.sandbox_plan
        base = workspace.parent / "deps"  # on the build's capped disk
        buildpack, work = base / "buildpack", base / "work"
        base.mkdir(mode=0o711)
        shutil.copytree(BUILTIN_BUILDPACKS / "python", buildpack)  # its links resolved
        (work / "app").mkdir(parents=True)
        (work / "home").mkdir()
        (work / "app" / "requirements.txt").write_bytes(data)
        owner = f"{shared.account.uid}:{shared.account.gid}"
        procs.run(["chown", "-R", owner, str(work)], timeout=STEP_TIMEOUT)
        work.chmod(0o700)
        env = step_environment(
            os.environ, self.settings.tools_dir, work / "home", self.stack, request.commit
        )
        readonly = [self.settings.tools_dir, buildpack, *host_paths(env)]
        deps_plan = dataclasses.replace(plan, uid=shared.account.uid, gid=shared.account.gid)
        sandbox = BuildSandbox(
            f"{base.parent.name}.deps", base / "sandbox", deps_plan, [work], readonly
        )
        started = time.monotonic()
        build_sandbox, self.sandbox = self.sandbox, sandbox.__enter__()
        self.prime_sandbox = sandbox  # its container is gone when its step ends
        try:
            argv = [str(buildpack / "bin" / "prime"), str(work)]
            code, why = self.run_step(argv, request, workspace, COMPILE_TIMEOUT, True, env, work)
        except BuildFailed as failure:  # its time ran out: the build's own step says so
            code, why = -1, failure.message
        finally:
            self.sandbox = build_sandbox
        entry = None
        if code == 0:
            try:
                entry = shared.cache.add(key, work, data)
            except PaasError as failure:
                why = failure.message
        if entry is None:
            shared.cache.record_failure(key)
            tail = " / ".join(why.strip().splitlines()[-2:])
            platform_log.line(f"paas: shared dependencies for {request.app} not built: {tail}")
            self.say("       Not shared with other apps (see above): this app installs its own")
            return None
        self.say(f"       Shared environment ready ({time.monotonic() - started:.1f}s)")
        shared.cache.prune()
        return entry


def step_environment(
    host: Mapping[str, str],
    tools_dir: Path,
    home: Path,
    stack: str,
    commit: str,
    build_dir: Path | None = None,
) -> dict[str, str]:
    """The whole environment of a buildpack step: the host's proxy, CA and index settings
    (PASSED_THROUGH) and what the buildpack API defines, nothing else of `host`."""
    env = {k: host[k] for k in PASSED_THROUGH if k in host}
    env.update(
        PATH=f"{tools_dir}:/usr/local/bin:/usr/bin:/bin",
        HOME=str(home),
        LANG="C.UTF-8",
        STACK=stack,
        PAAS_STACK_PYTHONS=" ".join(f"{n}={r.python}" for n, r in stacks.RECIPES.items()),
        SOURCE_VERSION=commit,
        UV_PYTHON_DOWNLOADS="never",
    )
    if build_dir is not None:
        env["BUILD_DIR"] = str(build_dir)
    return env


def is_python(buildpack: Path) -> bool:
    """Whether a selected buildpack is the built-in Python one (copied as N-python)."""
    return buildpack.name.split("-", 1)[-1] == "python"


def shared_deps(settings: Settings) -> SharedDeps:
    """The shared dependency cache under PAAS_HOME/deps and its account (made if needed)."""
    cache = DepCache(
        settings.home / "deps", settings.push_timeout_seconds, settings.build_cache_mb << 20
    )
    return SharedDeps(cache, deps_account())


def deps_account() -> Account:
    """The platform's own build account (made if needed): shared dependencies and shared
    runtimes are made as it, never as an app's."""
    users.ensure_user(DEPS_USER)
    entry = pwd.getpwnam(DEPS_USER)
    return Account(entry.pw_uid, entry.pw_gid)


def host_paths(env: dict[str, str]) -> list[Path]:
    """Local files and directories the host's index and CA settings point at (a CA bundle,
    a find-links directory, a file:// index, PAAS_NODE_BINARY_SOURCE=pypi=file://...), so a
    sandboxed build sees them too."""
    found: set[Path] = set()
    for key in PASSED_THROUGH:
        for word in env.get(key, "").replace(",", " ").split():
            path = Path(word.removeprefix("pypi=").removeprefix("file://"))
            if path.is_absolute() and path.exists():
                found.add(path)
    return sorted(found)


def read_procfile(app_dir: Path) -> dict[str, str]:
    data = pushed_tree.read_bytes(app_dir, "Procfile", procfile.MAX_BYTES)
    if data is None:
        return {}
    try:
        return procfile.parse(data.decode(errors="replace"))
    except PaasError as error:
        raise BuildFailed(error.message) from None


def builtin_names() -> list[str]:
    return sorted(p.name for p in _builtins(BUILTIN_BUILDPACKS))


def _builtins(directory: Path) -> list[Path]:
    """The buildpacks in ``directory``: what has a bin/detect (buildpacks/common holds the
    shell libraries the built-ins share, linked from their lib/)."""
    return [p for p in directory.iterdir() if (p / "bin" / "detect").is_file()]


def builtin_detect_order(directory: Path | None = None) -> list[Path]:
    """The built-ins of BUILTIN_DETECT_ORDER that are there, in that order; one there but
    not in the order is a mistake that must not leave it silently undetected."""
    directory = BUILTIN_BUILDPACKS if directory is None else directory
    present = {p.name for p in _builtins(directory)}
    unordered = present.difference(BUILTIN_DETECT_ORDER)
    if unordered:
        raise BuildFailed(
            f"built-in buildpack {sorted(unordered)[0]} is not in BUILTIN_DETECT_ORDER "
            "(paas.push.builder): add it where it should be tried"
        )
    return [directory / name for name in BUILTIN_DETECT_ORDER if name in present]


def write_app_file(app_dir: Path, relative: str, data: bytes, make_parent: bool = False) -> None:
    """Replaces DIR/NAME (`relative`, one directory deep) in the build user's tree, as
    root, through directory fds that follow no link; `make_parent`: DIR is made if absent."""
    parent, name = relative.split("/")
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    top = os.open(app_dir, flags)
    try:
        if make_parent:
            with contextlib.suppress(FileExistsError):
                os.mkdir(parent, 0o755, dir_fd=top)
        below = os.open(parent, flags, dir_fd=top)
    except OSError as error:
        raise BuildFailed(f"cannot write {parent}/ of the build: {error.strerror}") from None
    finally:
        os.close(top)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=below)
        fd = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=below
        )
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    finally:
        os.close(below)


def write_config_defaults(app_dir: Path, defaults: Mapping[str, str]) -> None:
    """bin/release's `config_vars` as a .profile.d script run first at dyno start: each
    is exported only where the app's config (the environment) has not set it."""
    if not defaults:
        return
    lines = ["# Written by paas: the last buildpack's bin/release config_vars defaults."]
    lines += [
        f'[ "${{{k}+set}}" = set ] || export {k}={shlex.quote(v)}'
        for k, v in sorted(defaults.items())
    ]
    text = "\n".join(lines) + "\n"
    write_app_file(app_dir, CONFIG_DEFAULTS, text.encode(), make_parent=True)


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
