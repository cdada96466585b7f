"""Add-ons and add-on attachments: the Heroku Platform API's resources of those names.

Shapes follow Heroku's (`addon_service`, `plan` as SERVICE:PLAN, `app`, `config_vars`,
`state`; an attachment's `addon` and `app`); every change goes through
paas.addons.catalog, which makes the release it needs.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Blueprint, Response, current_app, jsonify, request

from paas.addons import catalog as catalog_module
from paas.addons.catalog import Catalog
from paas.addons.service import Service
from paas.api.context import ctx, find_app, json_body, principal
from paas.domain.access import Permission
from paas.domain.addons import Addon, Attachment
from paas.domain.errors import InvalidParams
from paas.domain.models import App

blueprint = Blueprint("addons", __name__)
SERVICES_KEY = "paas_addon_services"  # the registry's, unless a test put others there


def catalog() -> Catalog:
    context = ctx()
    services: Mapping[str, Service] | None = current_app.extensions.get(SERVICES_KEY)
    if services is None:
        services = catalog_module.catalog(context.settings).services
        current_app.extensions[SERVICES_KEY] = services
    return Catalog(context.store, context.logs, context.settings.home, services, by=principal())


def _names() -> dict[str, str]:
    with ctx().store.reading() as tx:
        return tx.app_names()


def addon_json(addon: Addon, names: dict[str, str] | None = None) -> dict[str, object]:
    names = names if names is not None else _names()
    with ctx().store.reading() as tx:
        attachments = tx.attachments(addon=addon)
    found = catalog().services.get(addon.service)
    plan = found.plans.get(addon.plan) if found else None
    return {
        "id": addon.id,
        "name": addon.name,
        "addon_service": {"id": addon.service, "name": addon.service},
        "plan": {
            "id": f"{addon.service}:{addon.plan}",
            "name": f"{addon.service}:{addon.plan}",
            "memory_mb": plan.memory_mb if plan else None,
            "connections": plan.connections if plan else None,
            "summary": plan.summary if plan else None,
        },
        "app": {"id": addon.app_id, "name": names.get(addon.app_id)},
        "state": addon.state,
        "config_vars": sorted({a.var for a in attachments if a.app_id == addon.app_id}),
        "attachments": [attachment_json(a, addon, names) for a in attachments],
        "created_at": addon.created_at,
        "updated_at": addon.created_at,
        "web_url": None,
    }


def attachment_json(
    attachment: Attachment, addon: Addon, names: dict[str, str] | None = None
) -> dict[str, object]:
    names = names if names is not None else _names()
    return {
        "id": attachment.id,
        "name": attachment.name,
        "addon": {
            "id": addon.id,
            "name": addon.name,
            "app": {"id": addon.app_id, "name": names.get(addon.app_id)},
        },
        "app": {"id": attachment.app_id, "name": names.get(attachment.app_id)},
        "config_var": attachment.var,
        "created_at": attachment.created_at,
        "updated_at": attachment.created_at,
        "namespace": None,
    }


def _optional_text(body: Mapping[str, object], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidParams(f"{key} must be a string")
    return value or None


@blueprint.post("/apps/<name>/addons")
def create_addon(name: str) -> tuple[Response, int]:
    """Body: {"plan": "postgresql" | "heroku-postgresql:hobby", "attachment": {"name":
    "DATABASE"}, "name": "orders-db"}."""
    app, body = find_app(name, Permission.MANAGE), json_body()
    plan = _optional_text(body, "plan")
    if plan is None:
        raise InvalidParams('plan is required, e.g. {"plan": "postgresql:hobby"}')
    attachment = body.get("attachment") or {}
    if not isinstance(attachment, dict):
        raise InvalidParams('attachment must be an object such as {"name": "DATABASE"}')
    addon, _ = catalog().create(
        app, plan, as_name=_optional_text(attachment, "name"), name=_optional_text(body, "name")
    )
    return jsonify(addon_json(addon)), 201


@blueprint.get("/apps/<name>/addons")
def list_app_addons(name: str) -> Response:
    """The add-ons attached to the app (its own and others'), as Heroku lists them."""
    app = find_app(name, Permission.VIEW)
    with ctx().store.reading() as tx:
        ids = dict.fromkeys(a.addon_id for a in tx.attachments(app=app))
        found = [tx.find_addon(i) for i in ids]
        owned = tx.addons(app)
    addons = {a.id: a for a in [*owned, *(f for f in found if f is not None)]}
    names = _names()
    return jsonify([addon_json(a, names) for a in sorted(addons.values(), key=lambda a: a.name)])


@blueprint.get("/addons")
def list_addons() -> Response:
    with ctx().store.reading() as tx:
        addons = tx.addons()
    names = _names()
    return jsonify([addon_json(a, names) for a in addons])


@blueprint.get("/addons/<ref>")
def show_addon(ref: str) -> Response:
    addon = catalog().addon(ref)
    find_app(addon.app_id, Permission.VIEW)  # another user's add-on is as missing as its app
    return jsonify(addon_json(addon))


def app_addon(app: App, ref: str) -> Addon:
    """An add-on by id or name, or by the name of one of the app's attachments (Heroku's
    `addons:info DATABASE -a APP`)."""
    addons = catalog()
    with ctx().store.reading() as tx:
        found = tx.find_addon(ref)
        attachment = None if found else tx.find_attachment(ref, app)
    if found is None and attachment is not None:
        return addons.addon(attachment.addon_id)
    return found or addons.addon(ref)


@blueprint.get("/apps/<name>/addons/<ref>")
def show_app_addon(name: str, ref: str) -> Response:
    return jsonify(addon_json(app_addon(find_app(name, Permission.VIEW), ref)))


@blueprint.delete("/apps/<name>/addons/<ref>")
def destroy_addon(name: str, ref: str) -> Response:
    """As Heroku's API, no confirmation is needed (the CLI asks for --confirm APP); one
    given (?confirm=APP or {"confirm": APP}) must name the owning app."""
    app = find_app(name, Permission.MANAGE)
    addons = catalog()
    addon = app_addon(app, ref)
    if addon.app_id != app.id:
        raise InvalidParams(f"{addon.name} is not owned by {app.name}: destroy it from its owner")
    confirm = request.args.get("confirm") or _optional_text(json_body(), "confirm")
    if confirm is not None and confirm != app.name:
        raise InvalidParams(
            f"confirm names {confirm!r}, not the owning app {app.name}: give --confirm {app.name}"
        )
    shown = addon_json(addon)
    addons.destroy(addon.id)
    return jsonify({**shown, "state": "deprovisioned"})


@blueprint.get("/addons/<ref>/addon-attachments")
def list_addon_attachments(ref: str) -> Response:
    addon = catalog().addon(ref)
    find_app(addon.app_id, Permission.VIEW)
    with ctx().store.reading() as tx:
        attachments = tx.attachments(addon=addon)
    names = _names()
    return jsonify([attachment_json(a, addon, names) for a in attachments])


@blueprint.get("/apps/<name>/addon-attachments")
def list_app_attachments(name: str) -> Response:
    app, addons = find_app(name, Permission.VIEW), catalog()
    with ctx().store.reading() as tx:
        attachments = tx.attachments(app=app)
    names = _names()
    return jsonify([attachment_json(a, addons.addon(a.addon_id), names) for a in attachments])


@blueprint.get("/apps/<name>/addon-attachments/<ref>")
def show_app_attachment(name: str, ref: str) -> Response:
    app, addons = find_app(name, Permission.VIEW), catalog()
    attachment = addons.attachment(ref, app)
    return jsonify(attachment_json(attachment, addons.addon(attachment.addon_id)))


@blueprint.post("/addon-attachments")
def create_attachment() -> tuple[Response, int]:
    """Body: {"addon": ID_OR_NAME, "app": ID_OR_NAME, "name": "OTHER_DB"}."""
    body = json_body()
    addon_ref, app_ref = _optional_text(body, "addon"), _optional_text(body, "app")
    if addon_ref is None or app_ref is None:
        raise InvalidParams('addon and app are required: {"addon": "NAME", "app": "APP"}')
    app, addons = find_app(app_ref, Permission.MANAGE), catalog()
    find_app(addons.addon(addon_ref).app_id, Permission.MANAGE)  # its owner's, too
    attachment = addons.attach(addon_ref, app, _optional_text(body, "name"))
    return jsonify(attachment_json(attachment, addons.addon(attachment.addon_id))), 201


@blueprint.delete("/addon-attachments/<ref>")
def delete_attachment(ref: str) -> Response:
    addons = catalog()
    attachment = addons.attachment(ref)
    find_app(attachment.app_id, Permission.MANAGE)
    addon = addons.addon(attachment.addon_id)
    shown = attachment_json(attachment, addon)
    addons.detach(attachment)
    return jsonify(shown)
