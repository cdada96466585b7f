"""An app's setup from its app.json, on its first deploy (Heroku's app setup, in a push).

The push that creates an app's first release (v1) reads the pushed commit's app.json and,
before the build: sets `env` defaults and generated secrets for keys the app does not have
(a required key without a value rejects the push, nothing changed), and creates the
`addons` (so their config vars exist for the build and the release). After the build,
before the release is written: the initial `formation`, so v1 starts at its scale. After v1
is rolled out: `scripts.postdeploy`, once, in a one-off dyno of v1, its output streamed to
the pusher; a failing postdeploy is reported loudly but the release stays (Heroku's rule),
and it is not run again.

Invariants: each step is recorded (paas.state.setups) once done, so a push that failed
half-way redoes only what is left and no later push redoes anything; an app that had
releases before it had a record (created before app setups) is never set up; nothing is
changed before the whole manifest and the required keys were checked; add-ons and one-off
dynos are reached only through the seams given (Addons, OneOffs).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from paas.domain import app_manifest, validation
from paas.domain.app_manifest import Addon, Manifest
from paas.domain.errors import InvalidParams
from paas.domain.models import App, Release
from paas.domain.output import Output
from paas.domain.settings import Settings
from paas.host import procs
from paas.push import pushed_tree
from paas.state import setups
from paas.state.logs import LogStore
from paas.state.store import Store

if TYPE_CHECKING:
    from paas.addons.catalog import Catalog

STARTED, ENV, FORMATION, POSTDEPLOY, DONE = "started", "env", "formation", "postdeploy", "done"
SECRET_BYTES = 32  # `generator: secret`: 64 hex characters, as Heroku makes them
GIT_TIMEOUT = 30
POLL_SECONDS = 0.1  # how often a postdeploy's state and output are read
DRAIN_SECONDS = 0.5  # how long its output is read on once it ended
SYMLINK_MODE = b"120000"


class Addons(Protocol):
    """Creates add-ons for an app (the add-ons side of the platform implements it)."""

    def check(self, addon: Addon) -> str:
        """The config var the add-on will set (DATABASE_URL); InvalidParams when its
        service or plan is not offered here. Changes nothing."""
        ...

    def create(self, app: App, addon: Addon) -> str:
        """Creates the add-on, attaches it to the app as addon.as_name (None: the
        service's default) and returns the config var that holds its URL."""
        ...


class OneOffs(Protocol):
    """Runs a command in a detached one-off dyno of the app's current release."""

    def run(
        self, app: App, command: str, size: str | None, out: Output, deadline: float
    ) -> int | None:
        """Starts the dyno, streams its output to `out` until it ends (bounded by
        `deadline`) and returns its exit status; None when it did not run to its end
        (having said why on `out`)."""
        ...


class Files(Protocol):
    """The pushed commit's files (GitTree), read before the build."""

    def read(self, name: str, limit: int) -> bytes | None: ...


@dataclass(frozen=True)
class Seams:
    """What the setup reaches the rest of the platform through (None: not offered)."""

    addons: Addons | None = None
    one_offs: OneOffs | None = None


def addon_step(index: int) -> str:
    return f"addon:{index}"


def secret() -> str:
    return secrets.token_hex(SECRET_BYTES)


@dataclass
class Setup:
    """What this push has left to do of the app's setup; inactive: nothing."""

    store: Store
    logs: LogStore
    app: App
    out: Output
    seams: Seams
    manifest: Manifest = field(default_factory=Manifest)
    first: bool = False  # this push creates the app's first release
    done: Mapping[str, str] | None = None  # None: no setup at all (inactive)
    provided: tuple[str, ...] = ()  # the config vars this push's add-ons will set

    @property
    def active(self) -> bool:
        return self.done is not None

    def mark(self, step: str, detail: str = "") -> None:
        with self.store.transaction() as tx:
            setups.mark(tx, self.app, step, detail)

    def before_release(self, process_types: Mapping[str, str]) -> None:
        """The initial formation, written before v1 so it starts at that scale."""
        if self.done is None or not self.first or FORMATION in self.done:
            return
        if not self.manifest.formation:
            return
        plan = app_manifest.formation_plan(self.manifest, process_types)
        with self.store.transaction() as tx:
            known = {entry.type: entry.quantity for entry in tx.formation(self.app)}
            for item in plan:
                default = known.get(item.type, 1 if item.type == "web" else 0)
                tx.set_quantity(
                    self.app, item.type, default if item.quantity is None else item.quantity
                )
                if item.size is not None:
                    tx.set_size(self.app, item.type, item.size)
            setups.mark(tx, self.app, FORMATION)
        scale = ", ".join(scaled(item.type, item.quantity, item.size) for item in plan)
        self.out.write(f"-----> app.json: initial formation {scale}\n")
        self.logs.event(self.app.name, "api", f"Scaled to {scale} (app.json formation)")

    def after_rollout(self, release: Release, deadline: float) -> None:
        """scripts.postdeploy, once, now that the first release serves; then the setup
        is done and no later push reads app.json for it again."""
        if self.done is None or DONE in self.done:
            return
        script = self.manifest.postdeploy
        if script is not None and POSTDEPLOY not in self.done:
            status = self.postdeploy(release, script, deadline)
            self.mark(POSTDEPLOY, "did not finish" if status is None else str(status))
        self.mark(DONE, f"v{release.version}")

    def postdeploy(
        self, release: Release, script: app_manifest.Script, deadline: float
    ) -> int | None:
        one_offs = self.seams.one_offs
        assert one_offs is not None  # checked by begin, before anything changed
        self.out.write(f"-----> Running postdeploy for v{release.version}: {script.command}\n")
        self.out.flush()
        self.logs.event(self.app.name, "api", f"Running postdeploy: {script.command}")
        status = one_offs.run(self.app, script.command, script.size, self.out, deadline)
        ended = "did not finish" if status is None else f"exited with status {status}"
        self.logs.event(self.app.name, "api", f"postdeploy {ended}")
        if status == 0:
            self.out.write("-----> postdeploy: done (status 0)\n")
            return status
        self.out.write(
            f" !     postdeploy failed ({ended}): v{release.version} stays deployed and "
            f"postdeploy is not run again; its output is above and in `paas logs -a "
            f"{self.app.name}`; to run it again: `paas run -a {self.app.name} -- "
            f"{script.command}`\n"
        )
        return status


def scaled(kind: str, quantity: int | None, size: str | None) -> str:
    return f"{kind}={'' if quantity is None else quantity}{'' if size is None else ':' + size}"


def begin(
    store: Store,
    logs: LogStore,
    app: App,
    tree: Files,
    out: Output,
    seams: Seams,
) -> Setup:
    """The first deploy's steps before the build (env, addons), and what is left for the
    rest of the push. Reads nothing unless this push sets the app up."""
    with store.reading() as tx:
        done = setups.steps(tx, app)
        latest = tx.latest_release(app)
    first = latest is None or not latest.has_slug  # config changes before it have no code
    inactive = Setup(store, logs, app, out, seams)
    if DONE in done or (not first and STARTED not in done):
        return inactive
    text = tree.read(app_manifest.FILE, app_manifest.MAX_FILE_BYTES)
    manifest = Manifest() if text is None else app_manifest.parse(app_manifest.decode(text))
    provided = check_seams(manifest, seams, done, first)
    setup = Setup(store, logs, app, out, seams, manifest, first, done, provided)
    if first:
        set_env(setup)
        create_addons(setup)
    return setup


def check_seams(
    manifest: Manifest, seams: Seams, done: Mapping[str, str], first: bool
) -> tuple[str, ...]:
    """Refuses, before any change, a manifest this platform cannot carry out; the config
    vars its add-ons left to create will set."""
    listed = enumerate(manifest.addons)
    addons = [addon for i, addon in listed if first and addon_step(i) not in done]
    if addons and seams.addons is None:
        raise InvalidParams(
            f"{app_manifest.FILE}: addons: add-ons cannot be created on this platform: "
            "remove them from app.json"
        )
    if manifest.postdeploy and POSTDEPLOY not in done and seams.one_offs is None:
        raise InvalidParams(
            f"{app_manifest.FILE}: scripts.postdeploy: one-off dynos cannot run on this "
            "platform: remove it from app.json"
        )
    checked = seams.addons
    return () if checked is None else tuple(checked.check(addon) for addon in addons)


def set_env(setup: Setup) -> None:
    """Checks the env (a missing required key: nothing changed), then records that the
    setup started and sets the defaults. Only a step that does something is recorded: a
    first push with nothing in app.json leaves the next first push its own app.json."""
    assert setup.done is not None
    if setup.manifest.empty:
        return
    from paas.release import releases  # the push's later imports (hook.LATER)

    config = setup.store.config(setup.app)
    name = setup.app.name
    changes = app_manifest.env_plan(setup.manifest, config, secret, name, setup.provided)
    validation.config_size({**config, **changes})  # before the record: nothing half-done
    setup.mark(STARTED)
    if ENV in setup.done or not setup.manifest.env:
        return
    if changes:
        # Part of the first deploy: its release carries them, none of their own.
        releases.set_config(setup.store, setup.logs, setup.app, dict(changes), before_code=False)
        generated = {var.key for var in setup.manifest.env if var.secret and var.value is None}
        shown = ", ".join(k + (" (generated)" if k in generated else "") for k in changes)
        setup.out.write(f"-----> app.json: config vars {shown}\n")
    setup.mark(ENV)


def create_addons(setup: Setup) -> None:
    assert setup.done is not None
    for index, addon in enumerate(setup.manifest.addons):
        if addon_step(index) in setup.done or setup.seams.addons is None:
            continue
        attached = f" as {addon.as_name}" if addon.as_name else ""
        setup.out.write(f"-----> app.json: creating {addon.shown}{attached}...\n")
        setup.out.flush()
        if addon.options:
            setup.out.write(
                f" !     app.json: addons[{index}].options ({', '.join(addon.options)}) are "
                "not supported here and were ignored\n"
            )
        variable = setup.seams.addons.create(setup.app, addon)
        setup.out.write(f"       done, {variable}\n")
        setup.mark(addon_step(index), variable)


@dataclass(frozen=True)
class GitTree:
    """A pushed commit's files, read from git (still in its quarantine) before any build
    has extracted them: a file at the top of the tree, refused unless a regular file."""

    git_dir: Path
    git_env: Mapping[str, str]
    commit: str

    def git(self, *args: str) -> bytes:
        env = {**procs.host_env(), **self.git_env, "GIT_DIR": str(self.git_dir)}
        return procs.run(["git", *args], timeout=GIT_TIMEOUT, env=env)

    def read(self, name: str, limit: int) -> bytes | None:
        listed = self.git("ls-tree", "-l", "-z", self.commit, "--", name)
        if not listed:
            return None
        meta, _, _path = listed.rstrip(b"\0").partition(b"\t")
        mode, kind, blob, size = meta.split()
        if mode == SYMLINK_MODE:
            raise pushed_tree.refused(name, "a symbolic link")
        if kind != b"blob":
            raise pushed_tree.refused(name, "a directory" if kind == b"tree" else "a submodule")
        if int(size) > limit:
            raise pushed_tree.too_large(name, limit)
        return self.git("cat-file", "blob", blob.decode())


def platform_seams(settings: Settings, store: Store, logs: LogStore) -> Seams:
    """The platform's own add-ons (paas.addons.catalog) and one-off dynos
    (paas.state.one_offs), each loaded only when an app.json asks for it."""
    return Seams(PlatformAddons(settings), PlatformOneOffs(store, logs))


@dataclass
class PlatformAddons:
    """Addons over paas.addons.catalog: what `paas addons:create` does, per entry."""

    settings: Settings
    found: Catalog | None = None

    def catalog(self) -> Catalog:
        if self.found is None:
            from paas.addons import catalog  # only for an app.json with add-ons

            self.found = catalog.catalog(self.settings)
        return self.found

    def check(self, addon: Addon) -> str:
        from paas.domain import addons

        known = self.catalog()
        name, plan = addons.service_and_plan(addon.service, addon.plan, known.aliases())
        service = known.service(name)
        known.plan(service, plan)
        return addons.var_name(addon.as_name or service.default_attachment)

    def create(self, app: App, addon: Addon) -> str:
        _, attachment = self.catalog().create(app, addon.service, addon.plan, as_name=addon.as_name)
        return attachment.var


@dataclass(frozen=True)
class PlatformOneOffs:
    """OneOffs over paas.state.one_offs: a detached run.N request on the release just
    rolled out, its output followed in the app's log (where `paas logs` shows it too)."""

    store: Store
    logs: LogStore

    def run(
        self, app: App, command: str, size: str | None, out: Output, deadline: float
    ) -> int | None:
        from paas.state import one_offs

        latest = self.store.latest_release(app)
        _, cursor = self.logs.read(app.name, num=1)
        version = None if latest is None else latest.version
        request = one_offs.request(self.store, app, command, size=size, release=version)
        out.write(f"       in one-off dyno {request.name}\n")
        ended_at: float | None = None
        while True:
            found = one_offs.get(self.store, app, request.id)
            lines, cursor = self.logs.read(
                app.name, after=cursor, process=request.name, source="app"
            )
            out.write("".join(f"       {line.message}\n" for line in lines))
            out.flush()
            now = time.monotonic()
            if found.ended:
                # Its last lines may reach the log just after its status: read on briefly.
                ended_at = now if ended_at is None or lines else ended_at
                if now - ended_at >= DRAIN_SECONDS:
                    break
            elif now > deadline:
                out.write(
                    f" !     postdeploy was still running when the push's time ran out: it "
                    f"goes on as {request.name} (`paas ps -a {app.name}`, `paas logs`)\n"
                )
                return None
            time.sleep(POLL_SECONDS)  # a readiness poll: the agent runs the dyno
        if found.exit_status is None:
            out.write(f" !     {request.name} did not run: {found.detail}\n")
        return found.exit_status
