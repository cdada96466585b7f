"""Apps, config vars and domains: the Heroku Platform API's app resources (formation:
paas.api.formation)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from flask import Blueprint, Response, jsonify, request

from paas.api import addons as addons_api
from paas.api import stacks as stack_api
from paas.api.context import ctx, find_app, json_body, principal
from paas.artifacts import collector, stacks
from paas.domain import validation
from paas.domain.access import Permission
from paas.domain.errors import Conflict, InvalidParams
from paas.domain.models import App
from paas.dynos import capability
from paas.isolation import users
from paas.push import gitservice
from paas.reconcile import routes
from paas.release import releases
from paas.state.store import ListedApp

blueprint = Blueprint("apps", __name__)
ADJECTIVES = ("calm", "brave", "quiet", "swift", "bright", "gentle", "bold", "keen")
NOUNS = ("river", "forest", "meadow", "harbor", "summit", "canyon", "island", "valley")


def app_json(app: App) -> dict[str, object]:
    current = ctx().store.current_release(app)
    version, released_at = (current.version, current.created_at) if current else (None, None)
    return AppView.now().json(ListedApp(app, version, released_at))


@dataclass(frozen=True)
class AppView:
    """How the API shows apps: what every app's JSON shares, worked out once per request
    (a listing shows a thousand)."""

    git_base: str
    web_suffix: str  # after the app's name in its URL: the domain and port
    rejected: dict[str, str]  # apps the router refused, with why

    @classmethod
    def now(cls) -> AppView:
        settings = ctx().settings
        port = "" if settings.http_port == 80 else f":{settings.http_port}"
        return cls(
            request.host_url.rstrip("/"),
            f".{settings.domain}{port}/",
            routes.applied(settings).rejected,
        )

    def json(self, listed: ListedApp) -> dict[str, object]:
        app = listed.app
        return {
            "id": app.id,
            "name": app.name,
            "stack": stacks.effective(app.stack),
            "created_at": app.created_at,
            "released_at": listed.released_at,
            "current_release": listed.release_version,
            "git_url": f"{self.git_base}/{app.name}.git",
            "web_url": f"http://{app.name}{self.web_suffix}",
            "routing_error": routes.rejection_message(app.name, self.rejected),
        }


def generated_name() -> str:
    return f"{secrets.choice(ADJECTIVES)}-{secrets.choice(NOUNS)}-{secrets.randbelow(9000) + 1000}"


@blueprint.get("/account")
def account() -> Response:
    return jsonify(name="admin")


@blueprint.get("/apps")
def list_apps() -> Response:
    # One query whatever the number of apps (a query per app made this 1,000 at 1,000),
    # decoding no release's config.
    view = AppView.now()
    return jsonify([view.json(listed) for listed in ctx().store.app_listing(principal())])


@blueprint.post("/apps")
def create_app() -> tuple[Response, int]:
    body = json_body()
    name = validation.app_name(body.get("name") or generated_name())
    stack = body.get("stack") or stacks.DEFAULT_STACK
    if not isinstance(stack, str) or stack not in stacks.RECIPES:
        raise InvalidParams(f"unknown stack {stack!r}: choose one of {', '.join(stacks.RECIPES)}")
    context = ctx()
    refusal = users.shared_uid_refusal(
        os.geteuid() == 0, context.settings.shared_uid, len(context.store.apps())
    )
    if refusal is not None:
        raise Conflict(refusal)
    app = context.store.create_app(
        name, str(stack), domain=context.settings.domain, owner=principal()
    )
    gitservice.ensure_repo(context.settings, app.name)
    context.logs.event(app.name, "api", "App created")
    return jsonify(app_json(app)), 201


@blueprint.get("/apps/<name>")
def show_app(name: str) -> Response:
    return jsonify(app_json(find_app(name, Permission.VIEW)))


@blueprint.patch("/apps/<name>")
def update_app(name: str) -> Response:
    """Only the stack can change; the next build and the dynos it starts use it. A stack
    not built on a host whose dynos run in containers is built first (`stack_build` says
    how that goes): the app moves to it once it is built, and stays where it is until then."""
    context, app = ctx(), find_app(name, Permission.MANAGE)
    stack = json_body().get("stack")
    if not isinstance(stack, str) or stack not in stacks.RECIPES:
        raise InvalidParams(f"unknown stack {stack!r}: choose one of {', '.join(stacks.RECIPES)}")
    found = stacks.status(stack)
    if found.state != "built" and capability.load(context.settings).containers:
        found = stack_api.request_stack(context, app, stack)
    else:
        stacks.drop_request(context.settings.run_dir, app.name)
        context.store.set_stack(app, stack)
        context.logs.event(app.name, "api", f"Stack set to {stack}")
    return jsonify({**app_json(find_app(name, Permission.MANAGE)), "stack_build": found.json()})


@blueprint.delete("/apps/<name>")
def destroy_app(name: str) -> Response:
    context = ctx()
    app = find_app(name, Permission.MANAGE)
    shown = app_json(app)
    addons_api.catalog().destroy_app_addons(app)  # refused while another app is attached
    context.store.delete_app(app)  # the agent then stops its dynos and drops its routes
    gitservice.delete_repo(context.settings, app.name)
    context.logs.delete_app(app.name)
    collector.forget_app(context.settings, context.store, app)
    return jsonify(shown)


@blueprint.get("/apps/<name>/config-vars")
def show_config(name: str) -> Response:
    return jsonify(ctx().store.config(find_app(name, Permission.DEPLOY)))


@blueprint.patch("/apps/<name>/config-vars")
def update_config(name: str) -> Response:
    context = ctx()
    config, _release = releases.set_config(
        context.store,
        context.logs,
        find_app(name, Permission.MANAGE),
        json_body(),  # type: ignore[arg-type]
    )
    return jsonify(config)


@blueprint.get("/apps/<name>/domains")
def list_domains(name: str) -> Response:
    return jsonify([{"hostname": h} for h in ctx().store.domains(find_app(name, Permission.VIEW))])


@blueprint.post("/apps/<name>/domains")
def add_domain(name: str) -> tuple[Response, int]:
    context = ctx()
    hostname = validation.custom_domain(json_body().get("hostname"), context.settings.domain)
    context.store.add_domain(
        find_app(name, Permission.MANAGE), hostname, domain=context.settings.domain
    )
    return jsonify(hostname=hostname), 201


@blueprint.delete("/apps/<name>/domains/<hostname>")
def remove_domain(name: str, hostname: str) -> Response:
    ctx().store.remove_domain(find_app(name, Permission.MANAGE), hostname.lower())
    return jsonify(hostname=hostname)
