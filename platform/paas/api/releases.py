"""Releases (list, rollback) and builds."""

from __future__ import annotations

import itertools

from flask import Blueprint, Response, jsonify, stream_with_context

from paas.api.context import ctx, find_app, json_body
from paas.artifacts.images import ImageStore
from paas.artifacts.slugs import SlugStore
from paas.domain import validation
from paas.domain.access import Permission
from paas.domain.errors import NotFound
from paas.domain.models import Release
from paas.release import releases as release_logic

blueprint = Blueprint("releases", __name__)


def release_json(release: Release, current: int | None) -> dict[str, object]:
    return {
        "id": release.id,
        "version": release.version,
        "description": release.description,
        "status": release.status,
        "status_detail": release.status_detail,
        "current": release.version == current,
        "created_at": release.created_at,
        "artifact": release.artifact,
        "process_types": release.process_types,
    }


@blueprint.get("/apps/<name>/releases")
def list_releases(name: str) -> Response:
    store = ctx().store
    app = find_app(name, Permission.VIEW)
    current = store.current_release(app)
    version = current.version if current else None
    return jsonify([release_json(r, version) for r in store.releases(app)])


@blueprint.post("/apps/<name>/releases")
def rollback(name: str) -> tuple[Response, int]:
    context = ctx()
    given = json_body().get("release")
    target = None if given is None else validation.release_version(given)
    images = ImageStore(context.settings.images_dir)
    slugs = SlugStore(context.settings.slugs_dir)
    release = release_logic.rollback(
        context.store,
        context.logs,
        find_app(name, Permission.DEPLOY),
        target,
        images.has,
        slugs.has,
    )
    current = context.store.current_release(find_app(name, Permission.DEPLOY))
    return jsonify(release_json(release, current.version if current else None)), 201


@blueprint.get("/apps/<name>/releases/<version>/image")
def export_image(name: str, version: str) -> Response:
    """The release's OCI image as an oci-archive (refs: its process types)."""
    context = ctx()
    app = find_app(name, Permission.DEPLOY)
    if version == "current":
        release = context.store.current_release(app)
        if release is None:
            raise NotFound(f"{app.name} has no releases yet: push code first")
    else:
        release = context.store.release(app, validation.release_version(version))
    if release.image is None:
        raise NotFound(
            f"v{release.version} of {app.name} has no OCI image (its stack was not built)"
        )
    chunks = ImageStore(context.settings.images_dir).export(release.image)
    first = next(chunks)  # a collected image fails here, before the response starts
    return Response(
        stream_with_context(itertools.chain([first], chunks)),
        content_type="application/x-tar",
        headers={"Content-Disposition": f"attachment; filename={app.name}-v{release.version}.tar"},
    )


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
            for b in ctx().store.builds(find_app(name, Permission.VIEW))
        ]
    )
