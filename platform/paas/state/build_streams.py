"""Grants to read a build's output stream (a build's `output_stream_url`): who asked for
the URL, for which build, until when, found by the secret the URL carries.

Heroku's CLI fetches that URL without its API token, so the URL is the credential. Each
listing or showing of a build makes a fresh grant for the caller: 32 random bytes, only
their hash stored, good for TTL_SECONDS (the CLI fetches the URL right after asking).
The grant names its holder, so the stream re-checks what they may see when it starts
and while it follows (paas.api.releases): a collaborator removed, or a user deleted,
reads no more. Every API worker reads the same table (build_stream_grants, made by
Store._migrate_build_streams).

Invariants: no secret is stored in the clear; expired grants go at the next grant.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from paas.domain import access
from paas.domain.access import Principal
from paas.state.store import Store, token_hash

TTL_SECONDS = 300.0


@dataclass(frozen=True)
class Grant:
    secret_hash: str
    build_id: str
    user_id: str | None  # None: the operator (the admin token)


def grant(store: Store, build_ids: Iterable[str], holder: Principal) -> dict[str, str]:
    """A new secret per build for `holder` (build id → secret; never stored), in one
    transaction whatever the number of builds."""
    found = {build_id: secrets.token_urlsafe(32) for build_id in build_ids}
    if not found:
        return found
    now = time.time()
    with store.transaction() as tx:
        tx.execute("DELETE FROM build_stream_grants WHERE expires_at < ?", (now,))
        for build_id, secret in found.items():
            tx.execute(
                "INSERT INTO build_stream_grants (secret_hash, build_id, user_id, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (token_hash(secret), build_id, holder.user_id, now + TTL_SECONDS),
            )
    return found


def by_secret(store: Store, secret: str) -> Grant | None:
    """The unexpired grant of this secret (looked up by its hash); None otherwise."""
    digest = token_hash(secret)
    with store.reading() as tx:
        row = tx.execute(
            "SELECT build_id, user_id FROM build_stream_grants "
            "WHERE secret_hash = ? AND expires_at >= ?",
            (digest, time.time()),
        ).fetchone()
    return None if row is None else Grant(digest, row["build_id"], row["user_id"])


def holder(store: Store, found: Grant) -> Principal | None:
    """Who the grant was made for, as they are now: None when that user was deleted."""
    if found.user_id is None:
        return access.OPERATOR
    with store.reading() as tx:
        row = tx.execute("SELECT email FROM users WHERE id = ?", (found.user_id,)).fetchone()
    return None if row is None else Principal(found.user_id, row["email"])
