"""The caller's account, their tokens (Heroku's OAuth authorizations), the operator's user
management, rate limits and the audit trail.

Heroku's shapes: `/account`, `/account/features`, `/account/rate-limits`,
`/oauth/authorizations[/ID]`. paas's own paths: `/users` (the operator adds users, each
with a first token) and `/audit`. A token leaves the platform once, in the answer that
created it (`access_token.token`); afterwards only its id and description are shown.

Invariant: every change (POST, PATCH, PUT, DELETE: git's receive-pack included) an
authenticated caller asks for is recorded by `record_change` after it is answered, with
who, when, from where, what (method, path, status, request id) and the app it named;
never a body, a query, a config value or a token.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

from flask import Blueprint, Response, g, jsonify, request

from paas.api import auth, protocol
from paas.api.context import ctx, find_app, json_body, principal
from paas.domain import access, identity
from paas.domain.access import Permission, Principal
from paas.domain.errors import Forbidden, InvalidParams
from paas.domain.models import App
from paas.state import users
from paas.state.store import now_iso, token_hash

blueprint = Blueprint("users", __name__)
OPERATOR_CREATED_AT = "1970-01-01T00:00:00Z"  # the operator is a role, not a sign-up
MAX_EXPIRES_IN = 10 * 366 * 24 * 3600
AUDIT_LIMIT = 1000
CHANGES = ("POST", "PATCH", "PUT", "DELETE")


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def user_ref(caller: Principal) -> dict[str, object]:
    """Heroku's nested user: {id, email}."""
    return identity.user(caller.user_id, caller.email)


def account_json(caller: Principal, created_at: str) -> dict[str, object]:
    return {
        "id": caller.user_id or users.OPERATOR_ID,
        "email": caller.email,
        "name": caller.email,
        "created_at": created_at,
        "updated_at": created_at,
        "last_login": None,
        "verified": True,
        "beta": False,
        "allow_tracking": False,
        "federated": False,
        "two_factor_authentication": False,
        "sms_number": None,
        "suspended_at": None,
        "delinquent_at": None,
        "default_organization": None,
        "default_team": None,
        "identity_provider": None,
        "admin": caller.admin,  # paas's own: the operator
    }


def _created_at(caller: Principal) -> str:
    if caller.user_id is None:
        return OPERATOR_CREATED_AT
    with ctx().store.reading() as tx:
        return users.user(tx, caller.user_id).created_at


@blueprint.get("/account")
def account() -> Response:
    caller = principal()
    return jsonify(account_json(caller, _created_at(caller)))


@blueprint.get("/account/features")
def account_features() -> tuple[Response, int]:
    """Heroku's account features: paas has none to switch on or off."""
    return protocol.listing([], ["id", "name"])


@blueprint.get("/account/rate-limits")
def rate_limits() -> Response:
    """What this request left (it counted too, as on Heroku)."""
    return jsonify(remaining=g.get("paas_rate_remaining", int(auth.CALLS.capacity)))


# --- authorizations (the caller's tokens) ----------------------------------------------
def authorization_json(
    found: users.Authorization, caller: Principal, token: str | None = None
) -> dict[str, object]:
    expires_in = None
    if found.expires_at is not None:
        expires_in = max(0, int(found.expires_at - time.time()))
    shown: dict[str, object] = {"id": found.id, "expires_in": expires_in}
    if token is not None:
        shown["token"] = token
    return {
        "id": found.id,
        "description": found.description,
        "scope": ["global"],
        "created_at": found.created_at,
        "updated_at": found.created_at,
        "access_token": shown,
        "refresh_token": None,
        "client": None,
        "grant": None,
        "session": None,
        "user": {**user_ref(caller), "full_name": None},
    }


def _expires_at(value: object) -> float | None:
    """expires_in: seconds from now (a number, or digits: Heroku's CLI sends a string)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidParams("expires_in must be a number of seconds, e.g. 3600")
    try:
        seconds = int(value)
    except ValueError:
        raise InvalidParams(f"expires_in {value!r} is not a number of seconds") from None
    if not 0 < seconds <= MAX_EXPIRES_IN:
        raise InvalidParams(f"expires_in must be 1..{MAX_EXPIRES_IN} seconds, not {seconds}")
    return time.time() + seconds


def _description(value: object, default: str) -> str:
    if value is None or value == "":
        return default
    if not isinstance(value, str) or len(value) > 200 or not value.isprintable():
        raise InvalidParams("description must be printable text of at most 200 characters")
    return value


def new_token(
    owner: Principal, description: str, expires_at: float | None
) -> tuple[str, users.Authorization]:
    token = secrets.token_urlsafe(32)
    with ctx().store.transaction() as tx:
        found = users.insert_token(tx, token_hash(token), owner, description, now_iso(), expires_at)
    return token, found


@blueprint.get("/oauth/authorizations")
def list_authorizations() -> tuple[Response, int]:
    caller = principal()
    with ctx().store.reading() as tx:
        found = users.authorizations(tx, caller, time.time())
    return protocol.listing([authorization_json(a, caller) for a in found], ["id"])


@blueprint.post("/oauth/authorizations")
def create_authorization() -> tuple[Response, int]:
    """Body: {description, expires_in}; the token is in this answer only."""
    caller, body = principal(), json_body()
    description = _description(body.get("description"), "token")
    token, found = new_token(caller, description, _expires_at(body.get("expires_in")))
    return jsonify(authorization_json(found, caller, token)), 201


@blueprint.get("/oauth/authorizations/<token_id>")
def show_authorization(token_id: str) -> Response:
    caller = principal()
    with ctx().store.reading() as tx:
        return jsonify(authorization_json(users.authorization(tx, caller, token_id), caller))


@blueprint.patch("/oauth/authorizations/<token_id>")
def update_authorization(token_id: str) -> Response:
    caller, body = principal(), json_body()
    description = _description(body.get("description"), "")
    if not description:
        raise InvalidParams('give the new description: {"description": "deploys from CI"}')
    with ctx().store.transaction() as tx:
        found = users.rename_authorization(tx, caller, token_id, description)
    return jsonify(authorization_json(found, caller))


@blueprint.post("/oauth/authorizations/<token_id>/actions/regenerate-tokens")
def regenerate_authorization(token_id: str) -> Response:
    """`heroku authorizations:rotate`: a new token for the authorization, shown this once;
    the old one fails from now on."""
    caller, token = principal(), secrets.token_urlsafe(32)
    with ctx().store.transaction() as tx:
        found = users.regenerate(tx, caller, token_id, token_hash(token))
    return jsonify(authorization_json(found, caller, token))


@blueprint.delete("/oauth/authorizations/<token_id>")
def revoke_authorization(token_id: str) -> Response:
    """The token stops working with this answer (it was the caller's own: it may be the
    one this request came with)."""
    caller = principal()
    with ctx().store.transaction() as tx:
        found = users.revoke(tx, caller, token_id)
    return jsonify(authorization_json(found, caller))


# --- users (the operator's) --------------------------------------------------------------
def require_admin(what: str) -> Principal:
    caller = principal()
    if not caller.admin:
        raise Forbidden(f"only the platform's operator (the admin token) may {what}")
    return caller


def user_json(found: users.User) -> dict[str, object]:
    return {"id": found.id, "email": found.email, "created_at": found.created_at}


@blueprint.post("/users")
def create_user() -> tuple[Response, int]:
    """Body: {email}. The answer holds the user's first token, shown this once."""
    require_admin("add users")
    email = access.email(json_body().get("email"))
    token = secrets.token_urlsafe(32)
    with ctx().store.transaction() as tx:  # the user and its token, or neither
        found = users.create_user(tx, email, now_iso())
        first = users.insert_token(
            tx, token_hash(token), found.principal, "first token", now_iso(), None
        )
    shown = authorization_json(first, found.principal, token)
    return jsonify({**user_json(found), "token": token, "authorization": shown}), 201


@blueprint.get("/users")
def list_users() -> tuple[Response, int]:
    require_admin("list users")
    with ctx().store.reading() as tx:
        found = users.all_users(tx)
    return protocol.listing([user_json(u) for u in found], ["email", "id"])


@blueprint.delete("/users/<ref>")
def delete_user(ref: str) -> Response:
    """The user (by email or id), their tokens (refused from now on) and their access."""
    require_admin("remove users")
    with ctx().store.transaction() as tx:
        found = users.user(tx, ref)
        users.delete_user(tx, found)
    return jsonify(user_json(found))


# --- audit ---------------------------------------------------------------------------
def audit_json(entry: users.AuditEntry) -> dict[str, object]:
    return {
        "created_at": entry.at,
        "user": {"id": entry.user_id or users.OPERATOR_ID, "email": entry.email},
        "source_ip": entry.source,
        "method": entry.method,
        "path": entry.path,
        "status": entry.status,
        "request_id": entry.request_id,
        "app": None if entry.app_id is None else {"id": entry.app_id, "name": entry.app_name},
    }


@blueprint.get("/audit")
def audit() -> Response:
    """The newest changes the caller may read (?app=APP: that app's; ?limit=N, 100)."""
    caller = principal()
    app_ref = request.args.get("app")
    app_ids = None if app_ref is None else [find_app(app_ref, Permission.VIEW).id]
    limit = request.args.get("limit", default=100, type=int)
    if limit is None or not 0 < limit <= AUDIT_LIMIT:
        raise InvalidParams(f"limit must be 1..{AUDIT_LIMIT}")
    with ctx().store.reading() as tx:
        found = users.audit_entries(tx, caller, app_ids, limit)
    return jsonify([audit_json(e) for e in found])


def record_change(response: Response) -> Response:
    """After every answered change of an authenticated caller: one audit entry."""
    caller = g.get("paas_principal")
    if request.method not in CHANGES or not isinstance(caller, Principal):
        return response
    app = g.get("paas_app")
    if not isinstance(app, App) and request.method == "POST" and request.path == "/apps":
        app = _created_app(response)
    entry = users.AuditEntry(
        at=now_iso(),
        user_id=caller.user_id,
        email=caller.email,
        source=request.remote_addr or "unknown",
        method=request.method,
        path=request.path,
        status=response.status_code,
        request_id=protocol.request_id(),
        app_id=app.id if isinstance(app, App) else None,
        app_name=app.name if isinstance(app, App) else None,
    )
    with ctx().store.transaction() as tx:
        users.record(tx, entry)
    return response


def _created_app(response: Response) -> App | None:
    """The app a `POST /apps` made, from its answer (the app's own JSON, no secret)."""
    if response.status_code != 201 or not response.is_json:
        return None
    shown = response.get_json(silent=True)
    if not isinstance(shown, dict) or not isinstance(shown.get("id"), str):
        return None
    return App(shown["id"], str(shown.get("name")), "", "")
