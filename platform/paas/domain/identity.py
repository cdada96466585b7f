"""Stable ids for what paas names but never stored an id for: the one region, stacks, the
operator, an app's own hostname. Heroku's clients want a UUID beside every name; these are
derived (UUID version 5 in paas's own namespace), so the same thing has the same id in
every answer and on every host, without a column to keep.

Invariant: pure; an id depends only on the kind and the key given.
"""

from __future__ import annotations

import functools
import uuid

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://paas.invalid/ids")

# paas runs on one host: every app is in this one region (Heroku's `us`, `eu`... do not
# exist here). `heroku apps:create --region local` is accepted, any other region refused.
REGION_NAME = "local"
# The operator (the admin token) in Heroku's account, owner and user shapes: the same id on
# every install, as the operator is a role, not an account anyone signs up for.
OPERATOR_ID = "00000000-0000-4000-8000-000000000000"


@functools.lru_cache(maxsize=4096)  # a listing of 1,000 apps asks for the same few
def derived_id(kind: str, key: str) -> str:
    """The id of the `kind` thing called `key` (e.g. "stack", "debian-13")."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{key}"))


def user(user_id: str | None, email: str) -> dict[str, object]:
    """Heroku's nested user {id, email}; no user id: the operator."""
    return {"id": user_id or OPERATOR_ID, "email": email}


def region() -> dict[str, object]:
    return {"id": derived_id("region", REGION_NAME), "name": REGION_NAME}


def stack(name: str) -> dict[str, object]:
    return {"id": derived_id("stack", name), "name": name}
