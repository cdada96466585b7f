"""pg:backups over the API: capture, list, restore, download and the daily schedule of
the postgresql add-on an app has attached (as DATABASE unless the request names another
attachment, `HEROKU_POSTGRESQL_ROSE` or `ROSE_URL`...).

Invariant: a request reaches only an add-on the app has attached: the add-on is found
from the app's attachment (`attached_postgresql`), never from an id the client gives.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify, request, send_file

from paas.addons.backups import Backups
from paas.addons.postgresql import PostgreSQL
from paas.api.context import ctx, find_app, json_body
from paas.domain import addons
from paas.domain.access import Permission
from paas.domain.errors import InvalidParams, NotFound

blueprint = Blueprint("pg", __name__)


def config_var(attachment: object) -> str:
    """`DATABASE`, `DATABASE_URL` or none (DATABASE) to the config var's name, by the
    add-ons' own rule for attachment names (paas.domain.addons)."""
    name = "DATABASE" if attachment in (None, "") else attachment
    if isinstance(name, str):
        name = name.upper().removesuffix("_URL")
    return addons.var_name(addons.attachment_name(name))


def attached_postgresql(app_name: str, attachment: object) -> tuple[PostgreSQL, str]:
    """The postgresql add-on the app has attached under that name (DATABASE by default),
    from the add-on store's attachments."""
    context = ctx()
    app = find_app(app_name, Permission.MANAGE)
    name = config_var(attachment).removesuffix("_URL")
    with context.store.reading() as tx:
        found = tx.find_attachment(name, app)
        addon = None if found is None or found.app_id != app.id else tx.find_addon(found.addon_id)
    if addon is None or addon.service != PostgreSQL.name:
        raise NotFound(
            f"app {app_name} has no postgresql add-on attached as {name}: create one with "
            f"`paas addons:create postgresql -a {app_name}` (see `paas addons -a {app_name}`)"
        )
    return PostgreSQL(context.settings), addon.id


def _target(name: str, attachment: object) -> tuple[PostgreSQL, Backups]:
    postgresql, addon_id = attached_postgresql(name, attachment)
    return postgresql, Backups(ctx().settings, addon_id)


@blueprint.get("/apps/<name>/pg/backups")
def list_backups(name: str) -> Response:
    _, backups = _target(name, request.args.get("database"))
    return jsonify([b.as_json() for b in backups.list()])


@blueprint.post("/apps/<name>/pg/backups")
def capture(name: str) -> tuple[Response, int]:
    postgresql, backups = _target(name, json_body().get("database"))
    backup = backups.capture(postgresql, scheduled=False, now=datetime.now(UTC))
    return jsonify(backup.as_json()), 201


@blueprint.post("/apps/<name>/pg/backups/restore")
def restore(name: str) -> Response:
    body = json_body()
    backup_id = body.get("backup")
    if backup_id is not None and not isinstance(backup_id, str):
        raise InvalidParams("backup must be a backup id such as b001")
    postgresql, backups = _target(name, body.get("database"))
    return jsonify(backups.restore(postgresql, backup_id or None).as_json())


@blueprint.get("/apps/<name>/pg/backups/<backup_id>/download")
def download(name: str, backup_id: str) -> Response:
    _, backups = _target(name, request.args.get("database"))
    backup = backups.get(None if backup_id == "latest" else backup_id)
    return send_file(
        backups.dump_path(backup),
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=f"{backup.id}.dump",
    )


@blueprint.get("/apps/<name>/pg/backups/schedule")
def show_schedule(name: str) -> Response:
    _, backups = _target(name, request.args.get("database"))
    schedule = backups.schedule()
    return jsonify({"at": None if schedule is None else schedule.at})


@blueprint.put("/apps/<name>/pg/backups/schedule")
def set_schedule(name: str) -> Response:
    body = json_body()
    at = body.get("at")
    if not isinstance(at, str):
        raise InvalidParams("at is required: a time of day such as '02:00 UTC'")
    _, backups = _target(name, body.get("database"))
    return jsonify({"at": backups.set_schedule(at, datetime.now(UTC)).at})


@blueprint.delete("/apps/<name>/pg/backups/schedule")
def unschedule(name: str) -> Response:
    _, backups = _target(name, request.args.get("database"))
    backups.unschedule()
    return jsonify({"at": None})
