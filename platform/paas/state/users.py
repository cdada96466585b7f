"""Users, their tokens, app ownership, collaborators, the audit trail and API call buckets.

Job: the SQL of the platform's multi-user state. The statements run inside a transaction
of paas.state.store (its `Tx`, passed in as anything with `execute`), so a change here and
the change it belongs to commit together; this module imports nothing of the store.

Invariants: a token is kept only as its sha256; a token whose user_id is NULL is the
operator's (the admin token and the named clients beside it), an app whose owner_id is
NULL the operator's; an expired token answers nothing, at once (nothing is cached); a
collaborator holds exactly one permission per app, and the owner is never a collaborator
of their own app; the audit keeps what was asked (method, path, status, who, from where),
never a body, a config value or a token.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from paas.domain import access, identity
from paas.domain.access import Permission, Principal
from paas.domain.errors import Conflict, InvalidParams, NotFound

OPERATOR_ID = identity.OPERATOR_ID

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS collaborators (
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    id TEXT NOT NULL UNIQUE,
    permission INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (app_id, user_id)
)""",
    "CREATE INDEX IF NOT EXISTS collaborators_user ON collaborators (user_id)",
    # No foreign keys: an entry outlives its app and its user (who destroyed what).
    """CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    user_id TEXT,
    email TEXT NOT NULL,
    source TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    app_id TEXT,
    app_name TEXT
)""",
    "CREATE INDEX IF NOT EXISTS audit_app ON audit (app_id)",
    """CREATE TABLE IF NOT EXISTS call_buckets (
    caller TEXT PRIMARY KEY,
    level REAL NOT NULL,
    updated REAL NOT NULL
)""",
)
# Columns added to tables that existed before users: (table, column, type).
COLUMNS = (
    ("tokens", "id", "TEXT"),
    ("tokens", "user_id", "TEXT REFERENCES users(id) ON DELETE CASCADE"),
    ("tokens", "description", "TEXT"),
    ("tokens", "expires_at", "REAL"),
    ("apps", "owner_id", "TEXT REFERENCES users(id)"),
)


class Executes(Protocol):
    def execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> sqlite3.Cursor: ...


def migrate(tx: Executes) -> None:
    """Adds the tables and columns (each once), and gives every older token an id."""
    for statement in SCHEMA:
        tx.execute(statement)
    for table, column, kind in COLUMNS:
        present = {r["name"] for r in tx.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            tx.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    tx.execute("CREATE UNIQUE INDEX IF NOT EXISTS tokens_id ON tokens (id)")
    tx.execute("CREATE INDEX IF NOT EXISTS apps_owner ON apps (owner_id)")
    for row in tx.execute("SELECT hash FROM tokens WHERE id IS NULL").fetchall():
        tx.execute("UPDATE tokens SET id = ? WHERE hash = ?", (str(uuid.uuid4()), row["hash"]))


@dataclass(frozen=True)
class User:
    id: str
    email: str
    created_at: str

    @property
    def principal(self) -> Principal:
        return Principal(self.id, self.email)


@dataclass(frozen=True)
class Authorization:
    """One token of a user (or of the operator), as `heroku authorizations` lists it."""

    id: str
    description: str
    created_at: str
    expires_at: float | None
    user_id: str | None


@dataclass(frozen=True)
class Collaborator:
    id: str
    app_id: str
    user: User
    permission: Permission
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class AuditEntry:
    at: str
    user_id: str | None
    email: str
    source: str
    method: str
    path: str
    status: int
    request_id: str
    app_id: str | None
    app_name: str | None


def _user(row: sqlite3.Row) -> User:
    return User(row["id"], row["email"], row["created_at"])


# --- tokens ------------------------------------------------------------------------------
def principal_for(tx: Executes, digest: str, now: float) -> Principal | None:
    """Who holds the token with this hash now: None when no such token, or expired."""
    row = tx.execute(
        "SELECT tokens.user_id, tokens.expires_at, users.email FROM tokens "
        "LEFT JOIN users ON users.id = tokens.user_id WHERE tokens.hash = ?",
        (digest,),
    ).fetchone()
    if row is None or (row["expires_at"] is not None and row["expires_at"] <= now):
        return None
    if row["user_id"] is None:
        return access.OPERATOR
    return Principal(row["user_id"], row["email"])


def insert_token(
    tx: Executes,
    digest: str,
    owner: Principal,
    description: str,
    created_at: str,
    expires_at: float | None,
) -> Authorization:
    found = Authorization(str(uuid.uuid4()), description, created_at, expires_at, owner.user_id)
    tx.execute(
        "INSERT INTO tokens (hash, name, created_at, id, user_id, description, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        # name: what the admin token's rotation (store.replace_token) goes by, never a
        # description a user chose.
        (
            digest,
            f"authorization:{found.id}",
            created_at,
            found.id,
            owner.user_id,
            description,
            expires_at,
        ),
    )
    return found


def _authorization(row: sqlite3.Row) -> Authorization:
    return Authorization(
        row["id"],
        row["description"] or row["name"],
        row["created_at"],
        row["expires_at"],
        row["user_id"],
    )


def _owned_by(owner: Principal) -> tuple[str, tuple[Any, ...]]:
    if owner.user_id is None:
        return "user_id IS NULL", ()
    return "user_id = ?", (owner.user_id,)


def authorizations(tx: Executes, owner: Principal, now: float) -> list[Authorization]:
    """The caller's tokens that still work, oldest first."""
    where, params = _owned_by(owner)
    rows = tx.execute(
        f"SELECT * FROM tokens WHERE {where} AND (expires_at IS NULL OR expires_at > ?) "
        "ORDER BY created_at, id",
        (*params, now),
    )
    return [_authorization(r) for r in rows]


def authorization(tx: Executes, owner: Principal, token_id: str) -> Authorization:
    """One of the caller's tokens by id; another's is NotFound, like a missing one."""
    where, params = _owned_by(owner)
    row = tx.execute(
        f"SELECT * FROM tokens WHERE {where} AND id = ?", (*params, token_id)
    ).fetchone()
    if row is None:
        raise NotFound(f"authorization {token_id!r} not found: `paas authorizations` lists them")
    return _authorization(row)


def revoke(tx: Executes, owner: Principal, token_id: str) -> Authorization:
    found = authorization(tx, owner, token_id)
    tx.execute("DELETE FROM tokens WHERE id = ?", (found.id,))
    return found


def regenerate(tx: Executes, owner: Principal, token_id: str, digest: str) -> Authorization:
    """The authorization keeps its id and description; its token is a new one, and the old
    one stops working with this change."""
    found = authorization(tx, owner, token_id)
    tx.execute("UPDATE tokens SET hash = ? WHERE id = ?", (digest, found.id))
    return found


def rename_authorization(
    tx: Executes, owner: Principal, token_id: str, description: str
) -> Authorization:
    found = authorization(tx, owner, token_id)
    tx.execute("UPDATE tokens SET description = ? WHERE id = ?", (description, found.id))
    return authorization(tx, owner, token_id)


# --- users -------------------------------------------------------------------------------
def create_user(tx: Executes, email: str, created_at: str) -> User:
    if tx.execute("SELECT 1 FROM users WHERE email = ?", (email,)).fetchone():
        raise Conflict(f"a user with email {email!r} already exists")
    user = User(str(uuid.uuid4()), email, created_at)
    tx.execute(
        "INSERT INTO users (id, email, created_at) VALUES (?, ?, ?)",
        (user.id, user.email, user.created_at),
    )
    return user


def find_user(tx: Executes, ref: str) -> User | None:
    """A user by email (any case) or id."""
    row = tx.execute("SELECT * FROM users WHERE email = ? OR id = ?", (ref, ref)).fetchone()
    return None if row is None else _user(row)


def user(tx: Executes, ref: str) -> User:
    found = find_user(tx, ref)
    if found is None:
        raise NotFound(f"no user {ref!r}: the operator adds users with `paas users:add EMAIL`")
    return found


def delete_user(tx: Executes, found: User) -> None:
    """The user, their tokens and their access go; refused while they own an app."""
    owned = [r["name"] for r in tx.execute("SELECT name FROM apps WHERE owner_id = ?", (found.id,))]
    if owned:
        raise Conflict(
            f"{found.email} owns {', '.join(owned)}: transfer or destroy those apps first"
        )
    tx.execute("DELETE FROM tokens WHERE user_id = ?", (found.id,))
    tx.execute("DELETE FROM collaborators WHERE user_id = ?", (found.id,))
    tx.execute("DELETE FROM users WHERE id = ?", (found.id,))


def all_users(tx: Executes) -> list[User]:
    return [_user(r) for r in tx.execute("SELECT * FROM users ORDER BY email")]


# --- ownership and permissions -----------------------------------------------------------
def owner(tx: Executes, app_id: str) -> Principal:
    row = tx.execute(
        "SELECT users.id, users.email FROM apps JOIN users ON users.id = apps.owner_id "
        "WHERE apps.id = ?",
        (app_id,),
    ).fetchone()
    return access.OPERATOR if row is None else Principal(row["id"], row["email"])


def permission(tx: Executes, app_id: str, caller: Principal) -> Permission | None:
    """Admin and owner: manage; a collaborator: their permission; anyone else: None."""
    if caller.admin:
        return Permission.MANAGE
    row = tx.execute(
        "SELECT apps.owner_id = ? AS owns, collaborators.permission FROM apps "
        "LEFT JOIN collaborators ON collaborators.app_id = apps.id "
        "AND collaborators.user_id = ? WHERE apps.id = ?",
        (caller.user_id, caller.user_id, app_id),
    ).fetchone()
    if row is None:
        return None
    if row["owns"]:
        return Permission.MANAGE
    return None if row["permission"] is None else Permission(row["permission"])


def visible_apps_clause(caller: Principal) -> tuple[str, tuple[Any, ...]]:
    """A WHERE condition on `apps` keeping the apps the caller holds any permission on."""
    if caller.admin:
        return "1", ()
    return (
        "(apps.owner_id = ? OR apps.id IN (SELECT app_id FROM collaborators WHERE user_id = ?))",
        (caller.user_id, caller.user_id),
    )


def set_owner(tx: Executes, app_id: str, new_owner: Principal) -> None:
    """The app is the new owner's; they stop being its collaborator (they hold manage)."""
    tx.execute("UPDATE apps SET owner_id = ? WHERE id = ?", (new_owner.user_id, app_id))
    if new_owner.user_id is not None:
        tx.execute(
            "DELETE FROM collaborators WHERE app_id = ? AND user_id = ?",
            (app_id, new_owner.user_id),
        )


def collaborators(tx: Executes, app_id: str) -> list[Collaborator]:
    rows = tx.execute(
        "SELECT collaborators.*, users.email, users.created_at AS user_created_at "
        "FROM collaborators JOIN users ON users.id = collaborators.user_id "
        "WHERE app_id = ? ORDER BY users.email",
        (app_id,),
    )
    return [_collaborator(r) for r in rows]


def _collaborator(row: sqlite3.Row) -> Collaborator:
    return Collaborator(
        row["id"],
        row["app_id"],
        User(row["user_id"], row["email"], row["user_created_at"]),
        Permission(row["permission"]),
        row["created_at"],
        row["updated_at"],
    )


def collaborator(tx: Executes, app_id: str, ref: str) -> Collaborator:
    """A collaborator of the app by email, user id or collaborator id."""
    for found in collaborators(tx, app_id):
        if ref.lower() in (found.user.email.lower(), found.user.id, found.id):
            return found
    raise NotFound(f"{ref!r} is not a collaborator of this app: `paas access` lists them")


def grant(
    tx: Executes, app_id: str, who: User, level: Permission, now: str, *, new: bool
) -> Collaborator:
    """Adds (new=True: refused when present) or updates (new=False: must be present) the
    user's permission on the app. The owner is refused: they hold manage already."""
    if owner(tx, app_id).user_id == who.id:
        raise InvalidParams(f"{who.email} owns this app and holds manage on it already")
    present = tx.execute(
        "SELECT 1 FROM collaborators WHERE app_id = ? AND user_id = ?", (app_id, who.id)
    ).fetchone()
    if new and present:
        raise Conflict(f"{who.email} is a collaborator already: `paas access:update` changes it")
    if not new and not present:
        raise NotFound(f"{who.email} is not a collaborator of this app: `paas access:add` first")
    tx.execute(
        "INSERT INTO collaborators (app_id, user_id, id, permission, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (app_id, user_id) DO UPDATE SET "
        "permission = excluded.permission, updated_at = excluded.updated_at",
        (app_id, who.id, str(uuid.uuid4()), int(level), now, now),
    )
    return collaborator(tx, app_id, who.id)


def remove(tx: Executes, app_id: str, ref: str) -> Collaborator:
    found = collaborator(tx, app_id, ref)
    tx.execute(
        "DELETE FROM collaborators WHERE app_id = ? AND user_id = ?", (app_id, found.user.id)
    )
    return found


# --- audit -------------------------------------------------------------------------------
AUDIT_KEPT = 100_000  # the newest entries kept; older ones go as new ones come


def record(tx: Executes, entry: AuditEntry) -> None:
    tx.execute(
        "INSERT INTO audit (at, user_id, email, source, method, path, status, request_id, "
        "app_id, app_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            entry.at,
            entry.user_id,
            entry.email,
            entry.source,
            entry.method,
            entry.path,
            entry.status,
            entry.request_id,
            entry.app_id,
            entry.app_name,
        ),
    )
    tx.execute("DELETE FROM audit WHERE seq <= last_insert_rowid() - ?", (AUDIT_KEPT,))


def audit_entries(
    tx: Executes, caller: Principal, app_ids: Sequence[str] | None, limit: int
) -> list[AuditEntry]:
    """The newest `limit` entries the caller may read, oldest first: the admin reads all;
    a user the entries of apps they hold a permission on now, and their own. `app_ids`
    narrows to those apps."""
    where, params = [], []
    if not caller.admin:
        clause, more = visible_apps_clause(caller)
        where.append(f"(audit.user_id = ? OR audit.app_id IN (SELECT id FROM apps WHERE {clause}))")
        params.extend([caller.user_id, *more])
    if app_ids is not None:
        where.append(f"audit.app_id IN ({', '.join('?' for _ in app_ids)})")
        params.extend(app_ids)
    rows = tx.execute(
        "SELECT * FROM audit"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + " ORDER BY seq DESC LIMIT ?",
        (*params, limit),
    ).fetchall()
    return [
        AuditEntry(
            r["at"],
            r["user_id"],
            r["email"],
            r["source"],
            r["method"],
            r["path"],
            r["status"],
            r["request_id"],
            r["app_id"],
            r["app_name"],
        )
        for r in reversed(rows)
    ]


# --- API call buckets --------------------------------------------------------------------
def bucket(tx: Executes, caller: str) -> tuple[float, float] | None:
    row = tx.execute(
        "SELECT level, updated FROM call_buckets WHERE caller = ?", (caller,)
    ).fetchone()
    return None if row is None else (float(row["level"]), float(row["updated"]))


def save_bucket(tx: Executes, caller: str, level: float, updated: float) -> None:
    tx.execute(
        "INSERT INTO call_buckets (caller, level, updated) VALUES (?, ?, ?) "
        "ON CONFLICT (caller) DO UPDATE SET level = excluded.level, updated = excluded.updated",
        (caller, level, updated),
    )
