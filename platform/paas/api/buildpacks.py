"""An app's buildpacks, shaped like the Heroku Platform API's buildpack installations.

GET /apps/{app}/buildpack-installations lists them in build order (a Range listing by
`ordinal`); PUT replaces them all with its `updates` (Heroku's CLI sends the URL, or a
name it resolved through Heroku's buildpack registry: offline, a name such as
heroku/python fails in the CLI before anything is sent, so give a URL).
Invariant: every URL passes the allow-list's check (the one the build makes) before
anything is stored; one bad URL stores nothing.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from paas.api import protocol
from paas.api.context import ctx, find_app, json_body
from paas.domain import buildpack_source
from paas.domain.access import Permission
from paas.domain.errors import BuildFailed, InvalidParams
from paas.domain.models import App
from paas.push import builder

blueprint = Blueprint("buildpacks", __name__)


def installations(app: App) -> list[dict[str, object]]:
    return [
        {"buildpack": {"url": url, "name": url}, "ordinal": ordinal}
        for ordinal, url in enumerate(ctx().store.buildpacks(app))
    ]


@blueprint.get("/apps/<name>/buildpack-installations")
def list_buildpacks(name: str) -> tuple[Response, int]:
    return protocol.listing(installations(find_app(name, Permission.VIEW)), ("ordinal",))


@blueprint.put("/apps/<name>/buildpack-installations")
def replace_buildpacks(name: str) -> Response:
    context = ctx()
    app = find_app(name, Permission.MANAGE)
    urls = checked_urls(json_body().get("updates"), context.settings.buildpack_sources)
    context.store.set_buildpacks(app, urls)
    return jsonify(installations(app))


def checked_urls(updates: object, prefixes: tuple[str, ...]) -> list[str]:
    """The `updates` list's URLs, each allowed; InvalidParams for the first that is not."""
    if not isinstance(updates, list) or not all(
        isinstance(u, dict) and isinstance(u.get("buildpack"), str) for u in updates
    ):
        raise InvalidParams('updates must be a list of {"buildpack": "URL"} objects')
    urls = [str(u["buildpack"]).strip() for u in updates]
    if len(urls) > buildpack_source.MAX_BUILDPACKS:
        raise InvalidParams(f"at most {buildpack_source.MAX_BUILDPACKS} buildpacks per app")
    builtins = builder.builtin_names()
    try:
        for url in urls:
            buildpack_source.parse(url, prefixes, builtins)
    except BuildFailed as error:
        raise InvalidParams(error.message) from None
    return urls
