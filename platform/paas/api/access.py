"""Who may use an app: its collaborators (Heroku's personal `/apps/{app}/collaborators` and
Teams' `/teams/apps/{app}/collaborators` with permissions), `/teams/permissions`, and
transferring an app to another owner (`/account/app-transfers`).

Reading the list needs view on the app; changing it needs manage; a transfer is the
owner's (or the operator's). A collaborator added without permissions (what Heroku's CLI
sends for a personal app) gets DEFAULT_PERMISSION. Invariant: the owner is listed too,
with every permission, and is never a collaborator row; an app another user cannot see is
404 for them, here as everywhere (context.find_app).
"""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, jsonify

from paas.api import apps as apps_api
from paas.api import protocol
from paas.api.context import ctx, find_app, json_body, principal
from paas.domain import access, identity
from paas.domain.access import Permission, Principal
from paas.domain.errors import Forbidden, InvalidParams
from paas.domain.models import App
from paas.state import users
from paas.state.store import now_iso

blueprint = Blueprint("access", __name__)
DEFAULT_PERMISSION = Permission.DEPLOY
DESCRIPTIONS = {
    Permission.VIEW: "See the app: its releases, builds, dynos, logs and settings, but not "
    "its config values",
    Permission.DEPLOY: "Push and roll back the app, and read its config vars",
    Permission.OPERATE: "Scale, restart, stop and run dynos of the app",
    Permission.MANAGE: "Change the app's config vars, domains, add-ons, buildpacks, stack "
    "and access, and destroy it",
}
ROUTES = ("/apps/<name>/collaborators", "/teams/apps/<name>/collaborators")


def permissions_json(level: Permission) -> list[dict[str, str]]:
    """Heroku's implied list: the permission and those before it."""
    return [{"name": p.label, "description": DESCRIPTIONS[p]} for p in Permission if p <= level]


def _user_json(user_id: str | None, email: str) -> dict[str, object]:
    return {**identity.user(user_id, email), "federated": False}


def owner_json(app: App, owner: Principal) -> dict[str, object]:
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"paas:owner:{app.id}:{owner.user_id}")),
        "app": {"id": app.id, "name": app.name},
        "user": _user_json(owner.user_id, owner.email),
        "role": "owner",
        "permissions": permissions_json(Permission.MANAGE),
        "created_at": app.created_at,
        "updated_at": app.created_at,
    }


def collaborator_json(app: App, found: users.Collaborator) -> dict[str, object]:
    return {
        "id": found.id,
        "app": {"id": app.id, "name": app.name},
        "user": _user_json(found.user.id, found.user.email),
        "role": "collaborator",
        "permissions": permissions_json(found.permission),
        "created_at": found.created_at,
        "updated_at": found.updated_at,
    }


def _permission(body: dict[str, object]) -> Permission:
    given = body.get("permissions")
    if given is None or given == [] or given == "":
        return DEFAULT_PERMISSION
    if isinstance(given, list) and all(isinstance(p, dict) for p in given):
        given = [p.get("name") for p in given if isinstance(p, dict)]  # Heroku's own shape
    return access.parse_permission(given)


def _named_user(body: dict[str, object]) -> str:
    """`user`: an email or id (Heroku sends the email), or {email} / {id}."""
    given = body.get("user")
    if isinstance(given, dict):
        given = given.get("email") or given.get("id")
    if not isinstance(given, str) or not given.strip():
        raise InvalidParams('user is required: {"user": "ada@example.com"}')
    return given.strip()


def _list(name: str) -> tuple[Response, int]:
    app = find_app(name, Permission.VIEW)
    store = ctx().store
    with store.reading() as tx:
        owner, found = users.owner(tx, app.id), users.collaborators(tx, app.id)
    items = [owner_json(app, owner), *(collaborator_json(app, c) for c in found)]
    return protocol.listing(items, ["id"])


def _grant(name: str, new: bool, ref: str | None = None) -> tuple[Response, int]:
    app, body = find_app(name, Permission.MANAGE), json_body()
    level = _permission(body)
    with ctx().store.transaction() as tx:
        who = users.user(tx, ref if ref is not None else _named_user(body))
        found = users.grant(tx, app.id, who, level, now_iso(), new=new)
    return jsonify(collaborator_json(app, found)), 201 if new else 200


def _show(name: str, ref: str) -> Response:
    app = find_app(name, Permission.VIEW)
    with ctx().store.reading() as tx:
        owner = users.owner(tx, app.id)
        if ref.lower() in (owner.email.lower(), owner.user_id or users.OPERATOR_ID):
            return jsonify(owner_json(app, owner))
        return jsonify(collaborator_json(app, users.collaborator(tx, app.id, ref)))


def _remove(name: str, ref: str) -> Response:
    app = find_app(name, Permission.MANAGE)
    with ctx().store.transaction() as tx:
        owner = users.owner(tx, app.id)
        if ref.lower() == owner.email.lower() or ref == owner.user_id:
            raise InvalidParams(
                f"{owner.email} owns {app.name}: transfer it first (`paas apps:transfer`)"
            )
        found = users.remove(tx, app.id, ref)
    return jsonify(collaborator_json(app, found))


for _route in ROUTES:
    _tag = _route.split("/")[1]
    blueprint.add_url_rule(_route, f"list_{_tag}", _list, methods=["GET"])
    blueprint.add_url_rule(
        _route, f"add_{_tag}", lambda name: _grant(name, new=True), methods=["POST"]
    )
    blueprint.add_url_rule(f"{_route}/<ref>", f"show_{_tag}", _show, methods=["GET"])
    blueprint.add_url_rule(
        f"{_route}/<ref>",
        f"update_{_tag}",
        lambda name, ref: _grant(name, new=False, ref=ref),
        methods=["PATCH"],
    )
    blueprint.add_url_rule(f"{_route}/<ref>", f"remove_{_tag}", _remove, methods=["DELETE"])


@blueprint.get("/teams/permissions")
def team_permissions() -> Response:
    """The four permissions, lowest first (what `heroku access` may show for admins)."""
    return jsonify(permissions_json(Permission.MANAGE))


def _ref(body: dict[str, object], key: str, example: str) -> str:
    """A name, email or id given as text or as Heroku's nested {name|email|id}."""
    given = body.get(key)
    if isinstance(given, dict):
        given = given.get("name") or given.get("email") or given.get("id")
    if not isinstance(given, str) or not given.strip():
        raise InvalidParams(f"{key} is required: {example}")
    return given.strip()


def _give(app: App, recipient: str) -> tuple[Principal, users.User]:
    """The owner change: the owner's or the operator's to make; the recipient a user."""
    caller = principal()
    with ctx().store.transaction() as tx:
        old = users.owner(tx, app.id)
        if not caller.admin and caller.user_id != old.user_id:
            raise Forbidden(f"only {old.email}, the owner of {app.name}, may transfer it")
        new = users.user(tx, recipient)
        users.set_owner(tx, app.id, new.principal)
    return old, new


@blueprint.patch("/teams/apps/<name>")
def transfer_team_app(name: str) -> Response:
    """Body: {owner: EMAIL}: Heroku's transfer of a team app, here the same owner change."""
    app = find_app(name, Permission.VIEW)
    _give(app, _ref(json_body(), "owner", '{"owner": "ada@example.com"}'))
    return jsonify(apps_api.app_json(app))


@blueprint.post("/account/app-transfers")
def transfer() -> tuple[Response, int]:
    """Body: {app, recipient}. paas completes it at once (state accepted): the recipient is
    a user of this platform, the old owner keeps nothing unless a collaborator."""
    body = json_body()
    app_ref = _ref(body, "app", '{"app": "shop", "recipient": "ada@example.com"}')
    recipient = _ref(body, "recipient", '{"recipient": "ada@example.com"}')
    app = find_app(app_ref, Permission.VIEW)
    old, new = _give(app, recipient)
    now = now_iso()
    return jsonify(
        {
            "id": str(uuid.uuid4()),
            "app": {"id": app.id, "name": app.name},
            "owner": _user_json(old.user_id, old.email),
            "recipient": _user_json(new.id, new.email),
            "state": "accepted",
            "created_at": now,
            "updated_at": now,
        }
    ), 201
