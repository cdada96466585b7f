"""git smart HTTP: `git push` and `git fetch` at /APP.git, authenticated like the API."""

from __future__ import annotations

from flask import Blueprint, Response, request, stream_with_context

from paas import gitservice
from paas.api.context import ctx, find_app
from paas.errors import InvalidParams

blueprint = Blueprint("git", __name__)


def checked_service(service: str | None) -> str:
    if service not in gitservice.SERVICES:
        raise InvalidParams("unsupported git service: use a git client (smart HTTP)")
    return service


@blueprint.get("/<name>.git/info/refs")
def info_refs(name: str) -> Response:
    app = find_app(name)
    service = checked_service(request.args.get("service"))
    gitservice.ensure_repo(ctx().settings, app.name)
    return Response(
        gitservice.advertise(ctx().settings, app.name, service),
        content_type=f"application/x-{service}-advertisement",
        headers={"Cache-Control": "no-cache"},
    )


@blueprint.post("/<name>.git/<service>")
def rpc(name: str, service: str) -> Response:
    app = find_app(name)
    service = checked_service(service)
    body = request.get_data()
    chunks = gitservice.serve_rpc(
        ctx().settings,
        app.name,
        service,
        body,
        request.headers.get("Content-Encoding"),
        {"PAAS_APP": app.name},
    )
    return Response(
        stream_with_context(chunks),
        content_type=f"application/x-{service}-result",
        headers={"Cache-Control": "no-cache"},
    )
