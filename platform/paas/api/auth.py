"""Authentication: `Authorization: Bearer TOKEN`, or HTTP Basic with the token as password
(what git sends). Tokens are compared by hash; the database never holds a token itself.
Every request reads its token afresh (no cache), so a revoked or expired one fails at once.

API calls are limited per user as Heroku limits them (4,500 an hour, a token bucket kept
in the state database so every API worker counts together); past it, 429 `rate_limit`.
`RateLimit-Remaining` (g.paas_rate_remaining) says how many are left. The operator's
admin token is not limited: it must always be able to stop a runaway user.

Failed attempts (a token presented and refused) are counted per client address in the
state database, shared by every API worker: past the limit, that address's failures are
answered 429 with Retry-After. A valid token is checked first and never counted, so a
client that knows its token is never slowed by another one guessing from its address.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from typing import TypeVar

from flask import current_app, g, request

from paas.api.context import ctx
from paas.domain.access import Principal
from paas.domain.errors import TooManyRequests, Unauthorized
from paas.state import ratelimit

POLICY = ratelimit.Policy()
CALLS = ratelimit.CallPolicy()


def presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (ValueError, binascii.Error):
            return ""  # credentials were presented, and they are not a token
        return decoded.partition(":")[2] or None  # a user name alone is no attempt
    return None


View = TypeVar("View", bound=Callable[..., object])


def public(view: View) -> View:
    """Marks a route whose URL is its own secret (a build's output, a log stream): served without
    a token, as Heroku's clients fetch those URLs bare."""
    view.paas_public = True  # type: ignore[attr-defined]
    return view


def require_token() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "paas_public", False):
        return
    token = presented_token()
    if token is None:  # no credentials: not a guess (git always asks this way first)
        raise Unauthorized("authentication required: run `paas login` or set PAAS_API_TOKEN")
    caller = ctx().store.token_principal(token) if token else None
    if caller is not None:
        g.paas_principal = caller
        count_call(caller)
        return
    address = request.remote_addr or "unknown"
    refused = ctx().store.count_auth_failure(address, time.time(), POLICY)
    if refused:
        raise TooManyRequests(
            f"too many failed authentications from {address}: wait "
            f"{ratelimit.retry_after(refused)} s, then check the token (`paas login`)",
            ratelimit.retry_after(refused),
        )
    raise Unauthorized("invalid credentials: the API token was not accepted")


def count_call(caller: Principal) -> None:
    """Takes one call from the caller's bucket; none left: 429 rate_limit."""
    if caller.admin:
        g.paas_rate_remaining = int(CALLS.capacity)
        return
    taken = ctx().store.take_call(f"user:{caller.user_id}", time.time(), CALLS)
    g.paas_rate_remaining = taken.remaining
    if not taken.allowed:
        wait = ratelimit.retry_after(ratelimit.seconds_until_call(taken.level, CALLS))
        raise TooManyRequests(
            f"{caller.email} made more than {int(CALLS.capacity)} API calls in the last "
            f"hour: wait {wait} s (GET /account/rate-limits shows what is left)",
            wait,
        )
