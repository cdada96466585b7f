"""Releases: the one place that creates vN, for deploys, config changes and rollbacks.

A release is artifact + config snapshot + process types. Each function runs in a single
store transaction (its statements are the store's, composed through paas.state.store.Tx),
so a release is either fully recorded or not at all; config changes and rollbacks reuse an
existing artifact and never rebuild.

Add-on attachments (paas.addons.catalog) set their NAME_URL vars through `addon_change` in
the same way; each release records which of its vars an add-on set, so a rollback keeps
the add-on vars of now (never an old release's) and `set_config` refuses to change them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from paas.domain import access, addons, formation, validation
from paas.domain.access import Principal
from paas.domain.errors import Conflict, InvalidParams, NotFound
from paas.domain.models import App, Release
from paas.domain.procfile import RELEASE_PHASE
from paas.state.logs import LogStore
from paas.state.store import Store, Tx, now_iso


@dataclass(frozen=True)
class Build:
    """What a release runs, whatever made it: a build, or an earlier release reused."""

    artifact: str
    process_types: dict[str, str]
    image: str | None = None
    healthcheck: str | None = None

    @staticmethod
    def of(release: Release) -> Build:
        return Build(release.artifact, release.process_types, release.image, release.healthcheck)


def _next_release(
    tx: Tx,
    app: App,
    build: Build,
    config: dict[str, str],
    description: str,
    by: Principal,
) -> Release:
    """vN+1 caused by `by`: pending while a release phase has to run first, otherwise
    deploying at once; one without code (a config change before the first deploy) has
    nothing to roll out and succeeds at once."""
    if not build.artifact:
        status = "succeeded"
    else:
        status = "pending" if RELEASE_PHASE in build.process_types else "deploying"
    release = Release(
        id=str(uuid.uuid4()),
        app_id=app.id,
        version=tx.next_version(app),
        description=description,
        artifact=build.artifact,
        config=config,
        process_types=build.process_types,
        created_at=now_iso(),
        image=build.image,
        status=status,
        status_at=time.time(),
        healthcheck=build.healthcheck,
        user_id=by.user_id,
        user_email=by.email,
    )
    tx.insert_release(release)
    tx.mark_addon_vars(release.id, [k for k in tx.addon_vars(app) if k in config])
    if release.status == "deploying":  # a pending one clears them when its phase passed
        tx.clear_slots(app)
    return release


def deploy(
    store: Store,
    logs: LogStore,
    app: App,
    build: Build,
    commit: str,
    by: Principal = access.OPERATOR,
) -> Release:
    """Releases a built artifact `by` pushed; new process types join the formation (web
    at 1)."""
    with store.transaction() as tx:
        known = {entry.type for entry in tx.formation(app)}
        for name in build.process_types:
            if name not in known and name != RELEASE_PHASE:
                tx.set_quantity(app, name, 1 if name == "web" else 0)
        release = _next_release(tx, app, build, tx.config(app), f"Deploy {commit[:8]}", by)
    logs.event(app.name, "api", f"Release v{release.version} created ({release.description})")
    return release


def _config_description(changes: dict[str, str | None]) -> str:
    set_keys = [k for k, v in changes.items() if v is not None]
    unset_keys = [k for k, v in changes.items() if v is None]
    parts = []
    if set_keys:
        parts.append(f"Set {', '.join(set_keys)} config vars")
    if unset_keys:
        parts.append(f"Unset {', '.join(unset_keys)} config vars")
    return "; ".join(parts)


# What a release made before the app's first deploy runs: nothing (no slug, no process).
NO_CODE = Build("", {})


def set_config(
    store: Store,
    logs: LogStore,
    app: App,
    changes: dict[str, str | None],
    by: Principal = access.OPERATOR,
    before_code: bool = True,
) -> tuple[dict[str, str], Release | None]:
    """Applies config changes all or nothing, as a new release `by` made. Like Heroku,
    every change makes one, before the first deploy too (a release without code then:
    `before_code=False` is the first deploy's own app.json env, part of that deploy)."""
    changes = validation.config_changes(changes)
    with store.transaction() as tx:
        _refuse_addon_vars(tx, app, changes)
        tx.write_config(app, changes)
        config = tx.config(app)
        validation.config_size(config)
        latest = tx.latest_release(app)
        if not before_code and (latest is None or not latest.has_slug):
            return config, None
        build = NO_CODE if latest is None else Build.of(latest)
        release = _next_release(tx, app, build, config, _config_description(changes), by)
    logs.event(app.name, "api", f"Release v{release.version} created ({release.description})")
    return config, release


def _refuse_addon_vars(tx: Tx, app: App, changes: dict[str, str | None]) -> None:
    managed = sorted(set(changes) & set(tx.addon_vars(app)))
    if managed:
        raise Conflict(
            f"{', '.join(managed)} of {app.name} is set by an add-on attachment and cannot be "
            "changed with config: `paas addons` shows it; detach it (paas addons:detach) first"
        )


def addon_change(
    tx: Tx,
    app: App,
    changes: dict[str, str | None],
    description: str,
    by: Principal = access.OPERATOR,
) -> Release | None:
    """Inside the caller's transaction (the add-on's own rows change in it too): sets or
    unsets an attachment's vars and makes the release for it, once the app has one."""
    tx.write_config(app, changes)
    config = tx.config(app)
    validation.config_size(config)
    latest = tx.latest_release(app)
    if latest is None:
        return None
    return _next_release(tx, app, Build.of(latest), config, description, by)


def rollback(
    store: Store,
    logs: LogStore,
    app: App,
    version: int | None,
    image_exists: Callable[[str], bool] = lambda _digest: True,
    slug_exists: Callable[[str], bool] = lambda _digest: True,
    by: Principal = access.OPERATOR,
) -> Release:
    """A new release copying vN's artifact and config (default: the newest release that
    succeeded before the current one), but with the add-on vars of now. It fails,
    changing nothing, when vN's slug or image was garbage-collected."""
    with store.transaction() as tx:
        current = tx.current_release(app)
        if current is None:
            raise NotFound(f"{app.name} has no running release yet: push code first")
        target_version = version if version is not None else _previous(tx, app, current)
        target = tx.find_release(app, target_version)
        if target is None:
            raise NotFound(
                f"release v{target_version} of {app.name} not found: `paas releases` lists them"
            )
        if not target.has_slug:
            raise InvalidParams(
                f"v{target_version} of {app.name} has no code (a config change before the "
                "first deploy): roll back to a release made by a deploy"
            )
        collected = not slug_exists(target.artifact)
        if collected or (target.image is not None and not image_exists(target.image)):
            raise NotFound(
                f"the slug or image of v{target_version} was garbage-collected: roll back to "
                "a newer release or deploy again"
            )
        config = addons.rollback_config(
            target.config, tx.release_addon_vars(target.id), tx.addon_vars(app)
        )
        release = _next_release(
            tx, app, Build.of(target), config, f"Rollback to v{target_version}", by
        )
        tx.replace_config(app, release.config)
    logs.event(app.name, "api", f"Release v{release.version} created ({release.description})")
    return release


def _previous(tx: Tx, app: App, current: Release) -> int:
    """The release to go back to: the current one when a newer release is still on its
    way (that is what "undo the deploy" means then), else the last one that succeeded."""
    if tx.has_unsettled_after(app, current.version):
        return current.version
    previous = tx.last_succeeded_before(app, current.version)
    if previous is None:
        raise NotFound(f"{app.name} has no earlier release that succeeded to roll back to")
    return previous


def scale(store: Store, logs: LogStore, app: App, updates: object) -> None:
    """Sets quantities and/or sizes for several process types at once, all or nothing.
    A new size restarts that type's dynos, as their limits are fixed at start."""
    changes = formation.changes(updates)
    with store.transaction() as tx:
        current = tx.latest_release(app)
        if current is None or not current.has_slug:
            raise InvalidParams(f"{app.name} has no code yet: push code before scaling")
        now = {f.type: f.quantity for f in tx.formation(app)}
        for name, change in changes.items():
            if name == RELEASE_PHASE:
                raise InvalidParams(
                    "the release process runs once per release, before rollout: it cannot be scaled"
                )
            if name not in current.process_types:
                raise InvalidParams(
                    f"no process type {name!r} in {app.name}'s Procfile "
                    f"(it has: {', '.join(sorted(current.process_types)) or 'none'})"
                )
            if change.quantity is not None:
                tx.set_quantity(app, name, change.quantity.applied_to(now.get(name, 0)))
            if change.size is not None:
                tx.set_size(app, name, change.size)
                tx.bump_restart(app, name)
            tx.clear_slots(app, name)
    summary = ", ".join(
        f"{name}@{'' if c.quantity is None else c.quantity.value}"
        f"{'' if c.size is None else ':' + c.size}"
        for name, c in changes.items()
    )
    logs.event(app.name, "api", f"Scaled to {summary}")
