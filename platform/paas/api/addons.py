"""Add-ons and add-on attachments: the Heroku Platform API's resources of those names.

Shapes follow Heroku's (`addon_service` and `plan` {id, name}, plan as SERVICE:PLAN with a
free price, `app`, `config_vars`, `state`, `billed_price`; an attachment's `addon` and
`app`), plus Heroku's resolvers (`/actions/addons/resolve`, `/actions/addon-attachments/
resolve`) its CLI finds an add-on by. Every change goes through paas.addons.catalog, which
makes the release it needs.
Invariant: a caller sees only the add-ons of apps it may view (the owning app, or for an
attachment the app it is attached to); another's answers 404 like a missing one. Creating,
destroying, attaching and detaching need manage on the app changed; attaching another app's
add-on also needs deploy on its owner (the attachment hands over its credentials).
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Blueprint, Response, current_app, jsonify, request

from paas.addons import catalog as catalog_module
from paas.addons.catalog import Catalog
from paas.addons.service import Plan, Service
from paas.api import protocol
from paas.api.context import ctx, find_app, json_body, principal
from paas.domain import identity
from paas.domain.access import Permission
from paas.domain.addons import Addon, Attachment
from paas.domain.errors import InvalidParams, NotFound
from paas.domain.models import App

blueprint = Blueprint("addons", __name__)
RANGE_FIELDS = ("name", "id")
FREE = {"cents": 0, "contract": False, "unit": "month"}  # nothing is billed here
SERVICES_KEY = "paas_addon_services"  # the registry's, unless a test put others there


def catalog() -> Catalog:
    context = ctx()
    services: Mapping[str, Service] | None = current_app.extensions.get(SERVICES_KEY)
    if services is None:
        services = catalog_module.catalog(context.settings).services
        current_app.extensions[SERVICES_KEY] = services
    return Catalog(context.store, context.logs, context.settings.home, services, by=principal())


def _names() -> dict[str, str]:
    """The names of the apps the caller may view, by id: no other app is named (nor its
    id given) in an add-on or attachment shown to them (one listing query)."""
    return {listed.app.id: listed.app.name for listed in ctx().store.app_listing(principal())}


def _app_ref(app_id: str, names: dict[str, str]) -> dict[str, str | None]:
    """{id, name} of an app the caller may view; of any other, both null."""
    return {"id": app_id, "name": names[app_id]} if app_id in names else {"id": None, "name": None}


def visible_app_ids() -> set[str]:
    """The ids of the apps the caller may view: what add-on listings filter by (the
    listing query app_listing makes, whatever the number of apps)."""
    return {listed.app.id for listed in ctx().store.app_listing(principal())}


def service_json(service: str) -> dict[str, object]:
    return {"id": identity.derived_id("addon-service", service), "name": service}


def addon_json(addon: Addon, names: dict[str, str] | None = None) -> dict[str, object]:
    names = names if names is not None else _names()
    with ctx().store.reading() as tx:
        attachments = [a for a in tx.attachments(addon=addon) if a.app_id in names]
    found = catalog().services.get(addon.service)
    plan = found.plans.get(addon.plan) if found else None
    plan_name = f"{addon.service}:{addon.plan}"
    return {
        "id": addon.id,
        "name": addon.name,
        "addon_service": service_json(addon.service),
        "plan": {
            "id": identity.derived_id("plan", plan_name),
            "name": plan_name,
            "price": FREE,
            "memory_mb": plan.memory_mb if plan else None,
            "connections": plan.connections if plan else None,
            "summary": plan.summary if plan else None,
        },
        "app": _app_ref(addon.app_id, names),
        "state": addon.state,
        "config_vars": sorted({a.var for a in attachments if a.app_id == addon.app_id}),
        "attachments": [attachment_json(a, addon, names) for a in attachments],
        "actions": [],
        "billed_price": FREE,
        "provider_id": addon.id,
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
            "app": _app_ref(addon.app_id, names),
        },
        "addon_service": service_json(addon.service),
        "app": _app_ref(attachment.app_id, names),
        "config_var": attachment.var,
        "created_at": attachment.created_at,
        "updated_at": attachment.created_at,
        "namespace": None,
        "web_url": None,
    }


def visible_addon(ref: str) -> Addon:
    """The add-on by id or name, if its owning app is the caller's to view; else NotFound,
    whether it exists or not."""
    with ctx().store.reading() as tx:
        found = tx.find_addon(ref)
    if found is None or found.app_id not in visible_app_ids():
        raise NotFound(f"no add-on {ref!r}: `paas addons` lists them")
    return found


def _ref(body: Mapping[str, object], key: str) -> str | None:
    """A reference Heroku's clients give as a string or as {"name"|"id": ...}."""
    value = body.get(key)
    if isinstance(value, dict):
        value = value.get("name") or value.get("id")
    if value is not None and not isinstance(value, str):
        raise InvalidParams(f'{key} must be a name, an id or {{"name": ...}}')
    return value or None


def plan_json(service: Service, plan: Plan) -> dict[str, object]:
    name = f"{service.name}:{plan.name}"
    return {
        "id": identity.derived_id("plan", name),
        "name": name,
        "description": plan.summary,
        "default": plan.name == service.default_plan,
        "price": FREE,
        "state": "public",
        "addon_service": service_json(service.name),
        "memory_mb": plan.memory_mb,
        "connections": plan.connections,
    }


def addon_service(ref: str) -> Service:
    """A service by its name, one of its aliases (heroku-postgresql) or its id."""
    services = catalog().services
    by_id = {identity.derived_id("addon-service", n): n for n in services}
    name = by_id.get(ref) or catalog().aliases().get(ref)
    if name is None:
        raise NotFound(f"the add-on service {ref} is not available on this platform")
    return services[name]


def service_shown(service: Service) -> dict[str, object]:
    return {
        **service_json(service.name),
        "human_name": service.name,
        "state": "ga",
        "supports_multiple_installations": True,
        "supports_sharing": True,
        "aliases": list(service.aliases),
    }


@blueprint.get("/addon-services")
def list_addon_services() -> tuple[Response, int]:
    shown = [service_shown(s) for s in catalog().services.values()]
    return protocol.listing(shown, RANGE_FIELDS)


@blueprint.get("/addon-services/<ref>")
def show_addon_service(ref: str) -> Response:
    return jsonify(service_shown(addon_service(ref)))


@blueprint.get("/addon-services/<ref>/plans")
def list_plans(ref: str) -> tuple[Response, int]:
    service = addon_service(ref)
    shown = [plan_json(service, p) for p in service.plans.values()]
    return protocol.listing(shown, RANGE_FIELDS)


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
    plan = _ref(body, "plan")  # Heroku's CLI sends {"plan": {"name": ...}}
    if plan is None:
        raise InvalidParams('plan is required, e.g. {"plan": "postgresql:hobby"}')
    if body.get("config"):
        raise InvalidParams("add-on config options are not supported here: give none")
    attachment = body.get("attachment") or {}
    if not isinstance(attachment, dict):
        raise InvalidParams('attachment must be an object such as {"name": "DATABASE"}')
    addon, _ = catalog().create(
        app, plan, as_name=_optional_text(attachment, "name"), name=_optional_text(body, "name")
    )
    return jsonify(addon_json(addon)), 201


@blueprint.get("/apps/<name>/addons")
def list_app_addons(name: str) -> tuple[Response, int]:
    """The add-ons attached to the app (its own and others'), as Heroku lists them."""
    app = find_app(name, Permission.VIEW)
    with ctx().store.reading() as tx:
        ids = dict.fromkeys(a.addon_id for a in tx.attachments(app=app))
        found = [tx.find_addon(i) for i in ids]
        owned = tx.addons(app)
    addons = {a.id: a for a in [*owned, *(f for f in found if f is not None)]}
    names = _names()
    return protocol.listing([addon_json(a, names) for a in addons.values()], RANGE_FIELDS)


@blueprint.get("/addons")
def list_addons() -> tuple[Response, int]:
    """The add-ons of every app the caller may view."""
    visible = visible_app_ids()
    with ctx().store.reading() as tx:
        addons = [a for a in tx.addons() if a.app_id in visible]
    names = _names()
    return protocol.listing([addon_json(a, names) for a in addons], RANGE_FIELDS)


@blueprint.get("/addons/<ref>")
def show_addon(ref: str) -> Response:
    return jsonify(addon_json(visible_addon(ref)))


@blueprint.post("/actions/addons/resolve")
def resolve_addon() -> Response:
    """Heroku's resolver: the add-ons `addon` (an id, a name, or with `app` an attachment's
    name there) names, as a list; with `app`, those of that app first, then any by id or
    name. None: 404 with `resource: add_on`, which Heroku's CLI looks for."""
    body = json_body()
    ref, app_ref, service = _ref(body, "addon"), _ref(body, "app"), _ref(body, "addon_service")
    if ref is None:
        raise InvalidParams('addon is required: {"addon": "NAME", "app": "APP"}')
    found: list[Addon] = []
    if app_ref is not None:
        try:
            found = [app_addon(find_app(app_ref, Permission.VIEW), ref)]
        except NotFound:
            found = []
    if not found:
        try:
            found = [visible_addon(ref)]
        except NotFound:
            found = []
    found = [a for a in found if service in (None, a.service)]
    if not found:
        return _not_found("add_on", f"no add-on {ref!r}: `paas addons` lists them")
    names = _names()
    return jsonify([addon_json(a, names) for a in found])


def _not_found(resource: str, message: str) -> Response:
    response = jsonify(id="not_found", message=message, resource=resource)
    response.status_code = 404
    return response


def app_addon(app: App, ref: str) -> Addon:
    """An add-on by id or name, or by the name of one of the app's attachments (Heroku's
    `addons:info DATABASE -a APP`)."""
    addons = catalog()
    with ctx().store.reading() as tx:
        found = tx.find_addon(ref)
        attachment = None if found else tx.find_attachment(ref, app)
    if found is None and attachment is not None:
        return addons.addon(attachment.addon_id)
    return found if found is not None and app_sees(app, found) else visible_addon(ref)


def app_sees(app: App, addon: Addon) -> bool:
    """Whether the add-on is the app's own or attached to it."""
    if addon.app_id == app.id:
        return True
    with ctx().store.reading() as tx:
        return any(a.app_id == app.id for a in tx.attachments(addon=addon))


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


def visible_attachments(attachments: list[Attachment]) -> list[dict[str, object]]:
    """The attachments to apps the caller may view, shown with their add-ons."""
    visible, names, addons = visible_app_ids(), _names(), catalog()
    return [
        attachment_json(a, addons.addon(a.addon_id), names)
        for a in attachments
        if a.app_id in visible
    ]


@blueprint.get("/addons/<ref>/addon-attachments")
def list_addon_attachments(ref: str) -> tuple[Response, int]:
    with ctx().store.reading() as tx:
        attachments = tx.attachments(addon=visible_addon(ref))
    return protocol.listing(visible_attachments(attachments), RANGE_FIELDS)


@blueprint.get("/addon-attachments")
def list_attachments() -> tuple[Response, int]:
    """Every attachment to an app the caller may view (`heroku addons -a APP` reads it)."""
    with ctx().store.reading() as tx:
        attachments = tx.attachments()
    return protocol.listing(visible_attachments(attachments), RANGE_FIELDS)


@blueprint.get("/apps/<name>/addon-attachments")
def list_app_attachments(name: str) -> tuple[Response, int]:
    app = find_app(name, Permission.VIEW)
    with ctx().store.reading() as tx:
        attachments = tx.attachments(app=app)
    return protocol.listing(visible_attachments(attachments), RANGE_FIELDS)


@blueprint.get("/apps/<name>/addon-attachments/<ref>")
def show_app_attachment(name: str, ref: str) -> Response:
    app, addons = find_app(name, Permission.VIEW), catalog()
    attachment = addons.attachment(ref, app)
    if attachment.app_id != app.id:
        raise NotFound(f"no add-on attachment {ref!r} on {app.name}: `paas addons` lists them")
    return jsonify(attachment_json(attachment, addons.addon(attachment.addon_id)))


@blueprint.post("/actions/addon-attachments/resolve")
def resolve_attachment() -> Response:
    """Heroku's resolver: the attachments `addon_attachment` names (an id, or a name on
    `app`), as a list; none: 404 with `resource: add_on attachment`."""
    body = json_body()
    ref, app_ref = _ref(body, "addon_attachment"), _ref(body, "app")
    if ref is None:
        raise InvalidParams('addon_attachment is required: {"addon_attachment": "DATABASE"}')
    app = None if app_ref is None else find_app(app_ref, Permission.VIEW)
    with ctx().store.reading() as tx:
        found = tx.find_attachment(ref, app)
    shown = visible_attachments([found] if found is not None else [])
    if not shown:
        return _not_found("add_on attachment", f"no add-on attachment {ref!r}")
    return jsonify(shown)


@blueprint.post("/addon-attachments")
def create_attachment() -> tuple[Response, int]:
    """Body: {"addon": ID_OR_NAME, "app": ID_OR_NAME, "name": "OTHER_DB"} (either may be
    {"name": ...}, as Heroku's CLI sends them)."""
    body = json_body()
    addon_ref, app_ref = _ref(body, "addon"), _ref(body, "app")
    if addon_ref is None or app_ref is None:
        raise InvalidParams('addon and app are required: {"addon": "NAME", "app": "APP"}')
    app = find_app(app_ref, Permission.MANAGE)
    addon = visible_addon(addon_ref)
    find_app(addon.app_id, Permission.MANAGE)  # its credentials go to the other app
    addons = catalog()
    attachment = addons.attach(addon.id, app, _optional_text(body, "name"))
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
