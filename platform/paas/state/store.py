"""The platform's state in SQLite (WAL): apps, config, releases, formation, builds, tokens.

Invariants: every change happens inside one transaction (`BEGIN IMMEDIATE`), so a failed
call changes nothing; every read is one read transaction, so what it returns is one
consistent snapshot; all the platform's SQL is here (a caller composes several statements
into one change through `Tx`, never through a connection); rows leave as frozen values;
only hashes of API tokens are stored; every app name and domain is checked by
paas.domain.validation before it is written, and no hostname (an app's own APP.DOMAIN or
a custom domain) can belong to two apps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from paas.domain import access, validation
from paas.domain.access import Permission, Principal
from paas.domain.addons import Addon, Attachment
from paas.domain.errors import Conflict, NotFound
from paas.domain.models import (
    RELEASE_STATUSES,
    RUNNABLE_STATUSES,
    UNSETTLED,
    App,
    AppState,
    Build,
    DesiredState,
    DynoSlot,
    FormationEntry,
    Release,
    slug_id,
)
from paas.state import database, ratelimit, users

SCHEMA = """
CREATE TABLE IF NOT EXISTS apps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    stack TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS config_vars (
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (app_id, key)
);
CREATE TABLE IF NOT EXISTS releases (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    description TEXT NOT NULL,
    artifact TEXT NOT NULL,
    image TEXT,
    config TEXT NOT NULL,
    process_types TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'succeeded',
    status_detail TEXT,
    status_at REAL,
    healthcheck TEXT,
    UNIQUE (app_id, version)
);
CREATE TABLE IF NOT EXISTS formation (
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    size TEXT NOT NULL DEFAULT 'standard-1x',
    PRIMARY KEY (app_id, type)
);
CREATE TABLE IF NOT EXISTS builds (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    source_version TEXT NOT NULL,
    artifact TEXT,
    output TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE IF NOT EXISTS domains (
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    hostname TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS restarts (
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    target TEXT NOT NULL,
    generation INTEGER NOT NULL,
    PRIMARY KEY (app_id, target)
);
CREATE TABLE IF NOT EXISTS dyno_slots (
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    crash_count INTEGER NOT NULL DEFAULT 0,
    last_exit_status INTEGER,
    next_retry_at REAL,
    PRIMARY KEY (app_id, name)
);
-- No foreign key: an app's uid is never given to another app, even once it is destroyed.
CREATE TABLE IF NOT EXISTS app_uids (
    app_id TEXT PRIMARY KEY,
    uid INTEGER NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
-- The app's buildpacks (`paas buildpacks:*`), in build order; none: the other sources.
CREATE TABLE IF NOT EXISTS buildpacks (
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    url TEXT NOT NULL,
    PRIMARY KEY (app_id, ordinal)
);
CREATE TABLE IF NOT EXISTS auth_failures (
    address TEXT PRIMARY KEY,
    window_start REAL NOT NULL,
    count INTEGER NOT NULL,
    blocked_until REAL NOT NULL
);
-- Add-on resources (paas.addons.catalog) and their attachments. An add-on's owner cannot be
-- deleted under it (no cascade): destroying an app destroys its add-ons first.
CREATE TABLE IF NOT EXISTS addons (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    service TEXT NOT NULL,
    plan TEXT NOT NULL,
    app_id TEXT NOT NULL REFERENCES apps(id),
    state TEXT NOT NULL,
    url TEXT NOT NULL,
    address TEXT NOT NULL,
    port INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS addon_attachments (
    id TEXT PRIMARY KEY,
    addon_id TEXT NOT NULL REFERENCES addons(id) ON DELETE CASCADE,
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (app_id, name)
);
-- Which config vars of a release its add-ons set: a rollback to it leaves those out.
CREATE TABLE IF NOT EXISTS release_addon_vars (
    release_id TEXT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    PRIMARY KEY (release_id, key)
);
-- What of an app's app.json setup (its first deploy) is done, one row a step (paas.state.setups).
CREATE TABLE IF NOT EXISTS app_setup_steps (
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    step TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    done_at TEXT NOT NULL,
    PRIMARY KEY (app_id, step)
);
-- One-off dynos (paas.state.one_offs): `paas run`, run:detached, postdeploy. A row is a
-- request the agent starts (state requested -> started -> exited, or failed), numbered
-- per app: run.NUMBER.
CREATE TABLE IF NOT EXISTS one_off_dynos (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    command TEXT NOT NULL,
    type TEXT NOT NULL,
    size TEXT,
    env TEXT NOT NULL,
    attach INTEGER NOT NULL,
    tty INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    cols INTEGER NOT NULL,
    release INTEGER,
    state TEXT NOT NULL,
    dyno_id TEXT,
    exit_status INTEGER,
    detail TEXT,
    created_at REAL NOT NULL,
    UNIQUE (app_id, number)
);
CREATE INDEX IF NOT EXISTS one_off_dynos_state ON one_off_dynos (state);
CREATE TABLE IF NOT EXISTS log_sessions (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL UNIQUE,
    dyno TEXT,
    source TEXT,
    lines INTEGER NOT NULL,
    tail INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS formation_stamps (
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (app_id, type)
);
"""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _app(row: sqlite3.Row) -> App:
    return App(row["id"], row["name"], row["stack"], row["created_at"])


def release_from_row(row: sqlite3.Row) -> Release:
    return Release(
        id=row["id"],
        app_id=row["app_id"],
        version=row["version"],
        description=row["description"],
        artifact=row["artifact"],
        config=json.loads(row["config"]),
        process_types=json.loads(row["process_types"]),
        created_at=row["created_at"],
        image=row["image"],
        status=row["status"],
        status_detail=row["status_detail"],
        status_at=row["status_at"],
        healthcheck=row["healthcheck"],
        user_id=row["user_id"],
        user_email=row["user_email"],
    )


def _refuse_taken_name(db: Tx, name: str, own_hostname: str) -> None:
    """Conflict when an app has the name, or its hostname is another app's custom domain."""
    if db.execute("SELECT 1 FROM apps WHERE name = ?", (name,)).fetchone():
        raise Conflict(f"app {name!r} already exists: choose another name")
    if db.execute("SELECT 1 FROM domains WHERE hostname = ?", (own_hostname,)).fetchone():
        raise Conflict(
            f"app {name!r} would answer at {own_hostname}, a custom domain of another "
            "app: choose another name"
        )


def _listed_owner(row: sqlite3.Row) -> Principal:
    """The owner a listing row joined: a user, or the operator (no owner_id)."""
    if row["owner_email"] is None:
        return access.OPERATOR
    return Principal(row["owner_id"], row["owner_email"])


def _build(row: sqlite3.Row) -> Build:
    return Build(*(row[k] for k in Build.__dataclass_fields__))


def _slot(row: sqlite3.Row) -> DynoSlot:
    return DynoSlot(row["name"], row["crash_count"], row["last_exit_status"], row["next_retry_at"])


def _marks(values: tuple[str, ...]) -> str:
    """The placeholders of an `IN (...)` of these values."""
    return ", ".join("?" * len(values))


# Each app's current release: the newest deploying or succeeded one that has code (a
# config change before the first deploy makes a release without a slug, which never runs).
_CURRENT_RELEASES = (
    "SELECT {columns} FROM releases JOIN ("
    "  SELECT app_id, MAX(version) AS version FROM releases"
    f"  WHERE status IN ({_marks(RUNNABLE_STATUSES)}) AND artifact != '' GROUP BY app_id"
    ") AS newest USING (app_id, version)"
)


@dataclass(frozen=True)
class ListedApp:
    """An app and what a listing shows of its current release (None: no release yet)."""

    app: App
    release_version: int | None
    released_at: str | None
    owner: Principal | None = None  # None: not read with the listing (ask owner_of)


@dataclass(frozen=True)
class CustomDomain:
    """A hostname an app added (`domains:add`), with the id and date Heroku shows."""

    id: str
    hostname: str
    created_at: str


def _grouped(rows: Iterable[sqlite3.Row]) -> dict[str, list[sqlite3.Row]]:
    """Rows by their app_id, in the order they came."""
    groups: dict[str, list[sqlite3.Row]] = {}
    for row in rows:
        groups.setdefault(row["app_id"], []).append(row)
    return groups


def _addon(row: sqlite3.Row) -> Addon:
    return Addon(*(row[k] for k in Addon.__dataclass_fields__))


def _attachment(row: sqlite3.Row) -> Attachment:
    return Attachment(*(row[k] for k in Attachment.__dataclass_fields__))


class AddonTx:
    """The add-on statements (paas.addons.catalog composes them with a release's)."""

    db: sqlite3.Connection

    def execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, parameters)

    def insert_addon(self, addon: Addon) -> None:
        fields = tuple(Addon.__dataclass_fields__)
        self.execute(
            f"INSERT INTO addons ({', '.join(fields)}) VALUES ({_marks(fields)})",
            tuple(getattr(addon, f) for f in fields),
        )

    def find_addon(self, id_or_name: str) -> Addon | None:
        row = self.execute(
            "SELECT * FROM addons WHERE id = ? OR name = ?", (id_or_name, id_or_name)
        ).fetchone()
        return None if row is None else _addon(row)

    def addons(self, app: App | None = None) -> list[Addon]:
        """Every add-on (by name), or those `app` owns."""
        if app is None:
            return [_addon(r) for r in self.execute("SELECT * FROM addons ORDER BY name")]
        rows = self.execute("SELECT * FROM addons WHERE app_id = ? ORDER BY name", (app.id,))
        return [_addon(r) for r in rows]

    def set_addon_state(self, addon: Addon, state: str) -> None:
        self.execute("UPDATE addons SET state = ? WHERE id = ?", (state, addon.id))

    def delete_addon(self, addon: Addon) -> None:
        self.execute("DELETE FROM addons WHERE id = ?", (addon.id,))

    def insert_attachment(self, attachment: Attachment) -> None:
        fields = tuple(Attachment.__dataclass_fields__)
        self.execute(
            f"INSERT INTO addon_attachments ({', '.join(fields)}) VALUES ({_marks(fields)})",
            tuple(getattr(attachment, f) for f in fields),
        )

    def delete_attachment(self, attachment: Attachment) -> None:
        self.execute("DELETE FROM addon_attachments WHERE id = ?", (attachment.id,))

    def attachments(
        self, *, app: App | None = None, addon: Addon | None = None
    ) -> list[Attachment]:
        """The attachments of an app, of an add-on, or all, oldest first."""
        rows = self.execute(
            "SELECT * FROM addon_attachments WHERE (? IS NULL OR app_id = ?) "
            "AND (? IS NULL OR addon_id = ?) ORDER BY created_at, name",
            (app and app.id, app and app.id, addon and addon.id, addon and addon.id),
        )
        return [_attachment(r) for r in rows]

    def find_attachment(self, id_or_name: str, app: App | None = None) -> Attachment | None:
        """By id, or by name within `app`."""
        row = self.execute(
            "SELECT * FROM addon_attachments WHERE id = ? OR (app_id = ? AND name = ?)",
            (id_or_name, app and app.id, id_or_name),
        ).fetchone()
        return None if row is None else _attachment(row)

    def addon_urls(self) -> dict[str, str]:
        return {r["id"]: r["url"] for r in self.execute("SELECT id, url FROM addons")}

    def addon_vars(self, app: App) -> dict[str, str]:
        """The config vars the app's attachments set: NAME_URL -> URL."""
        rows = self.execute(
            "SELECT addon_attachments.name, addons.url FROM addon_attachments JOIN addons "
            "ON addons.id = addon_attachments.addon_id WHERE addon_attachments.app_id = ?",
            (app.id,),
        )
        return {f"{r[0]}_URL": r[1] for r in rows}

    def mark_addon_vars(self, release_id: str, keys: Iterable[str]) -> None:
        for key in keys:
            self.execute(
                "INSERT INTO release_addon_vars (release_id, key) VALUES (?, ?)", (release_id, key)
            )

    def release_addon_vars(self, release_id: str) -> set[str]:
        rows = self.execute(
            "SELECT key FROM release_addon_vars WHERE release_id = ?", (release_id,)
        )
        return {r["key"] for r in rows}

    def app_names(self) -> dict[str, str]:
        """Every app's name by its id (what add-on listings show)."""
        return {r["id"]: r["name"] for r in self.execute("SELECT id, name FROM apps")}

    def app_by_id_or_name(self, id_or_name: str) -> App | None:
        row = self.execute(
            "SELECT * FROM apps WHERE id = ? OR name = ?", (id_or_name, id_or_name)
        ).fetchone()
        return None if row is None else _app(row)

    def addon_endpoints(self, app: App) -> list[tuple[str, str, int]]:
        """(add-on id, address, port) of every add-on attached to the app."""
        rows = self.execute(
            "SELECT DISTINCT addons.id, addons.address, addons.port FROM addons "
            "JOIN addon_attachments ON addon_attachments.addon_id = addons.id "
            "WHERE addon_attachments.app_id = ? AND addons.state = 'provisioned'",
            (app.id,),
        )
        return [(r[0], r[1], int(r[2])) for r in rows]


class Tx(AddonTx):
    """The store's statements inside one open transaction: what a caller composes into one
    atomic change (`with store.transaction() as tx`) or reads as one snapshot."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, parameters)

    # --- config -------------------------------------------------------------------------
    def config(self, app: App) -> dict[str, str]:
        rows = self.execute(
            "SELECT key, value FROM config_vars WHERE app_id = ? ORDER BY key", (app.id,)
        )
        return {r["key"]: r["value"] for r in rows}

    def write_config(self, app: App, changes: dict[str, str | None]) -> None:
        for key, value in changes.items():
            if value is None:
                self.execute("DELETE FROM config_vars WHERE app_id = ? AND key = ?", (app.id, key))
            else:
                self.execute(
                    "INSERT INTO config_vars (app_id, key, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (app_id, key) DO UPDATE SET value = excluded.value",
                    (app.id, key, value),
                )

    def replace_config(self, app: App, config: dict[str, str]) -> None:
        """The app's config is exactly `config` (a rollback restores vN's)."""
        self.execute("DELETE FROM config_vars WHERE app_id = ?", (app.id,))
        self.write_config(app, dict(config))

    # --- releases -----------------------------------------------------------------------
    def current_release(self, app: App) -> Release | None:
        """The release dynos run: the newest one deploying or succeeded that has code."""
        return self._newest(app, RUNNABLE_STATUSES, with_slug=True)

    def shown_current_release(self, app: App) -> Release | None:
        """The release Heroku's API calls current: as `current_release`, or before the
        first deploy the newest config change's (which has no code to run)."""
        return self._newest(app, RUNNABLE_STATUSES)

    def latest_release(self, app: App) -> Release | None:
        """The newest release that has not failed: what a config change or scale builds on."""
        return self._newest(app, ("pending", "deploying", "succeeded"))

    def _newest(
        self, app: App, statuses: tuple[str, ...], with_slug: bool = False
    ) -> Release | None:
        slug = "AND artifact != ''" if with_slug else ""
        row = self.execute(
            f"SELECT * FROM releases WHERE app_id = ? AND status IN ({_marks(statuses)}) "
            f"{slug} ORDER BY version DESC LIMIT 1",
            (app.id, *statuses),
        ).fetchone()
        return None if row is None else release_from_row(row)

    def find_release_by_id(self, app: App, release_id: str) -> Release | None:
        row = self.execute(
            "SELECT * FROM releases WHERE app_id = ? AND id = ?", (app.id, release_id)
        ).fetchone()
        return None if row is None else release_from_row(row)

    def find_release(self, app: App, version: int) -> Release | None:
        row = self.execute(
            "SELECT * FROM releases WHERE app_id = ? AND version = ?", (app.id, version)
        ).fetchone()
        return None if row is None else release_from_row(row)

    def releases(self, app: App) -> list[Release]:
        rows = self.execute("SELECT * FROM releases WHERE app_id = ? ORDER BY version", (app.id,))
        return [release_from_row(r) for r in rows]

    def addon_plans_by_release(self, app: App) -> dict[str, list[str]]:
        """`SERVICE:PLAN` of the add-ons still attached whose vars each release had (by
        release id; what Heroku's `addon_plan_names` lists): one query for the app."""
        rows = self.execute(
            "SELECT DISTINCT releases.id, addons.service || ':' || addons.plan FROM releases "
            "JOIN release_addon_vars ON release_addon_vars.release_id = releases.id "
            "JOIN addon_attachments ON addon_attachments.app_id = releases.app_id "
            "AND addon_attachments.name || '_URL' = release_addon_vars.key "
            "JOIN addons ON addons.id = addon_attachments.addon_id "
            "WHERE releases.app_id = ? ORDER BY 2",
            (app.id,),
        )
        plans: dict[str, list[str]] = {}
        for release_id, plan in rows:
            plans.setdefault(release_id, []).append(plan)
        return plans

    def next_version(self, app: App) -> int:
        row = self.execute(
            "SELECT MAX(version) FROM releases WHERE app_id = ?", (app.id,)
        ).fetchone()
        return int(row[0] or 0) + 1

    def has_unsettled_after(self, app: App, version: int) -> bool:
        """Whether a release newer than vN is still pending or deploying."""
        row = self.execute(
            "SELECT 1 FROM releases WHERE app_id = ? AND version > ? "
            "AND status IN ('pending', 'deploying')",
            (app.id, version),
        ).fetchone()
        return row is not None

    def last_succeeded_before(self, app: App, version: int) -> int | None:
        row = self.execute(
            "SELECT MAX(version) FROM releases WHERE app_id = ? AND version < ? "
            "AND status = 'succeeded' AND artifact != ''",
            (app.id, version),
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def insert_release(self, release: Release) -> None:
        self.execute(
            "INSERT INTO releases (id, app_id, version, description, artifact, config, "
            "process_types, created_at, image, status, status_detail, status_at, healthcheck, "
            "user_id, user_email) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                release.id,
                release.app_id,
                release.version,
                release.description,
                release.artifact,
                json.dumps(release.config, sort_keys=True),
                json.dumps(release.process_types),
                release.created_at,
                release.image,
                release.status,
                release.status_detail,
                release.status_at,
                release.healthcheck,
                release.user_id,
                release.user_email,
            ),
        )

    # --- formation ----------------------------------------------------------------------
    def formation(self, app: App) -> list[FormationEntry]:
        rows = self.execute(
            "SELECT type, quantity, size FROM formation WHERE app_id = ? ORDER BY type", (app.id,)
        )
        return [FormationEntry(r["type"], r["quantity"], r["size"]) for r in rows]

    def set_quantity(self, app: App, process_type: str, quantity: int) -> None:
        self.execute(
            "INSERT INTO formation (app_id, type, quantity) VALUES (?, ?, ?) "
            "ON CONFLICT (app_id, type) DO UPDATE SET quantity = excluded.quantity",
            (app.id, process_type, quantity),
        )
        self._stamp_formation(app, process_type)

    def set_size(self, app: App, process_type: str, size: str) -> None:
        self.execute(
            "INSERT INTO formation (app_id, type, quantity, size) VALUES (?, ?, 0, ?) "
            "ON CONFLICT (app_id, type) DO UPDATE SET size = excluded.size",
            (app.id, process_type, size),
        )
        self._stamp_formation(app, process_type)

    def _stamp_formation(self, app: App, process_type: str) -> None:
        """When a type joined the formation and when it last changed (Heroku shows both)."""
        now = now_iso()
        self.execute(
            "INSERT INTO formation_stamps (app_id, type, created_at, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (app_id, type) DO UPDATE SET updated_at = ?",
            (app.id, process_type, now, now, now),
        )

    def formation_stamps(self, app: App) -> dict[str, tuple[str, str]]:
        """type -> (created_at, updated_at); types set before stamps were kept are absent."""
        rows = self.execute(
            "SELECT type, created_at, updated_at FROM formation_stamps WHERE app_id = ?",
            (app.id,),
        )
        return {r["type"]: (r["created_at"], r["updated_at"]) for r in rows}

    # --- restarts and crash bookkeeping -----------------------------------------------
    def bump_restart(self, app: App, target: str) -> None:
        """Bumps the restart generation of '' (all), a type or a dyno name above every
        generation of the app: a dyno runs under the highest of its app's, type's and own,
        so a bump of only its own counter would miss the dynos restarted one by one before."""
        self.execute(
            "INSERT INTO restarts (app_id, target, generation) VALUES (?, ?, "
            "(SELECT COALESCE(MAX(generation), 0) + 1 FROM restarts WHERE app_id = ?)) "
            "ON CONFLICT (app_id, target) DO UPDATE SET generation = excluded.generation",
            (app.id, target, app.id),
        )

    def clear_slots(self, app: App, target: str = "") -> None:
        """Resets crash backoff (new release, restart, scale): '' clears every slot."""
        self.execute(
            "DELETE FROM dyno_slots WHERE app_id = ? AND (? = '' OR name = ? OR name LIKE ?)",
            (app.id, target, target, f"{target}.%"),
        )

    def current_releases(self) -> dict[str, Release]:
        """Every app's current release (as `current_release`: the newest deploying or
        succeeded) by app id, in one query whatever the number of apps."""
        rows = self.execute(_CURRENT_RELEASES.format(columns="releases.*"), RUNNABLE_STATUSES)
        return {row["app_id"]: release_from_row(row) for row in rows}

    def app_listing(self, caller: Principal = access.OPERATOR) -> list[ListedApp]:
        """Every app the caller may see (paas.state.users), by name, with its current
        release's version and date (`GET /apps`): one query, the filter in it, and no
        release's config or process types decoded."""
        columns = "releases.app_id, releases.version, releases.created_at"
        visible, params = users.visible_apps_clause(caller)
        rows = self.execute(
            "SELECT apps.*, current.version AS release_version, current.created_at AS released_at,"
            " owners.email AS owner_email"
            f" FROM apps LEFT JOIN ({_CURRENT_RELEASES.format(columns=columns)}) AS current"
            " ON current.app_id = apps.id LEFT JOIN users AS owners ON owners.id = apps.owner_id"
            f" WHERE {visible} ORDER BY apps.name",
            (*RUNNABLE_STATUSES, *params),
        )
        return [
            ListedApp(_app(r), r["release_version"], r["released_at"], _listed_owner(r))
            for r in rows
        ]

    # --- the agent's snapshot -----------------------------------------------------------
    def desired_state(self) -> DesiredState:
        """Every app with its current and unsettled releases, formation, restart
        generations, crash slots and custom domains: one query per table, whatever the
        number of apps."""
        apps = [_app(r) for r in self.execute("SELECT * FROM apps ORDER BY name")]
        current = self.current_releases()
        unsettled = _grouped(
            self.execute(
                f"SELECT * FROM releases WHERE status IN ({_marks(UNSETTLED)}) "
                "ORDER BY app_id, version",
                UNSETTLED,
            )
        )
        formation = _grouped(
            self.execute("SELECT app_id, type, quantity, size FROM formation ORDER BY app_id, type")
        )
        restarts = _grouped(self.execute("SELECT app_id, target, generation FROM restarts"))
        slots = _grouped(self.execute("SELECT * FROM dyno_slots"))
        domains = _grouped(self.execute("SELECT app_id, hostname FROM domains ORDER BY hostname"))
        return DesiredState(
            tuple(
                AppState(
                    app=app,
                    current=current.get(app.id),
                    unsettled=tuple(release_from_row(r) for r in unsettled.get(app.id, [])),
                    formation=tuple(
                        FormationEntry(r["type"], r["quantity"], r["size"])
                        for r in formation.get(app.id, [])
                    ),
                    generations={r["target"]: r["generation"] for r in restarts.get(app.id, [])},
                    slots={r["name"]: _slot(r) for r in slots.get(app.id, [])},
                    domains=tuple(r["hostname"] for r in domains.get(app.id, [])),
                )
                for app in apps
            )
        )


def _add_columns(db: Tx, table: str, added: dict[str, str]) -> None:
    """A migration step: the columns of `table` a database made before them lacks."""
    columns = {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}
    for name, kind in added.items():
        if name not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


class Store:
    """A handle on the state database; cheap to create, one connection per call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._watcher: sqlite3.Connection | None = None  # see data_version
        self._watch_lock = threading.Lock()
        self._calls: sqlite3.Connection | None = None  # see take_call
        self._calls_lock = threading.Lock()
        database.create(path, SCHEMA)
        self._migrate()
        self._migrate_domain_ids()
        self._migrate_build_streams()

    def data_version(self) -> int:
        """A number that changes whenever a connection other than the one kept for it
        commits (SQLite's `PRAGMA data_version`; every store call opens its own, so every
        commit counts, this process's too): the same number, the same database."""
        if self._watcher is None:
            # Not bound to the thread that opened it: the agent's thread may not be the
            # one that built the store; one PRAGMA at a time (the lock) is all it does.
            self._watcher = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
        with self._watch_lock:
            row = self._watcher.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def _migrate(self) -> None:
        """Columns added after a database was created (schema version by column)."""
        with self.transaction() as db:
            columns = {r["name"] for r in db.execute("PRAGMA table_info(releases)")}
            added = {
                "image": "TEXT",
                "status": "TEXT NOT NULL DEFAULT 'succeeded'",
                "status_detail": "TEXT",
                "status_at": "REAL",
                "healthcheck": "TEXT",
            }
            for name, kind in added.items():
                if name not in columns:
                    db.execute(f"ALTER TABLE releases ADD COLUMN {name} {kind}")
            users.migrate(db)  # users, ownership, collaborators, audit, call buckets
            _add_columns(db, "releases", {"user_id": "TEXT", "user_email": "TEXT"})
            _add_columns(
                db,
                "builds",
                {
                    "user_id": "TEXT",
                    "user_email": "TEXT",
                    "release_id": "TEXT",
                    "stack": "TEXT",
                    "buildpacks": "TEXT",
                    "stream_secret": "TEXT",
                },
            )
            # log sessions: who made one, and whether its tail streams now
            _add_columns(
                db, "log_sessions", {"user_id": "TEXT", "streaming": "INTEGER NOT NULL DEFAULT 0"}
            )

    def _migrate_domain_ids(self) -> None:
        """Domains got an id and a date (Heroku's domain shape): a database from before
        gets the columns, and each domain it holds an id (dated when it was migrated)."""
        with self.transaction() as db:
            columns = {r["name"] for r in db.execute("PRAGMA table_info(domains)")}
            for name in ("id", "created_at"):
                if name not in columns:
                    db.execute(f"ALTER TABLE domains ADD COLUMN {name} TEXT")
            for row in db.execute("SELECT rowid FROM domains WHERE id IS NULL").fetchall():
                db.execute(
                    "UPDATE domains SET id = ?, created_at = ? WHERE rowid = ?",
                    (str(uuid.uuid4()), now_iso(), row["rowid"]),
                )

    def _migrate_build_streams(self) -> None:
        """A build's output stream URL carried the plaintext secret kept in
        builds.stream_secret, good forever for anyone: those secrets go (a URL handed out
        before stops working), and short-lived grants of hashed secrets, one per caller
        who asked, replace them (paas.state.build_streams)."""
        with self.transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS build_stream_grants (secret_hash TEXT PRIMARY KEY,"
                " build_id TEXT NOT NULL, user_id TEXT, expires_at REAL NOT NULL)"
            )
            db.execute("UPDATE builds SET stream_secret = NULL WHERE stream_secret IS NOT NULL")

    def _connect(self) -> sqlite3.Connection:
        db = database.connect(self.path, autocommit=True)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        return db

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One atomic change: commits on success, rolls back on any exception."""
        with self._open("BEGIN IMMEDIATE") as tx:
            yield tx

    @contextmanager
    def reading(self) -> Iterator[Tx]:
        """One consistent read: every statement sees the same snapshot (WAL readers never
        wait for the writer, nor it for them)."""
        with self._open("BEGIN") as tx:
            yield tx

    @contextmanager
    def _open(self, begin: str) -> Iterator[Tx]:
        db = self._connect()
        try:
            db.execute(begin)
            yield Tx(db)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def desired_state(self) -> DesiredState:
        """What the agent reconciles towards, for every app, in one read transaction."""
        with self.reading() as tx:
            return tx.desired_state()

    # --- tokens -------------------------------------------------------------------------
    def add_token(self, token: str, name: str) -> None:
        """One more operator's token beside the others (a second named client)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO tokens (hash, name, created_at, id) VALUES (?, ?, ?, ?)",
                (token_hash(token), name, now_iso(), str(uuid.uuid4())),
            )

    def replace_token(self, token: str, name: str) -> bool:
        """The one token called `name` is now `token`: any older one of that name stops
        working (rotation revokes). Returns whether an older one was revoked."""
        digest = token_hash(token)
        with self.transaction() as db:
            rows = db.execute(
                "SELECT hash FROM tokens WHERE name = ? AND user_id IS NULL", (name,)
            ).fetchall()
            older = [r["hash"] for r in rows if r["hash"] != digest]
            if not older and rows:
                return False
            db.execute(
                "DELETE FROM tokens WHERE (name = ? AND user_id IS NULL) OR hash = ?",
                (name, digest),
            )
            db.execute(
                "INSERT INTO tokens (hash, name, created_at, id) VALUES (?, ?, ?, ?)",
                (digest, name, now_iso(), str(uuid.uuid4())),
            )
        return bool(older)

    def token_owner(self, token: str) -> str | None:
        """The name of the token, or None. The lookup by hash is safe from timing attacks:
        its timing depends only on sha256(presented), which a guesser cannot steer towards
        a stored hash (that needs a preimage), so it reveals nothing of a stored token."""
        presented = token_hash(token)
        with self.reading() as db:
            row = db.execute(
                "SELECT hash, name FROM tokens WHERE hash = ?", (presented,)
            ).fetchone()
        if row is None or not hmac.compare_digest(str(row["hash"]), presented):
            return None
        return str(row["name"])

    def token_principal(self, token: str, now: float | None = None) -> Principal | None:
        """Who the token belongs to, or None: unknown, revoked (deleted) or expired. Read
        from the database on every call, so a revocation or an expiry holds at once. The
        lookup is by hash, safe from timing attacks as `token_owner` says."""
        with self.reading() as tx:
            return users.principal_for(tx, token_hash(token), time.time() if now is None else now)

    def owner_of(self, app: App) -> Principal:
        """Who owns the app: a user, or the operator."""
        with self.reading() as tx:
            return users.owner(tx, app.id)

    def permission(self, app: App, caller: Principal) -> Permission | None:
        """The permission the caller holds on the app (admin and owner: manage; a
        collaborator: theirs); None: the app is not theirs to see."""
        if caller.admin:
            return Permission.MANAGE
        with self.reading() as tx:
            return users.permission(tx, app.id, caller)

    def has_tokens(self) -> bool:
        with self.reading() as db:
            return db.execute("SELECT 1 FROM tokens LIMIT 1").fetchone() is not None

    def count_auth_failure(self, address: str, now: float, policy: ratelimit.Policy) -> float:
        """Counts one failed authentication from `address` (shared by every API worker);
        returns how many seconds that address is refused for, 0 when it is not."""
        with self.transaction() as db:
            db.execute(
                "DELETE FROM auth_failures WHERE window_start < ? AND blocked_until < ?",
                (now - policy.window_seconds, now),
            )
            row = db.execute(
                "SELECT window_start, count, blocked_until FROM auth_failures WHERE address = ?",
                (address,),
            ).fetchone()
            before = None if row is None else ratelimit.Failures(*tuple(row))
            after = ratelimit.after_failure(before, now, policy)
            db.execute(
                "INSERT INTO auth_failures (address, window_start, count, blocked_until) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (address) DO UPDATE SET "
                "window_start = excluded.window_start, count = excluded.count, "
                "blocked_until = excluded.blocked_until",
                (address, after.window_start, after.count, after.blocked_until),
            )
        return after.refused_for(now)

    def take_call(self, caller: str, now: float, policy: ratelimit.CallPolicy) -> ratelimit.Take:
        """Takes one API call from the caller's bucket, shared by every API worker. On a
        connection this store keeps for it (opening one per call, then closing the last
        one, checkpoints the log and waits for the disk: ~15 ms), whose commits do not wait
        for the disk (synchronous=NORMAL): a crash may forget the last calls counted,
        never corrupt the database."""
        with self._calls_lock:
            if self._calls is None:
                # Any thread may count a call (gthread workers); the lock keeps it to one
                # at a time.
                self._calls = sqlite3.connect(
                    self.path,
                    timeout=database.BUSY_TIMEOUT_SECONDS,
                    isolation_level=None,
                    check_same_thread=False,
                )
                self._calls.row_factory = sqlite3.Row
                self._calls.execute("PRAGMA synchronous=NORMAL")
            db = self._calls
            db.execute("BEGIN IMMEDIATE")
            try:
                taken = ratelimit.take_call(users.bucket(Tx(db), caller), now, policy)
                if taken.allowed:
                    users.save_bucket(Tx(db), caller, taken.level, now)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return taken

    # --- apps ---------------------------------------------------------------------------
    def create_app(
        self, name: str, stack: str, *, domain: str, owner: Principal = access.OPERATOR
    ) -> App:
        """A new app answering at NAME.``domain``, which no custom domain may already be,
        owned by `owner` (a user, or the operator)."""
        app = App(str(uuid.uuid4()), validation.app_name(name), stack, now_iso())
        own_hostname = validation.default_hostname(name, domain)
        with self.transaction() as db:
            _refuse_taken_name(db, name, own_hostname)
            db.execute(
                "INSERT INTO apps (id, name, stack, created_at, owner_id) VALUES (?, ?, ?, ?, ?)",
                (app.id, app.name, app.stack, app.created_at, owner.user_id),
            )
        return app

    def apps(self) -> list[App]:
        with self.reading() as db:
            return [_app(r) for r in db.execute("SELECT * FROM apps ORDER BY name")]

    def app_listing(self, caller: Principal = access.OPERATOR) -> list[ListedApp]:
        with self.reading() as tx:
            return tx.app_listing(caller)

    def app(self, ref: str) -> App:
        """The app by name or by id (Heroku's identity: either one)."""
        with self.reading() as db:
            row = db.execute("SELECT * FROM apps WHERE name = ? OR id = ?", (ref, ref)).fetchone()
        if row is None:
            raise NotFound(f"app {ref!r} not found: `paas apps` lists the apps")
        return _app(row)

    def set_stack(self, app: App, stack: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE apps SET stack = ? WHERE id = ?", (stack, app.id))

    def rename_app(self, app: App, name: str, *, domain: str) -> App:
        """The app is now called `name` (answering at NAME.``domain``), refused as
        create_app refuses a name: taken by an app, or its hostname a custom domain."""
        renamed = App(app.id, validation.app_name(name), app.stack, app.created_at)
        own_hostname = validation.default_hostname(name, domain)
        with self.transaction() as db:
            _refuse_taken_name(db, name, own_hostname)
            db.execute("UPDATE apps SET name = ? WHERE id = ?", (name, app.id))
        return renamed

    def delete_app(self, app: App) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM apps WHERE id = ?", (app.id,))

    def app_uid(self, app: App, allocate: Callable[[int | None], int]) -> int:
        """The app's own uid; `allocate(highest uid given out so far)` picks a new one."""
        with self.reading() as db:
            row = db.execute("SELECT uid FROM app_uids WHERE app_id = ?", (app.id,)).fetchone()
        if row is not None:
            return int(row["uid"])
        with self.transaction() as db:
            row = db.execute("SELECT uid FROM app_uids WHERE app_id = ?", (app.id,)).fetchone()
            if row is not None:
                return int(row["uid"])
            top = db.execute("SELECT MAX(uid) FROM app_uids").fetchone()[0]
            uid = allocate(top)
            db.execute("INSERT INTO app_uids (app_id, uid) VALUES (?, ?)", (app.id, uid))
            return uid

    # --- config -------------------------------------------------------------------------
    def config(self, app: App) -> dict[str, str]:
        with self.reading() as tx:
            return tx.config(app)

    # --- releases -----------------------------------------------------------------------
    def releases(self, app: App) -> list[Release]:
        with self.reading() as tx:
            return tx.releases(app)

    def addon_plans_by_release(self, app: App) -> dict[str, list[str]]:
        with self.reading() as tx:
            return tx.addon_plans_by_release(app)

    def slug_record(
        self, app: App, slug: str
    ) -> tuple[str, dict[str, str], str | None, str] | None:
        """(artifact, process types, commit, first seen) of the app's slug with id `slug`,
        from the first release that ran it and the build that made it; None when no
        release of the app has it. Its distinct artifacts are few: each is compared."""
        with self.reading() as db:
            artifacts = db.execute(
                "SELECT DISTINCT artifact FROM releases WHERE app_id = ? AND artifact != ''",
                (app.id,),
            )
            artifact = next((r[0] for r in artifacts if slug_id(r[0]) == slug), None)
            if artifact is None:
                return None
            row = db.execute(
                "SELECT process_types, created_at FROM releases WHERE app_id = ? "
                "AND artifact = ? ORDER BY version LIMIT 1",
                (app.id, artifact),
            ).fetchone()
            build = db.execute(
                "SELECT source_version FROM builds WHERE app_id = ? AND artifact = ? "
                "ORDER BY created_at LIMIT 1",
                (app.id, artifact),
            ).fetchone()
        commit = None if build is None else str(build["source_version"])
        return artifact, json.loads(row["process_types"]), commit, row["created_at"]

    def current_release(self, app: App) -> Release | None:
        """The release dynos run: the newest one deploying or succeeded."""
        with self.reading() as tx:
            return tx.current_release(app)

    def shown_current_release(self, app: App) -> Release | None:
        """What Heroku's API calls current (see Tx.shown_current_release)."""
        with self.reading() as tx:
            return tx.shown_current_release(app)

    def latest_release(self, app: App) -> Release | None:
        """The newest release that has not failed: what a config change or scale builds on."""
        with self.reading() as tx:
            return tx.latest_release(app)

    def set_release_status(
        self,
        app: App,
        version: int,
        change: tuple[tuple[str, ...], str],
        detail: str | None,
        at: float,
    ) -> bool:
        """Moves vN from one of `change[0]` to `change[1]`; False when it was elsewhere
        (another writer settled it first), so two writers never overwrite each other."""
        expected, status = change
        if status not in RELEASE_STATUSES:
            raise ValueError(f"unknown release status {status!r}")
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE releases SET status = ?, status_detail = ?, status_at = ? "
                f"WHERE app_id = ? AND version = ? AND status IN ({_marks(expected)})",
                (status, detail, at, app.id, version, *expected),
            )
            changed = cursor.rowcount == 1
            if changed and status == "deploying":
                db.clear_slots(app)  # crash backoff starts afresh with the rollout
        return changed

    def release(self, app: App, version: int) -> Release:
        with self.reading() as tx:
            release = tx.find_release(app, version)
        if release is None:
            raise NotFound(
                f"release v{version} of {app.name} not found: `paas releases` lists them"
            )
        return release

    # --- formation ----------------------------------------------------------------------
    def formation(self, app: App) -> list[FormationEntry]:
        with self.reading() as tx:
            return tx.formation(app)

    def formation_stamps(self, app: App) -> dict[str, tuple[str, str]]:
        with self.reading() as tx:
            return tx.formation_stamps(app)

    # --- builds -------------------------------------------------------------------------
    def start_build(
        self,
        app: App,
        source_version: str,
        by: Principal = access.OPERATOR,
        buildpacks: Iterable[str] = (),
    ) -> Build:
        """A pending build of `source_version` that `by` caused (the secrets of its output
        stream's URLs are granted per caller, paas.state.build_streams)."""
        build = Build(
            id=str(uuid.uuid4()),
            app_id=app.id,
            status="pending",
            source_version=source_version,
            artifact=None,
            output="",
            created_at=now_iso(),
            finished_at=None,
            user_id=by.user_id,
            user_email=by.email,
            stack=app.stack,
            buildpacks=json.dumps(list(buildpacks)),
        )
        fields = tuple(k for k, v in vars(build).items() if v is not None)
        with self.transaction() as db:
            db.execute(
                f"INSERT INTO builds ({', '.join(fields)}) VALUES ({_marks(fields)})",
                tuple(getattr(build, f) for f in fields),
            )
        return build

    def finish_build(self, build: Build, status: str, artifact: str | None, output: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE builds SET status = ?, artifact = ?, output = ?, finished_at = ? "
                "WHERE id = ?",
                (status, artifact, output[-200_000:], now_iso(), build.id),
            )

    def link_build(self, build: Build, release: Release) -> None:
        """The build made this release (a build's `release` in Heroku's API)."""
        with self.transaction() as db:
            db.execute("UPDATE builds SET release_id = ? WHERE id = ?", (release.id, build.id))

    def build(self, app: App, build_id: str) -> Build:
        with self.reading() as db:
            row = db.execute(
                "SELECT * FROM builds WHERE app_id = ? AND id = ?", (app.id, build_id)
            ).fetchone()
        if row is None:
            raise NotFound(f"build {build_id} of {app.name} not found: `paas builds` lists them")
        return _build(row)

    def build_by_id(self, build_id: str) -> Build | None:
        """The build of this id, whichever app it is of; None: none (or trimmed)."""
        with self.reading() as db:
            row = db.execute("SELECT * FROM builds WHERE id = ?", (build_id,)).fetchone()
        return None if row is None else _build(row)

    def pending_builds(self) -> list[tuple[str, str]]:
        """(app name, created_at) of every build still pending: running, or left by a crash."""
        with self.reading() as db:
            rows = db.execute(
                "SELECT apps.name, builds.created_at FROM builds "
                "JOIN apps ON apps.id = builds.app_id WHERE builds.status = 'pending'"
            )
            return [(r[0], r[1]) for r in rows]

    def trim_builds(self, app: App, keep: int) -> int:
        """Deletes all but the app's last `keep` build records; returns how many went."""
        with self.transaction() as db:
            return db.execute(
                "DELETE FROM builds WHERE app_id = ? AND rowid NOT IN "
                "(SELECT rowid FROM builds WHERE app_id = ? ORDER BY rowid DESC LIMIT ?)",
                (app.id, app.id, keep),
            ).rowcount

    def builds(self, app: App) -> list[Build]:
        with self.reading() as db:
            rows = db.execute(
                "SELECT * FROM builds WHERE app_id = ? ORDER BY created_at", (app.id,)
            )
            return [_build(r) for r in rows]

    # --- domains ------------------------------------------------------------------------
    def domains(self, app: App) -> list[str]:
        with self.reading() as db:
            rows = db.execute(
                "SELECT hostname FROM domains WHERE app_id = ? ORDER BY hostname", (app.id,)
            )
            return [r["hostname"] for r in rows]

    def custom_domains(self, app: App) -> list[CustomDomain]:
        with self.reading() as db:
            rows = db.execute(
                "SELECT id, hostname, created_at FROM domains WHERE app_id = ? ORDER BY hostname",
                (app.id,),
            )
            return [CustomDomain(r["id"], r["hostname"], r["created_at"]) for r in rows]

    def add_domain(self, app: App, hostname: str, *, domain: str) -> CustomDomain:
        """Routes ``hostname`` to ``app``; refused under ``domain`` (the platform's own
        names, APP.``domain``) and when another app has it."""
        hostname = validation.custom_domain(hostname, domain)
        added = CustomDomain(str(uuid.uuid4()), hostname, now_iso())
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM domains WHERE hostname = ?", (hostname,)).fetchone():
                raise Conflict(f"domain {hostname} is already in use")
            db.execute(
                "INSERT INTO domains (app_id, hostname, id, created_at) VALUES (?, ?, ?, ?)",
                (app.id, hostname, added.id, added.created_at),
            )
        return added

    def remove_domain(self, app: App, hostname: str) -> None:
        with self.transaction() as db:
            deleted = db.execute(
                "DELETE FROM domains WHERE app_id = ? AND hostname = ?", (app.id, hostname)
            ).rowcount
        if not deleted:
            raise NotFound(f"domain {hostname} is not attached to {app.name}")

    # --- buildpacks ---------------------------------------------------------------------
    def buildpacks(self, app: App) -> list[str]:
        """The app's stored buildpack URLs in build order ([]: none stored)."""
        with self.reading() as db:
            rows = db.execute(
                "SELECT url FROM buildpacks WHERE app_id = ? ORDER BY ordinal", (app.id,)
            )
            return [r["url"] for r in rows]

    def set_buildpacks(self, app: App, urls: list[str]) -> None:
        """The app's buildpacks are exactly `urls`, in that order (checked by the caller)."""
        with self.transaction() as db:
            db.execute("DELETE FROM buildpacks WHERE app_id = ?", (app.id,))
            for ordinal, url in enumerate(urls):
                db.execute(
                    "INSERT INTO buildpacks (app_id, ordinal, url) VALUES (?, ?, ?)",
                    (app.id, ordinal, url),
                )

    # --- restarts and crash bookkeeping -----------------------------------------------
    def request_restart(self, app: App, target: str) -> None:
        """Bumps the restart generation of '' (all), a type or a dyno name."""
        with self.transaction() as tx:
            tx.bump_restart(app, target)
            tx.clear_slots(app, target)

    def restart_generations(self, app: App) -> dict[str, int]:
        with self.reading() as db:
            rows = db.execute("SELECT target, generation FROM restarts WHERE app_id = ?", (app.id,))
            return {r["target"]: r["generation"] for r in rows}

    def reset_slots(self, app: App) -> None:
        with self.transaction() as tx:
            tx.clear_slots(app)

    def slots(self, app: App) -> dict[str, DynoSlot]:
        with self.reading() as db:
            rows = db.execute("SELECT * FROM dyno_slots WHERE app_id = ?", (app.id,))
            return {r["name"]: _slot(r) for r in rows}

    def save_slot(self, app: App, slot: DynoSlot) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO dyno_slots (app_id, name, crash_count, last_exit_status, "
                "next_retry_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (app_id, name) DO UPDATE "
                "SET crash_count = excluded.crash_count, "
                "last_exit_status = excluded.last_exit_status, "
                "next_retry_at = excluded.next_retry_at",
                (app.id, slot.name, slot.crash_count, slot.last_exit_status, slot.next_retry_at),
            )

    # --- add-ons (paas.addons.catalog writes them; placement reads the endpoints) --------
    def addon_endpoints(self, app: App) -> list[tuple[str, str, int]]:
        """(add-on id, address, port) of every add-on attached to the app: what the dyno
        firewall opens to the app's dynos."""
        with self.reading() as tx:
            return tx.addon_endpoints(app)
