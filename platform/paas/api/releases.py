"""Releases (list, rollback) and builds."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from paas import releases as release_logic
from paas.api.context import ctx, find_app, json_body
from paas.errors import InvalidParams
from paas.store import Release

blueprint = Blueprint("releases", __name__)


def release_json(release: Release, current: int | None) -> dict[str, object]:
    return {
        "id": release.id,
        "version": release.version,
        "description": release.description,
        "status": "succeeded",
        "current": release.version == current,
        "created_at": release.created_at,
        "artifact": release.artifact,
        "process_types": release.process_types,
    }


@blueprint.get("/apps/<name>/releases")
def list_releases(name: str) -> Response:
    found = ctx().store.releases(find_app(name))
    current = found[-1].version if found else None
    return jsonify([release_json(r, current) for r in found])


@blueprint.post("/apps/<name>/releases")
def rollback(name: str) -> tuple[Response, int]:
    context = ctx()
    target = json_body().get("release")
    if isinstance(target, str) and target.lstrip("v").isdigit():
        target = int(target.lstrip("v"))
    if target is not None and (not isinstance(target, int) or isinstance(target, bool)):
        raise InvalidParams("release must be a version number such as 3")
    release = release_logic.rollback(context.store, context.logs, find_app(name), target)
    return jsonify(release_json(release, release.version)), 201


@blueprint.get("/apps/<name>/builds")
def list_builds(name: str) -> Response:
    return jsonify(
        [
            {
                "id": b.id,
                "status": b.status,
                "source_version": b.source_version,
                "artifact": b.artifact,
                "created_at": b.created_at,
                "finished_at": b.finished_at,
                "output": b.output,
            }
            for b in ctx().store.builds(find_app(name))
        ]
    )
