"""The pre-receive hook: build, release and roll out each push to main or master.

Runs inside `git receive-pack` with git's quarantine environment, as root; everything it
prints reaches the pusher as `remote:` lines. A release is only written after a successful
build, and the push ends only once the agent has rolled it out (release phase passed, web
dynos answering) or failed it. A non-zero exit rejects the push, and the release that was
serving keeps serving.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

from paas import container, healthcheck, isolation, releases, rollout_watch, stacks, users
from paas import settings as settings_module
from paas.build import Artifact, Builder, BuildRequest, Output, ensure_tools
from paas.container import SandboxPlan
from paas.errors import PaasError
from paas.images import ImageRequest, ImageStore
from paas.logs import LogStore
from paas.runtime import ProcessRuntime
from paas.settings import Settings
from paas.slugs import SlugStore
from paas.store import App, Store

DEPLOY_REFS = ("refs/heads/main", "refs/heads/master")

ZERO = "0" * 40
GIT_ENV = ("GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH")


def web_url(settings: Settings, app: str) -> str:
    port = "" if settings.http_port == 80 else f":{settings.http_port}"
    return f"http://{app}.{settings.domain}{port}/"


def deploy(settings: Settings, app_name: str, commit: str, out: TextIO) -> None:
    store, logs = Store(settings.db_path), LogStore(settings.logs_db_path)
    app = store.app(app_name)
    ensure_tools(settings)
    build = store.start_build(app, commit)
    logs.event(app.name, "api", f"Build started for {commit[:8]}")
    capture = Tee(out)
    try:
        account = users.app_account(store, app)
        sandbox = build_sandbox(settings, app, account)
        artifact = Builder(settings, account, capture, sandbox).build(
            BuildRequest(
                app=app.name,
                app_id=app.id,
                commit=commit,
                config=store.config(app),
                git_dir=Path(os.environ.get("GIT_DIR", ".")).absolute(),
                git_env={k: os.environ[k] for k in GIT_ENV if k in os.environ},
            )
        )
    except PaasError as error:
        store.finish_build(build, "failed", None, capture.text())
        logs.event(app.name, "api", f"Build failed: {error.message}")
        raise
    store.finish_build(build, "succeeded", artifact.digest, capture.text())
    types = ", ".join(f"{name}" for name in artifact.process_types)
    capture.write(f"-----> Discovering process types\n       Procfile declares types -> {types}\n")
    check = read_healthcheck(settings, artifact, capture)
    image = build_image(settings, app, artifact, account, capture)
    built = releases.Build(artifact.digest, artifact.process_types, image, check)
    _, log_cursor = logs.read(app.name, num=1)  # the release command's output comes after
    release = releases.deploy(store, logs, app, built, commit)
    collect_images(settings, store)
    rollout_watch.follow(settings, store, logs, app, release, log_cursor, capture)
    capture.write(f"-----> Launching... done, v{release.version}\n")
    capture.write(f"       {web_url(settings, app.name)} deployed to paas\n")
    capture.flush()


def read_healthcheck(settings: Settings, artifact: Artifact, out: Output) -> str | None:
    """The web dynos' HTTP check from app.json or CHECKS, as JSON; None: port check."""
    check = healthcheck.load(SlugStore(settings.slugs_dir).unpacked(artifact.digest))
    if check is None:
        return None
    expecting = "" if check.content is None else f" expecting {check.content!r}"
    out.write(f"-----> Health check: GET {check.path}{expecting}\n")
    return check.to_json()


def build_sandbox(
    settings: Settings, app: App, account: users.Account | None
) -> SandboxPlan | None:
    """Builds run in a container of the app's stack, as the app's uid, wherever dynos do."""
    found = isolation.load(settings)
    stack_rootfs = stacks.rootfs(stacks.effective(app.stack))
    if found.runtime is None or account is None or stack_rootfs is None:
        return None
    return SandboxPlan(
        stack=stacks.effective(app.stack),
        runtime=found.runtime,
        state_root=settings.run_dir / "oci",
        stack_rootfs=stack_rootfs,
        subnet=found.subnet,
        memory_mb=settings.build_memory_mb,
        uid=account.uid,
        gid=account.gid,
    )


def build_image(
    settings: Settings, app: App, artifact: Artifact, account: users.Account | None, out: Output
) -> str | None:
    """The release's OCI image (stack layer + app layer), when its stack is built here."""
    stack_rootfs = stacks.rootfs(stacks.effective(app.stack))
    if stack_rootfs is None:
        return None
    started = time.monotonic()
    uid, gid = (os.getuid(), os.getgid()) if account is None else (account.uid, account.gid)
    slug = SlugStore(settings.slugs_dir).unpacked(artifact.digest)
    digest = ImageStore(settings.images_dir).build(
        ImageRequest(
            stack=app.stack,
            stack_rootfs=stack_rootfs,
            app_layer_dir=container.app_layer(slug, uid, gid),
            process_types=artifact.process_types,
            uid=uid,
            gid=gid,
        )
    )
    out.write(
        f"-----> Building OCI image... done, {digest[:19]} ({time.monotonic() - started:.1f}s)\n"
    )
    return digest


def collect_images(settings: Settings, store: Store) -> None:
    """Keeps the images of each app's last releases and of every running dyno."""
    refs: dict[str, str] = {}
    dynos = ProcessRuntime(settings.dynos_dir, {}).list()
    for app in store.apps():
        found = store.releases(app)
        running = {s.spec.release for s in dynos if s.spec.app == app.name}
        # Failed releases are no rollback target: they never push a good image out.
        good = [r for r in found if r.status not in ("failed", "superseded")]
        kept = good[-settings.images_kept :] + [r for r in found if r.version in running]
        refs.update({f"{app.name}-v{r.version}": r.image for r in kept if r.image})
    images = ImageStore(settings.images_dir)
    images.collect(refs.values())
    images.write_index(refs)


class Tee:
    """Writes through to the pusher and keeps a copy for the build record."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        self.out.write(text)
        return len(text)

    def flush(self) -> None:
        self.out.flush()

    def text(self) -> str:
        return "".join(self.parts)


def current_ref(ref: str) -> str:
    """What the ref points at now in the real repository (ZERO when it does not exist)."""
    result = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", ref],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.stdout.strip() or ZERO


def pre_receive(stdin: TextIO, out: TextIO) -> int:
    """Builds each pushed main/master. Whole pushes of one app are serialized by the API
    (gitservice.push_lock), so the ref cannot move between this check and git's update."""
    settings = settings_module.from_env()
    app_name = os.environ["PAAS_APP"]
    for line in stdin.read().splitlines():
        old, new, ref = line.split()
        if ref not in DEPLOY_REFS:
            out.write(f"-----> Skipping {ref}: only main or master is deployed\n")
            continue
        if new == ZERO:
            out.write(f" !     Deleting {ref} is not allowed\n")
            return 1
        if current_ref(ref) != old:
            out.write(
                f" !     Push rejected: {ref} moved while this push waited (another push "
                "landed first): fetch, merge and push again\n"
            )
            return 1
        try:
            deploy(settings, app_name, new, out)
        except PaasError as error:
            out.write(f" !     Push rejected: {error.message}\n")
            out.flush()
            return 1
    return 0


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    return pre_receive(sys.stdin, sys.stdout)
