"""Releases: the one place that creates vN, for deploys, config changes and rollbacks.

A release is artifact + config snapshot + process types. Each function runs in a single
store transaction, so a release is either fully recorded or not at all; config changes
and rollbacks reuse an existing artifact and never rebuild.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from paas.domain import sizes, validation
from paas.domain.errors import InvalidParams, NotFound
from paas.domain.models import App, Release
from paas.domain.procfile import RELEASE_PHASE
from paas.state.logs import LogStore
from paas.state.store import Store, now_iso, release_from_row


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
    db: sqlite3.Connection,
    app: App,
    build: Build,
    config: dict[str, str],
    description: str,
) -> Release:
    """vN+1, pending while a release phase has to run first, otherwise deploying at once."""
    row = db.execute("SELECT MAX(version) FROM releases WHERE app_id = ?", (app.id,)).fetchone()
    release = Release(
        id=str(uuid.uuid4()),
        app_id=app.id,
        version=int(row[0] or 0) + 1,
        description=description,
        artifact=build.artifact,
        config=config,
        process_types=build.process_types,
        created_at=now_iso(),
        image=build.image,
        status="pending" if RELEASE_PHASE in build.process_types else "deploying",
        status_at=time.time(),
        healthcheck=build.healthcheck,
    )
    Store.insert_release(db, release)
    if release.status == "deploying":  # a pending one clears them when its phase passed
        Store.clear_slots(db, app)
    return release


def deploy(store: Store, logs: LogStore, app: App, build: Build, commit: str) -> Release:
    """Releases a built artifact; new process types join the formation (web at 1)."""
    with store.transaction() as db:
        known = {entry.type for entry in store.formation(app, db)}
        for name in build.process_types:
            if name not in known and name != RELEASE_PHASE:
                Store.set_quantity(db, app, name, 1 if name == "web" else 0)
        release = _next_release(db, app, build, store.config(app, db), f"Deploy {commit[:8]}")
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


def set_config(
    store: Store, logs: LogStore, app: App, changes: dict[str, str | None]
) -> tuple[dict[str, str], Release | None]:
    """Applies config changes all or nothing; a release only once the app has one."""
    changes = validation.config_changes(changes)
    with store.transaction() as db:
        Store.write_config(db, app, changes)
        config = store.config(app, db)
        validation.config_size(config)
        latest = store.latest_release(app, db)
        release = None
        if latest is not None:
            release = _next_release(db, app, Build.of(latest), config, _config_description(changes))
    if release is not None:
        logs.event(app.name, "api", f"Release v{release.version} created ({release.description})")
    return config, release


def rollback(
    store: Store,
    logs: LogStore,
    app: App,
    version: int | None,
    image_exists: Callable[[str], bool] = lambda _digest: True,
    slug_exists: Callable[[str], bool] = lambda _digest: True,
) -> Release:
    """A new release copying vN's artifact and config (default: the newest release that
    succeeded before the current one). It fails, changing nothing, when vN's slug or image
    was garbage-collected."""
    with store.transaction() as db:
        current = store.current_release(app, db)
        if current is None:
            raise NotFound(f"{app.name} has no running release yet: push code first")
        target_version = version if version is not None else _previous(db, app, current)
        row = db.execute(
            "SELECT * FROM releases WHERE app_id = ? AND version = ?", (app.id, target_version)
        ).fetchone()
        if row is None:
            raise NotFound(
                f"release v{target_version} of {app.name} not found: `paas releases` lists them"
            )
        collected = not slug_exists(row["artifact"])
        if collected or (row["image"] is not None and not image_exists(row["image"])):
            raise NotFound(
                f"the slug or image of v{target_version} was garbage-collected: roll back to "
                "a newer release or deploy again"
            )
        target = release_from_row(row)
        release = _next_release(
            db, app, Build.of(target), target.config, f"Rollback to v{target_version}"
        )
        db.execute("DELETE FROM config_vars WHERE app_id = ?", (app.id,))
        Store.write_config(db, app, dict(release.config))
    logs.event(app.name, "api", f"Release v{release.version} created ({release.description})")
    return release


def _previous(db: sqlite3.Connection, app: App, current: Release) -> int:
    """The release to go back to: the current one when a newer release is still on its
    way (that is what "undo the deploy" means then), else the last one that succeeded."""
    newer = db.execute(
        "SELECT 1 FROM releases WHERE app_id = ? AND version > ? "
        "AND status IN ('pending', 'deploying')",
        (app.id, current.version),
    ).fetchone()
    if newer is not None:
        return current.version
    row = db.execute(
        "SELECT MAX(version) FROM releases WHERE app_id = ? AND version < ? "
        "AND status = 'succeeded'",
        (app.id, current.version),
    ).fetchone()
    if row[0] is None:
        raise NotFound(f"{app.name} has no earlier release that succeeded to roll back to")
    return int(row[0])


def scale(store: Store, logs: LogStore, app: App, updates: object) -> None:
    """Sets quantities and/or sizes for several process types at once, all or nothing.
    A new size restarts that type's dynos, as their limits are fixed at start."""
    if not isinstance(updates, list) or not updates:
        raise InvalidParams(
            'formation updates must be a list such as [{"type": "web", "quantity": 2}]'
        )
    changes: dict[str, tuple[int | None, str | None]] = {}
    for update in updates:
        if not isinstance(update, dict) or not ({"quantity", "size"} & set(update)):
            raise InvalidParams("each formation update needs a type and a quantity or size")
        quantity = update.get("quantity")
        size = update.get("size")
        if size is not None:
            sizes.memory_mb(str(size))
        changes[validation.process_type(update.get("type"))] = (
            None if quantity is None else validation.quantity(quantity),
            None if size is None else str(size),
        )
    with store.transaction() as db:
        current = store.latest_release(app, db)
        if current is None:
            raise InvalidParams(f"{app.name} has no release yet: push code before scaling")
        for name, (quantity, size) in changes.items():
            if name == RELEASE_PHASE:
                raise InvalidParams(
                    "the release process runs once per release, before rollout: it cannot be scaled"
                )
            if name not in current.process_types:
                raise InvalidParams(
                    f"no process type {name!r} in {app.name}'s Procfile "
                    f"(it has: {', '.join(sorted(current.process_types)) or 'none'})"
                )
            if quantity is not None:
                Store.set_quantity(db, app, name, quantity)
            if size is not None:
                Store.set_size(db, app, name, size)
                Store.bump_restart(db, app, name)
            Store.clear_slots(db, app, name)
    summary = ", ".join(
        f"{name}@{'' if q is None else q}{'' if s is None else ':' + s}"
        for name, (q, s) in changes.items()
    )
    logs.event(app.name, "api", f"Scaled to {summary}")
