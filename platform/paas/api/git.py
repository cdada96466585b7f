"""git smart HTTP: `git push` and `git fetch` at /APP.git, authenticated like the API."""

from __future__ import annotations

from flask import Blueprint, Response, request

from paas.api.context import ctx, find_app, principal
from paas.domain.access import Permission, Principal
from paas.domain.errors import InvalidParams, TooLarge
from paas.push import gitservice

blueprint = Blueprint("git", __name__)


def checked_service(service: str | None) -> str:
    if service not in gitservice.SERVICES:
        raise InvalidParams("unsupported git service: use a git client (smart HTTP)")
    return service


def pusher_env(caller: Principal) -> dict[str, str]:
    """Who pushes, for the pre-receive hook (paas.push.hook.pusher) to record on the build
    and release it makes."""
    return {
        "PAAS_USER_ID": caller.user_id or "",
        "PAAS_USER_EMAIL": caller.email,
        "PAAS_USER_ADMIN": "1" if caller.admin else "0",
    }


@blueprint.get("/<name>.git/info/refs")
def info_refs(name: str) -> Response:
    app = find_app(name, Permission.DEPLOY)
    service = checked_service(request.args.get("service"))
    gitservice.ensure_repo(ctx().settings, app.name)
    return Response(
        gitservice.advertise(ctx().settings, app.name, service),
        content_type=f"application/x-{service}-advertisement",
        headers={"Cache-Control": "no-cache"},
    )


@blueprint.post("/<name>.git/<service>")
def rpc(name: str, service: str) -> Response:
    app = find_app(name, Permission.DEPLOY)
    service = checked_service(service)
    settings = ctx().settings
    length = request.content_length
    if length is not None and length > settings.max_push_bytes:
        raise TooLarge(gitservice.too_large_message(settings.max_push_bytes))
    # The body is streamed into git, never read whole (request.stream, not get_data).
    rpc = gitservice.open_rpc(
        settings,
        app.name,
        service,
        request.stream,
        request.headers.get("Content-Encoding"),
        {"PAAS_APP": app.name, **pusher_env(principal())},
    )
    return Response(
        rpc,
        content_type=f"application/x-{service}-result",
        headers={"Cache-Control": "no-cache"},
    )
