"""The pre-receive hook: build, release and roll out each push to main or master.

Runs inside `git receive-pack` with git's quarantine environment, as root; everything it
prints reaches the pusher as `remote:` lines. A release is only written after a successful
build, and the push ends only once the agent has rolled it out (release phase passed, web
dynos answering) or failed it. A non-zero exit rejects the push, and the release that was
serving keeps serving.
An app's first push is also its app setup from app.json (paas.push.app_setup): env and
add-ons before the build, formation before v1, postdeploy once v1 serves.

Invariants: a build record never stays `pending` (any failure marks it failed); the pusher
gets one line per failure, a traceback only ever reaches the platform log; what is kept of
the build output is a bounded tail; the whole push ends by PAAS_PUSH_TIMEOUT; and a push
never runs with less isolation than the host offers (an app's missing stack fails it).
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from paas.artifacts import runtimes, stacks
from paas.artifacts.slugs import SlugStore
from paas.domain import access, identity
from paas.domain import settings as settings_module
from paas.domain.access import Principal
from paas.domain.errors import BuildFailed, CommandFailed, PaasError
from paas.domain.models import App
from paas.domain.output import Output
from paas.domain.settings import Settings
from paas.dynos import capability
from paas.host import platform_log, procs
from paas.isolation import container, users
from paas.isolation.container import SandboxPlan
from paas.push import app_setup
from paas.push.builder import Artifact, Builder, BuildRequest, ensure_tools, shared_deps
from paas.state import build_output
from paas.state.logs import LogStore
from paas.state.store import Store

DEPLOY_REFS = ("refs/heads/main", "refs/heads/master")

ZERO = "0" * 40
GIT_ENV = ("GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH")
OUTPUT_KEPT = 64 * 1024  # characters of build output kept for the build record (the tail)
STACK_POLL_SECONDS = 1.0  # how often a push waiting for its stack's build looks again
PRIVATE_UMASK = 0o077  # as every platform process (paas.main): nothing for other users
# Needed only once the build is done: `preload` imports them while the build's commands
# run, which keeps their ~40 ms of CPU off the push's path (a use before they are loaded
# waits on the import lock).
LATER = (
    "paas.artifacts.collector",
    "paas.artifacts.images",
    "paas.push.app_files",
    "paas.release.releases",
    "paas.release.rollout_watch",
)


def preload(modules: tuple[str, ...] = LATER) -> None:
    def load() -> None:
        # A module that cannot load fails again where it is used, through the one
        # catch site of the push; here it would only print a traceback to the pusher.
        with contextlib.suppress(Exception):
            for name in modules:
                importlib.import_module(name)

    threading.Thread(target=load, name="preload", daemon=True).start()


def web_url(settings: Settings, app: str) -> str:
    port = "" if settings.http_port == 80 else f":{settings.http_port}"
    return f"http://{app}.{settings.domain}{port}/"


def deploy(
    settings: Settings,
    app_name: str,
    commit: str,
    out: TextIO,
    deadline: float = math.inf,
    by: Principal = access.OPERATOR,
) -> None:
    """Builds, releases and rolls out `commit`, which `by` pushed."""
    store, logs = Store(settings.db_path), LogStore(settings.logs_db_path)
    app = store.app(app_name)
    capture = Tee(out)
    git_dir = Path(os.environ.get("GIT_DIR", ".")).absolute()
    git_env = {k: os.environ[k] for k in GIT_ENV if k in os.environ}
    tree = app_setup.GitTree(git_dir, git_env, commit)
    # Before the build record: a first deploy whose app.json is refused leaves nothing.
    seams = app_setup.platform_seams(settings, store, logs)
    setup = app_setup.begin(store, logs, app, tree, capture, seams)
    ensure_tools(settings)
    build = store.start_build(app, commit, by, store.buildpacks(app))
    capture.stream_to(build_output.Writer(settings.run_dir, build.id))
    logs.event(app.name, "api", f"Build started for {commit[:8]}")
    try:
        app = settle_stack(settings, store, app, capture, deadline)
        account = users.app_account(store, app)
        sandbox = build_sandbox(settings, app, account)
        shared = None if sandbox is None else shared_deps(settings)
        builder = Builder(settings, account, capture, sandbox, deadline, shared)
        artifact = builder.build(
            BuildRequest(
                app=app.name,
                app_id=app.id,
                commit=commit,
                config=store.config(app),
                git_dir=git_dir,
                git_env=git_env,
                buildpacks=tuple(store.buildpacks(app)),
            )
        )
    except BaseException as error:  # also a bug or ^C: the record must not stay pending
        message = error.message if isinstance(error, PaasError) else INTERNAL_ERROR
        store.finish_build(build, "failed", None, capture.text())
        capture.end_stream()
        logs.event(app.name, "api", f"Build failed: {message}")
        raise
    from paas.artifacts import collector  # loaded meanwhile (preload)
    from paas.release import releases, rollout_watch

    store.finish_build(build, "succeeded", artifact.digest, capture.text())
    capture.end_stream()
    types = ", ".join(f"{name}" for name in artifact.process_types)
    capture.write(f"-----> Discovering process types\n       Procfile declares types -> {types}\n")
    check = read_healthcheck(settings, artifact, capture)
    image = build_image(settings, app, artifact, account, capture)
    built = releases.Build(artifact.digest, artifact.process_types, image, check)
    _, log_cursor = logs.read(app.name, num=1)  # the release command's output comes after
    setup.before_release(artifact.process_types)  # app.json formation: v1 starts at its scale
    release = releases.deploy(store, logs, app, built, commit, by)
    store.link_build(build, release)
    rollout_watch.follow(settings, store, logs, app, release, log_cursor, capture, deadline)
    capture.write(f"-----> Launching... done, v{release.version}\n")
    capture.write(f"       {web_url(settings, app.name)} deployed to paas\n")
    capture.flush()
    setup.after_rollout(release, deadline)  # app.json postdeploy, once
    builder.wait_for_teardown()  # the build's disk, removed while the rollout went on
    collector.after_deploy(settings, store, app)  # after the rollout: off its critical path


def read_healthcheck(settings: Settings, artifact: Artifact, out: Output) -> str | None:
    """The web dynos' HTTP check from app.json or CHECKS, as JSON; None: port check."""
    from paas.push import app_files

    check = app_files.load(SlugStore(settings.slugs_dir).unpacked(artifact.digest))
    if check is None:
        return None
    expecting = "" if check.content is None else f" expecting {check.content!r}"
    out.write(f"-----> Health check: GET {check.path}{expecting}\n")
    return check.to_json()


def build_sandbox(
    settings: Settings, app: App, account: users.Account | None
) -> SandboxPlan | None:
    """Builds run in a container of the build variant of the app's stack (compilers and
    headers), as the app's uid, wherever dynos do; None only when the whole host runs
    without containers (said once at server start)."""
    found = capability.load(settings)
    if found.runtime is None or account is None:
        return None
    stack = stacks.effective(app.stack)
    if stacks.rootfs(stack) is None:
        raise BuildFailed(missing_stack(app))
    build_rootfs = stacks.build_rootfs(stack)
    if build_rootfs is None:
        raise BuildFailed(
            f"the build variant of stack {stack} ({stack}{stacks.BUILD_SUFFIX}), which builds "
            f"of app {app.name} run on, is not built on this host: run `paas stacks:build "
            f"{stack}{stacks.BUILD_SUFFIX}` and push again"
        )
    return SandboxPlan(
        stack=stack,
        runtime=found.runtime,
        state_root=settings.run_dir / "oci",
        stack_rootfs=build_rootfs,
        subnet=found.subnet,
        memory_mb=settings.build_memory_mb,
        uid=account.uid,
        gid=account.gid,
    )


def missing_stack(app: App) -> str:
    stack = stacks.effective(app.stack)
    found = stacks.status(stack)
    why = f" (its last build failed: {found.reason})" if found.state == "failed" else ""
    return (
        f"stack {stack} of app {app.name} is not built on this host{why}, and its builds and "
        f"dynos run only in containers of it: run `paas stack:set {stack}` (or `paas "
        f"stacks:build {stack}` on the host) and push again"
    )


def settle_stack(settings: Settings, store: Store, app: App, out: Output, deadline: float) -> App:
    """The stack the push builds on: one that `stack:set` asked for once it is built (the
    push waits while it builds, with its progress); the app's own when that build failed,
    saying why. The app's own stack, when some process builds it, is waited for too."""
    wanted = stacks.pending(settings.run_dir, app.name) or stacks.effective(app.stack)
    if stacks.building(wanted):
        wait_for_stack(wanted, out, deadline)
        app = store.app(app.name)  # the API may have moved it when the build ended
    wanted = stacks.pending(settings.run_dir, app.name) or stacks.effective(app.stack)
    if wanted == stacks.effective(app.stack):
        stacks.drop_request(settings.run_dir, app.name)
        return app
    found = stacks.status(wanted)
    stacks.drop_request(settings.run_dir, app.name)
    if found.state == "built":
        store.set_stack(app, wanted)
        return store.app(app.name)
    out.write(
        f" !     Stack {wanted} did not build ({found.reason or found.state}): building on "
        f"{stacks.effective(app.stack)} still; retry with `paas stack:set {wanted}`\n"
    )
    return app


def wait_for_stack(stack: str, out: Output, deadline: float) -> None:
    """Follows the stack's build log into the push output until its build ends; bounded
    by the push's deadline (the build goes on: a later push finds it built)."""
    out.write(f"-----> Waiting for stack {stack} to be built (started by `paas stack:set`)\n")
    out.flush()
    offset, building = 0, True
    while building:
        if time.monotonic() > deadline:
            raise BuildFailed(
                f"stack {stack} was still being built when the push timed out: push again "
                f"once `paas stacks` shows it built"
            )
        building = stacks.building(stack)  # before the log: its end is read in full
        text, offset = stacks.read_log(stack, offset)
        while text:
            out.write("".join(f"       {line}\n" for line in text.splitlines()))
            text, offset = stacks.read_log(stack, offset)
        out.flush()
        if building:
            time.sleep(STACK_POLL_SECONDS)  # a readiness poll: the build is another process
    out.write(f"-----> Stack {stack}: {stacks.status(stack).state}\n")


def build_image(
    settings: Settings, app: App, artifact: Artifact, account: users.Account | None, out: Output
) -> str | None:
    """The release's OCI image (stack layer + app layer), when its stack is built here."""
    from paas.artifacts.images import ImageRequest, ImageStore

    stack_rootfs = stacks.rootfs(stacks.effective(app.stack))
    if stack_rootfs is None:
        if capability.load(settings).containers:
            raise BuildFailed(missing_stack(app))  # removed since the build started
        return None
    started = time.monotonic()
    uid, gid = (os.getuid(), os.getgid()) if account is None else (account.uid, account.gid)
    slug = SlugStore(settings.slugs_dir).unpacked(artifact.digest)
    shared = runtimes.store_of(settings.home).paths(runtimes.slug_runtimes(slug))
    digest = ImageStore(settings.images_dir).build(
        ImageRequest(
            stack=app.stack,
            stack_rootfs=stack_rootfs,
            app_layer_dir=container.app_layer(slug, uid, gid),
            process_types=artifact.process_types,
            uid=uid,
            gid=gid,
            runtimes=tuple(shared),
        )
    )
    out.write(
        f"-----> Building OCI image... done, {digest[:19]} ({time.monotonic() - started:.1f}s)\n"
    )
    return digest


class Tee:
    """Writes through to the pusher and keeps the last `kept` characters for the build
    record, so a build printing gigabytes costs the hook no more than that."""

    def __init__(self, out: Output, kept: int = OUTPUT_KEPT) -> None:
        self.out = out
        self.kept = kept
        self.tail = ""
        self.stream: build_output.Writer | None = None

    def stream_to(self, writer: build_output.Writer) -> None:
        """Also to the build's live output stream (its output_stream_url), until
        `end_stream`."""
        self.stream = writer

    def end_stream(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None

    def write(self, text: str) -> int:
        self.tail = (self.tail + text[-self.kept :])[-self.kept :]
        self.out.write(text)
        if self.stream is not None:
            self.stream.write(text)
        return len(text)

    def flush(self) -> None:
        self.out.flush()

    def text(self) -> str:
        return self.tail


def current_ref(ref: str) -> str:
    """What the ref points at now in the real repository (ZERO when it does not exist)."""
    # git's own variables (GIT_DIR, the quarantine) say which repository that is.
    env = {**procs.host_env(), **{k: v for k, v in os.environ.items() if k.startswith("GIT_")}}
    try:
        found = procs.run(["git", "rev-parse", "--verify", "--quiet", ref], env=env)
    except CommandFailed as failure:
        if failure.returncode == 1:  # --verify --quiet: the ref does not exist
            return ZERO
        raise
    return found.decode().strip() or ZERO


def pre_receive(stdin: TextIO, out: TextIO) -> int:
    """The hook's one catch site: a PaasError is its one line to the pusher, anything
    else a line saying so, its traceback in the platform log only."""
    app_name = os.environ.get("PAAS_APP", "?")
    lines = stdin.read().splitlines()
    try:
        return receive(settings_module.from_env(), app_name, lines, out, pusher(os.environ))
    except PaasError as error:
        out.write(f" !     Push rejected: {error.message}\n")
    except Exception:
        pushed = " ".join(line.split()[1][:8] for line in lines if len(line.split()) == 3)
        platform_log.exception(f"paas hook: push of {app_name} {pushed} failed:")
        out.write(f" !     Push rejected: {INTERNAL_ERROR}\n")
    out.flush()
    return 1


# Who a hook run outside the API (no pusher in its environment) records: nobody known,
# never the operator, whose name would vouch for a push it did not make.
UNKNOWN_PUSHER = Principal(identity.derived_id("user", "unknown pusher"), "unknown pusher")


def pusher(environ: Mapping[str, str]) -> Principal:
    """Who pushed, as the API's git endpoint passed it (paas.api.git); none: UNKNOWN_PUSHER."""
    email = environ.get("PAAS_USER_EMAIL")
    if not email:
        return UNKNOWN_PUSHER
    return Principal(
        environ.get("PAAS_USER_ID") or None, email, environ.get("PAAS_USER_ADMIN") == "1"
    )


def receive(
    settings: Settings,
    app_name: str,
    lines: list[str],
    out: TextIO,
    by: Principal = access.OPERATOR,
) -> int:
    """Builds each pushed main/master. Whole pushes of one app are serialized by the API
    (gitservice.push_lock), so the ref cannot move between this check and git's update."""
    preload()
    deadline = time.monotonic() + settings.push_timeout_seconds
    others = [ref for _, _, ref in (line.split() for line in lines) if ref not in DEPLOY_REFS]
    if others:  # stored, they would grow the repo with objects nothing deploys or collects
        out.write(
            f" !     Push rejected: only main or master is stored and deployed, not "
            f"{', '.join(others)}: push it as main (git push paas BRANCH:main) to deploy it\n"
        )
        return 1
    for line in lines:
        old, new, ref = line.split()
        if new == ZERO:
            out.write(f" !     Deleting {ref} is not allowed\n")
            return 1
        if current_ref(ref) != old:
            out.write(
                f" !     Push rejected: {ref} moved while this push waited (another push "
                "landed first): fetch, merge and push again\n"
            )
            return 1
        deploy(settings, app_name, new, out, deadline, by)
    return 0


INTERNAL_ERROR = "internal error in the platform while building (the platform log has details)"


def main() -> int:
    os.umask(PRIVATE_UMASK)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    return pre_receive(sys.stdin, sys.stdout)


if __name__ == "__main__":  # `python -m paas.push.hook`: what each repo's hook runs
    sys.exit(main())
