"""Apps and config vars: the Heroku Platform API's app resources (domains: paas.api.domains,
formation: paas.api.formation)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Response, jsonify, request

from paas.api import addons as addons_api
from paas.api import protocol
from paas.api import stacks as stack_api
from paas.api.context import Context, ctx, find_app, json_body, principal
from paas.artifacts import collector, stacks
from paas.domain import identity, validation
from paas.domain.access import Permission, Principal
from paas.domain.errors import Conflict, InvalidParams, NotFound
from paas.domain.models import App
from paas.dynos import capability
from paas.isolation import users
from paas.push import gitservice
from paas.reconcile import routes
from paas.release import releases
from paas.state.store import ListedApp

blueprint = Blueprint("apps", __name__)
APP_RANGE_FIELDS = ("name", "id")  # Heroku ranges apps over id and name
ADJECTIVES = ("calm", "brave", "quiet", "swift", "bright", "gentle", "bold", "keen")
NOUNS = ("river", "forest", "meadow", "harbor", "summit", "canyon", "island", "valley")


def app_json(app: App) -> dict[str, object]:
    """One app as `GET /apps/{app}` shows it: the listing's shape, plus its sizes."""
    store = ctx().store
    current = store.current_release(app)
    version, released_at = (current.version, current.created_at) if current else (None, None)
    shown = AppView.now().json(ListedApp(app, version, released_at, store.owner_of(app)))
    settings = ctx().settings
    shown["repo_size"] = tree_size(gitservice.repo_path(settings, app.name))
    shown["slug_size"] = slug_size(settings.slugs_dir, current.artifact) if current else None
    return shown


def tree_size(path: Path) -> int | None:
    """Bytes of the files under `path` (the app's git repository); None: no such folder."""
    if not path.is_dir():
        return None
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def slug_size(slugs_dir: Path, artifact: str) -> int | None:
    """The size of the release's slug, when it is a file of the slug store."""
    found = slugs_dir / f"{artifact.removeprefix('sha256:')}.tar"  # SlugStore.tar_path
    return found.stat().st_size if found.is_file() else None


def owner_json(owner: Principal) -> dict[str, object]:
    return identity.user(owner.user_id, owner.email)


@dataclass(frozen=True)
class AppView:
    """How the API shows apps, in Heroku's app shape plus paas's own fields
    (current_release, routing_error): what every app's JSON shares, worked out once per
    request (a listing shows a thousand)."""

    git_base: str
    web_suffix: str  # after the app's name in its URL: the domain and port
    rejected: dict[str, str]  # apps the router refused, with why
    next_stacks: dict[str, str]  # apps waiting for a stack to be built: the stack
    owner_of: Callable[[App], Principal]  # for a listing that did not read the owners

    @classmethod
    def now(cls) -> AppView:
        settings = ctx().settings
        port = "" if settings.http_port == 80 else f":{settings.http_port}"
        return cls(
            request.host_url.rstrip("/"),
            f".{settings.domain}{port}/",
            routes.applied(settings).rejected,
            stack_requests(settings.run_dir),
            ctx().store.owner_of,
        )

    def json(self, listed: ListedApp) -> dict[str, object]:
        app = listed.app
        stack = stacks.effective(app.stack)
        build_stack = self.next_stacks.get(app.name, stack)
        owner = listed.owner or self.owner_of(app)
        return {
            "id": app.id,
            "name": app.name,
            "stack": identity.stack(stack),
            "build_stack": identity.stack(build_stack),
            "owner": owner_json(owner),
            "region": identity.region(),
            "created_at": app.created_at,
            "updated_at": listed.released_at or app.created_at,
            "released_at": listed.released_at,
            "git_url": f"{self.git_base}/{app.name}.git",
            "web_url": f"http://{app.name}{self.web_suffix}",
            "maintenance": False,
            "acm": False,
            "archived_at": None,
            "buildpack_provided_description": None,
            "create_status": "complete",
            "internal_routing": None,
            "locked": False,
            "repo_size": None,
            "slug_size": None,
            "space": None,
            "team": None,
            "organization": None,
            # paas's own
            "current_release": listed.release_version,
            "routing_error": routes.rejection_message(app.name, self.rejected),
        }


def stack_requests(run_dir: Path) -> dict[str, str]:
    """Every app waiting for a stack, with it: one directory listing, not a file per app."""
    folder = stacks.request_file(run_dir, "-").parent
    names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    return {n: found for n in names if (found := stacks.pending(run_dir, n)) is not None}


def generated_name() -> str:
    return f"{secrets.choice(ADJECTIVES)}-{secrets.choice(NOUNS)}-{secrets.randbelow(9000) + 1000}"


def listed_apps(keep: Callable[[ListedApp], bool] = lambda _: True) -> tuple[Response, int]:
    # One query whatever the number of apps (a query per app made this 1,000 at 1,000),
    # decoding no release's config.
    view = AppView.now()
    shown = [view.json(a) for a in ctx().store.app_listing(principal()) if keep(a)]
    return protocol.listing(shown, APP_RANGE_FIELDS)


@blueprint.get("/apps")
def list_apps() -> tuple[Response, int]:
    return listed_apps()


@blueprint.get("/users/<user>/apps")
def list_user_apps(user: str) -> tuple[Response, int]:
    """`heroku apps` asks for /users/~/apps: the apps the caller may see. Another user's
    (by email or id) are the apps of theirs the caller may see; one unknown lists none."""
    caller = principal()
    if user in ("~", caller.email, caller.user_id):
        return listed_apps()
    store = ctx().store

    def owned(listed: ListedApp) -> bool:
        owner = listed.owner or store.owner_of(listed.app)
        return user in (owner.email, owner.user_id)

    return listed_apps(owned)


def stack_named(value: object) -> str:
    """A stack given as Heroku gives it (its name, its id, or {"name"|"id": ...})."""
    if isinstance(value, dict):
        value = value.get("name") or value.get("id")
    by_id = {identity.derived_id("stack", n): n for n in stacks.RECIPES}
    if isinstance(value, str) and value in by_id:
        return by_id[value]
    if not isinstance(value, str) or value not in stacks.RECIPES:
        raise InvalidParams(f"unknown stack {value!r}: choose one of {', '.join(stacks.RECIPES)}")
    return value


def check_region(value: object) -> None:
    """paas has one region (identity.REGION_NAME): any other is refused, not ignored."""
    if isinstance(value, dict):
        value = value.get("name") or value.get("id")
    if value in (None, "", identity.REGION_NAME, identity.region()["id"]):
        return
    raise InvalidParams(
        f"unknown region {value!r}: this platform has one region, {identity.REGION_NAME!r}"
    )


@blueprint.post("/apps")
def create_app() -> tuple[Response, int]:
    body = json_body()
    name = validation.app_name(body.get("name") or generated_name())
    stack = stack_named(body.get("stack") or stacks.DEFAULT_STACK)
    check_region(body.get("region"))
    context = ctx()
    refusal = users.shared_uid_refusal(
        os.geteuid() == 0, context.settings.shared_uid, len(context.store.apps())
    )
    if refusal is not None:
        raise Conflict(refusal)
    app = context.store.create_app(name, stack, domain=context.settings.domain, owner=principal())
    gitservice.ensure_repo(context.settings, app.name)
    context.logs.event(app.name, "api", "App created")
    return jsonify(app_json(app)), 201


@blueprint.get("/apps/<name>")
def show_app(name: str) -> Response:
    return jsonify(app_json(find_app(name, Permission.VIEW)))


@blueprint.patch("/apps/<name>")
def update_app(name: str) -> Response:
    """Heroku's app update: `name` renames (apps:rename), `build_stack` (or paas's
    `stack`) moves the app to a stack, `maintenance` may only stay off. Every field is
    checked before any is applied."""
    context, app = ctx(), find_app(name, Permission.MANAGE)
    body = json_body()
    new_name = body.get("name")
    stack_given = body.get("build_stack") or body.get("stack")
    stack = None if stack_given is None else stack_named(stack_given)
    if body.get("maintenance"):
        raise InvalidParams("maintenance mode is not supported: scale web to 0 instead")
    if new_name is None and stack is None:
        raise InvalidParams('give a new "name", or a "build_stack" (or "stack") to move to')
    if new_name is not None and new_name != app.name:
        app = rename(context, app, validation.app_name(new_name))
    if stack is None:
        return jsonify(app_json(app))
    build = move_to_stack(context, app, stack)
    return jsonify({**app_json(context.store.app(app.id)), "stack_build": build.json()})


def move_to_stack(context: Context, app: App, stack: str) -> stacks.StackStatus:
    """The next build and the dynos it starts use `stack`. A stack not built on a host
    whose dynos run in containers is built first (`stack_build` says how that goes): the
    app moves to it once it is built, and stays where it is until then."""
    found = stacks.status(stack)
    if found.state != "built" and capability.load(context.settings).containers:
        return stack_api.request_stack(context, app, stack)
    stacks.drop_request(context.settings.run_dir, app.name)
    context.store.set_stack(app, stack)
    context.logs.event(app.name, "api", f"Stack set to {stack}")
    return found


def rename(context: Context, app: App, new: str) -> App:
    """Renames the app and everything kept under its name: its git repository, its log,
    its stack request. The agent then routes NEW.DOMAIN (OLD.DOMAIN stops answering) and
    replaces its dynos by ones under the new name. It waits for a push under way (the push
    lock); a push to the old name after it finds no app. A taken or bad name changes
    nothing."""
    settings = context.settings
    try:
        context.store.app(new)
    except NotFound:
        pass
    else:
        raise Conflict(f"app {new!r} already exists: choose another name")
    old_repo, new_repo = (gitservice.repo_path(settings, n) for n in (app.name, new))
    if new_repo.exists():
        raise Conflict(f"a git repository {new_repo.name} is in the way: choose another name")
    with gitservice.push_lock(settings, app.name):
        moved = old_repo.is_dir()
        if moved:
            old_repo.rename(new_repo)
        try:
            renamed = context.store.rename_app(app, new, domain=settings.domain)
        except BaseException:
            if moved:
                new_repo.rename(old_repo)
            raise
    context.logs.rename_app(app.name, new)
    pending = stacks.pending(settings.run_dir, app.name)
    if pending is not None:
        stacks.request(settings.run_dir, new, pending)
        stacks.drop_request(settings.run_dir, app.name)
    context.logs.event(new, "api", f"Renamed from {app.name} to {new}")
    return renamed


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
        by=principal(),
    )
    return jsonify(config)
