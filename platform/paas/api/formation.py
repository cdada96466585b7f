"""The formation in Heroku's shape: how many dynos of each process type run, and how big.

GET /apps/APP/formation lists it (Range over type, id); GET and PATCH
/apps/APP/formation/TYPE show and change one type; PATCH /apps/APP/formation takes
Heroku's batch {"updates": [{type, quantity, size}]}, checked whole and applied in one
transaction (paas.release.releases.scale), so a bad update changes nothing.

A formation entry's id is derived from its app's id and its type (uuid5), so it is the same
on every call and never stored; sizes leave in Heroku's spelling (Standard-1X).
"""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, jsonify

from paas.api import protocol
from paas.api.context import ctx, find_app, json_body
from paas.domain import sizes
from paas.domain.access import Permission
from paas.domain.errors import NotFound
from paas.domain.models import App
from paas.domain.procfile import formation_types
from paas.release import releases

blueprint = Blueprint("formation", __name__)
RANGE_FIELDS = ("type", "id")
_IDS = uuid.UUID("5f0e7c2a-3b1d-4c8e-9a61-0d2f4b7e8c13")  # the namespace of derived ids


def entry_id(app: App, kind: str) -> str:
    return str(uuid.uuid5(_IDS, f"formation:{app.id}:{kind}"))


def formation_json(app: App) -> list[dict[str, object]]:
    """Every process type of the latest release, in type order."""
    store = ctx().store
    latest = store.latest_release(app)
    commands = formation_types(latest.process_types if latest else {})
    stamps = store.formation_stamps(app)
    return [
        {
            "id": entry_id(app, f.type),
            "type": f.type,
            "quantity": f.quantity,
            "size": sizes.display(f.size),
            "command": commands[f.type],
            "app": {"id": app.id, "name": app.name},
            "created_at": stamps.get(f.type, (app.created_at,))[0],
            "updated_at": stamps.get(f.type, (app.created_at, app.created_at))[1],
        }
        for f in store.formation(app)
        if f.type in commands
    ]


def one(app: App, kind: str) -> dict[str, object]:
    for entry in formation_json(app):
        if entry["type"] == kind or entry["id"] == kind:
            return entry
    raise NotFound(f"no process type {kind!r} in {app.name}'s formation: `paas ps` lists them")


@blueprint.get("/apps/<name>/formation")
def list_formation(name: str) -> tuple[Response, int]:
    return protocol.listing(formation_json(find_app(name, Permission.VIEW)), RANGE_FIELDS)


@blueprint.get("/apps/<name>/formation/<kind>")
def show(name: str, kind: str) -> Response:
    return jsonify(one(find_app(name, Permission.VIEW), kind))


@blueprint.patch("/apps/<name>/formation")
def batch_update(name: str) -> Response:
    context = ctx()
    app = find_app(name, Permission.OPERATE)
    releases.scale(context.store, context.logs, app, json_body().get("updates"))
    return jsonify(formation_json(app))


@blueprint.patch("/apps/<name>/formation/<kind>")
def update(name: str, kind: str) -> Response:
    context = ctx()
    app = find_app(name, Permission.OPERATE)
    kind = str(one(app, kind)["type"]) if _is_uuid(kind) else kind
    releases.scale(context.store, context.logs, app, [{**json_body(), "type": kind}])
    return jsonify(one(app, kind))


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
