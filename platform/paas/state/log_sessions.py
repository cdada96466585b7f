"""Log sessions (Heroku's POST /apps/APP/log-sessions) in the state database: what a
`logplex_url` streams, found by the secret in that URL.

Heroku's CLI fetches the logplex_url without its API token, so the URL is the credential:
its secret is 32 random bytes, only its hash is stored, and it is good for TTL_SECONDS
from its creation. A session without `tail` is good for one GET (claim deletes it); a tail
for one stream at a time (claim marks it streaming, release unmarks it). Every API worker
reads the same table, so the session may be made by one and streamed by another.

A session keeps its app's id and its creator's user id (NULL: the operator), never the
app's name: the stream re-reads both (app_name, creator) to end when the app is gone or
renamed, or its creator lost the right to see it.

Invariants: every value is checked before it is written; expired rows go at the next
create.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass

from paas.domain import access
from paas.domain.access import Principal
from paas.domain.errors import InvalidParams
from paas.domain.models import App
from paas.state import users
from paas.state.store import Store, now_iso, token_hash

TTL_SECONDS = 300.0
MAX_LINES = 1500  # Heroku's own bound on `heroku logs -n`
SOURCES = {"app": "app", "paas": "paas", "heroku": "paas"}  # Heroku's name for the platform


@dataclass(frozen=True)
class LogSession:
    id: str
    app_id: str
    dyno: str | None
    source: str | None
    lines: int
    tail: bool
    created_at: str
    user_id: str | None = None  # who made it; None: the operator


def check(body: dict[str, object]) -> tuple[str | None, str | None, int, bool]:
    """(dyno, source, lines, tail) of a create body; InvalidParams naming a bad one."""
    dyno, source, lines, tail = (body.get(k) for k in ("dyno", "source", "lines", "tail"))
    if dyno is not None and (not isinstance(dyno, str) or not 0 < len(dyno) <= 100):
        raise InvalidParams("dyno must be a dyno name (web.1) or a process type (web)")
    if source is not None and source not in SOURCES:
        raise InvalidParams("source must be app or heroku (paas is heroku's synonym)")
    if lines is None:
        lines = 100
    if isinstance(lines, bool) or not isinstance(lines, int) or not 0 <= lines <= MAX_LINES:
        raise InvalidParams(f"lines must be a whole number from 0 to {MAX_LINES}")
    if tail is None:
        tail = False
    if not isinstance(tail, bool):
        raise InvalidParams("tail must be true or false")
    return dyno or None, None if source is None else SOURCES[source], lines, tail


def create(
    store: Store, app: App, body: dict[str, object], creator: Principal
) -> tuple[LogSession, str]:
    """A new session of `creator` and its secret (for the URL; never stored)."""
    dyno, source, lines, tail = check(body)
    secret = secrets.token_urlsafe(32)
    user_id = creator.user_id  # None: the operator (a user is never admin)
    found = LogSession(str(uuid.uuid4()), app.id, dyno, source, lines, tail, now_iso(), user_id)
    now = time.time()
    with store.transaction() as tx:
        tx.execute("DELETE FROM log_sessions WHERE expires_at < ?", (now,))
        tx.execute(
            "INSERT INTO log_sessions (id, app_id, secret_hash, dyno, source, lines, tail,"
            " created_at, expires_at, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                found.id,
                app.id,
                token_hash(secret),
                dyno,
                source,
                lines,
                int(tail),
                found.created_at,
                now + TTL_SECONDS,
                user_id,
            ),
        )
    return found, secret


def claim(store: Store, secret: str) -> LogSession | None:
    """The unexpired session of this secret, taken for one stream: a session without
    tail is deleted (one use), a tail marked streaming (None while another streams it)."""
    with store.transaction() as tx:
        row = tx.execute(
            "SELECT * FROM log_sessions WHERE secret_hash = ? AND expires_at >= ?",
            (token_hash(secret), time.time()),
        ).fetchone()
        if row is None or (row["tail"] and row["streaming"]):
            return None
        if row["tail"]:
            tx.execute("UPDATE log_sessions SET streaming = 1 WHERE id = ?", (row["id"],))
        else:
            tx.execute("DELETE FROM log_sessions WHERE id = ?", (row["id"],))
    return LogSession(
        row["id"],
        row["app_id"],
        row["dyno"],
        row["source"],
        row["lines"],
        bool(row["tail"]),
        row["created_at"],
        row["user_id"],
    )


def release(store: Store, found: LogSession) -> None:
    """The tail's stream ended: its secret may open another (until it expires)."""
    with store.transaction() as tx:
        tx.execute("UPDATE log_sessions SET streaming = 0 WHERE id = ?", (found.id,))


def app_name(store: Store, app_id: str) -> str | None:
    """The app's name now, by id only; None: destroyed."""
    with store.reading() as tx:
        row = tx.execute("SELECT name FROM apps WHERE id = ?", (app_id,)).fetchone()
    return None if row is None else str(row["name"])


def creator(store: Store, found: LogSession) -> Principal | None:
    """Who made the session, as they are now; None: that user was deleted."""
    if found.user_id is None:
        return access.OPERATOR
    with store.reading() as tx:
        user = users.find_user(tx, found.user_id)
    return None if user is None or user.id != found.user_id else user.principal
