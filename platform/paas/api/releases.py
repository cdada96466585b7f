"""Releases, rollback, builds and slugs, in the shapes of Heroku's Platform API v3.

Each resource carries Heroku's fields (`slug`, `user`, `app`, `release` are objects; ids
are UUIDs; times ISO 8601) and paas's own beside them (`paas_status`, `artifact`, `image`,
`process_types` ...). Heroku's release status has three values where paas has five:
pending and deploying are `pending` (not serving in full yet), superseded is `expired` (a
newer release overtook it before its rollout ended; Heroku's CLI knows that status).
A build's `output_stream_url` is its own unguessable URL on the API, served without a token
(Heroku's CLI fetches it bare): while the build runs it streams the output as it comes.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify, request, stream_with_context

from paas.api import auth, slots
from paas.api.context import ctx, find_app, json_body, principal
from paas.api.protocol import listing
from paas.artifacts.images import ImageStore
from paas.artifacts.slugs import SlugStore
from paas.domain import access, identity, validation
from paas.domain.access import Permission
from paas.domain.errors import InvalidParams, NotFound, PaasError
from paas.domain.models import App, Build, Release, slug_id
from paas.release import releases as release_logic
from paas.state import build_output, build_streams
from paas.state.store import Store

blueprint = Blueprint("releases", __name__)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

HEROKU_STATUS = {
    "pending": "pending",
    "deploying": "pending",
    "succeeded": "succeeded",
    "failed": "failed",
    "superseded": "expired",
}
BUILD_STATUSES = ("pending", "succeeded", "failed")


def iso(epoch: float | None, fallback: str) -> str:
    if epoch is None:
        return fallback
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def user_json(user_id: str | None, email: str | None) -> dict[str, object]:
    """Who caused it; a record from before paas kept that was the operator's."""
    return identity.user(user_id, email or access.OPERATOR.email)


def slug_json(artifact: str | None) -> dict[str, object] | None:
    found = slug_id(artifact or "")
    return None if found is None else {"id": found}


def release_json(
    release: Release,
    app: App,
    current: int | None,
    *,
    eligible: bool = False,
    plans: list[str] | None = None,
) -> dict[str, object]:
    """Heroku's release, with paas's own status and what the release runs beside it."""
    slug = slug_json(release.artifact)
    return {
        "id": release.id,
        "version": release.version,
        "description": release.description,
        "status": HEROKU_STATUS.get(release.status, release.status),
        "current": release.version == current,
        "slug": slug,
        "user": user_json(release.user_id, release.user_email),
        "app": {"id": app.id, "name": app.name},
        "addon_plan_names": plans or [],
        "artifacts": [] if slug is None else [{"type": "slug", "id": slug["id"]}],
        "output_stream_url": None,  # the release phase's output is in the app's log
        "eligible_for_rollback": eligible,
        "created_at": release.created_at,
        "updated_at": iso(release.status_at, release.created_at),
        "paas_status": release.status,
        "status_detail": release.status_detail,
        "artifact": release.artifact or None,
        "image": release.image,
        "process_types": release.process_types,
    }


def rollback_check(slugs: SlugStore, images: ImageStore) -> Callable[[Release], bool]:
    """Whether a release can be rolled back to: code that succeeded, its slug (and image)
    still kept."""

    stored = slugs.stored()  # one directory read, however many releases are checked

    @functools.cache  # releases share images (each config change reuses one)
    def kept(artifact: str, image: str | None) -> bool:
        found = artifact.removeprefix("sha256:") in stored
        return found and (image is None or images.has(image))

    def eligible(release: Release) -> bool:
        return (
            release.has_slug
            and release.status == "succeeded"
            and kept(release.artifact, release.image)
        )

    return eligible


def _stores() -> tuple[SlugStore, ImageStore]:
    settings = ctx().settings
    return SlugStore(settings.slugs_dir), ImageStore(settings.images_dir)


def _shown(store: Store, app: App, release: Release) -> dict[str, object]:
    current = store.shown_current_release(app)
    plans = store.addon_plans_by_release(app).get(release.id, [])
    return release_json(
        release,
        app,
        current.version if current else None,
        eligible=rollback_check(*_stores())(release),
        plans=plans,
    )


@blueprint.get("/apps/<name>/releases")
def list_releases(name: str) -> tuple[Response, int]:
    store = ctx().store
    app = find_app(name, Permission.VIEW)
    with store.reading() as tx:
        current = tx.shown_current_release(app)
        found = {r.id: r for r in tx.releases(app)}
        plans = tx.addon_plans_by_release(app)
    eligible = rollback_check(*_stores())
    version = current.version if current else None

    def shape(page: list[dict[str, object]]) -> list[dict[str, object]]:
        shown = [found[str(item["id"])] for item in page]
        return [
            release_json(r, app, version, eligible=eligible(r), plans=plans.get(r.id))
            for r in shown
        ]

    items = [{"version": r.version, "id": r.id} for r in found.values()]
    return listing(items, ("version", "id"), shape)


def find_release(store: Store, app: App, ref: object) -> Release:
    """vN by its version (3, "3", "v3") or its id (a UUID)."""
    if isinstance(ref, str) and _UUID.fullmatch(ref):
        with store.reading() as tx:
            found = tx.find_release_by_id(app, ref)
        if found is None:
            raise NotFound(f"release {ref!r} of {app.name} not found: `paas releases` lists them")
        return found
    return store.release(app, validation.release_version(ref))


@blueprint.get("/apps/<name>/releases/<ref>")
def show_release(name: str, ref: str) -> Response:
    store = ctx().store
    app = find_app(name, Permission.VIEW)
    return jsonify(_shown(store, app, find_release(store, app, ref)))


@blueprint.get("/apps/<name>/releases/<ref>/config-vars")
def release_config(name: str, ref: str) -> Response:
    """The config vars vN ran with (`heroku releases:info`): values, so deploy or more."""
    store = ctx().store
    app = find_app(name, Permission.DEPLOY)
    return jsonify(find_release(store, app, ref).config)


@blueprint.post("/apps/<name>/releases")
def rollback(name: str) -> tuple[Response, int]:
    """A new release running vN's code and config again (Heroku: `release` is an id or a
    version; paas also takes none: the previous release that succeeded)."""
    context = ctx()
    app = find_app(name, Permission.DEPLOY)
    given = json_body().get("release")
    target = None if given is None else find_release(context.store, app, given).version
    slugs, images = _stores()
    release = release_logic.rollback(
        context.store, context.logs, app, target, images.has, slugs.has, by=principal()
    )
    return jsonify(_shown(context.store, app, release)), 201


@blueprint.get("/apps/<name>/releases/<ref>/image")
def export_image(name: str, ref: str) -> Response:
    """The release's OCI image as an oci-archive (refs: its process types)."""
    context = ctx()
    app = find_app(name, Permission.DEPLOY)
    if ref == "current":
        release = context.store.current_release(app)
        if release is None:
            raise NotFound(f"{app.name} has no releases yet: push code first")
    else:
        release = find_release(context.store, app, ref)
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


# -- builds ---------------------------------------------------------------------------------


def output_urls(builds: list[Build]) -> dict[str, str]:
    """Each build's output stream URL for the caller: a fresh secret of theirs, good for a
    few minutes (paas.state.build_streams), one transaction for them all."""
    granted = build_streams.grant(ctx().store, [b.id for b in builds], principal())
    base = request.host_url.rstrip("/")
    return {build_id: f"{base}/build-output/{secret}" for build_id, secret in granted.items()}


def build_json(build: Build, app: App, url: str | None) -> dict[str, object]:
    """Heroku's build (`stack` a name, as its schema has it), with paas's own fields."""
    urls = _buildpack_urls(build.buildpacks)
    return {
        "id": build.id,
        "status": build.status if build.status in BUILD_STATUSES else "failed",
        "source_blob": {"checksum": None, "url": None, "version": build.source_version},
        "slug": slug_json(build.artifact),
        "release": None if build.release_id is None else {"id": build.release_id},
        "buildpacks": [{"url": url, "name": url} for url in urls],
        "stack": build.stack or app.stack,
        "user": user_json(build.user_id, build.user_email),
        "app": {"id": app.id, "name": app.name},
        "output_stream_url": url,
        "created_at": build.created_at,
        "updated_at": build.finished_at or build.created_at,
        "source_version": build.source_version,
        "artifact": build.artifact,
        "finished_at": build.finished_at,
        "output": build.output,
    }


def _buildpack_urls(stored: str | None) -> list[str]:
    found = json.loads(stored) if stored else []
    return [str(url) for url in found] if isinstance(found, list) else []


@blueprint.get("/apps/<name>/builds")
def list_builds(name: str) -> tuple[Response, int]:
    app = find_app(name, Permission.VIEW)
    found = {b.id: b for b in ctx().store.builds(app)}

    def shape(page: list[dict[str, object]]) -> list[dict[str, object]]:
        """Only the page's builds get an output URL: a grant is a write (build_streams)."""
        shown = [found[str(item["id"])] for item in page]
        urls = output_urls(shown)
        return [build_json(b, app, urls[b.id]) for b in shown]

    items: list[dict[str, object]] = [
        {"created_at": b.created_at, "id": b.id} for b in found.values()
    ]
    return listing(items, ("created_at", "id"), shape)


@blueprint.post("/apps/<name>/builds")
def create_build(name: str) -> Response:
    """Refused: paas builds what is pushed to it. A build from a `source_blob` URL would
    have the platform fetch code from wherever the URL points (outside the host, or a
    service inside it the caller cannot reach otherwise); git push brings the code in."""
    app = find_app(name, Permission.DEPLOY)
    raise InvalidParams(
        f"paas builds only what is pushed with git, not a source_blob URL (the platform "
        f"never fetches code itself): git push {request.host_url}{app.name}.git main"
    )


@blueprint.get("/apps/<name>/builds/<build_id>")
def show_build(name: str, build_id: str) -> Response:
    app = find_app(name, Permission.VIEW)
    build = ctx().store.build(app, build_id)
    return jsonify(build_json(build, app, output_urls([build])[build.id]))


@blueprint.get("/build-output/<secret>")
@auth.public
def build_output_stream(secret: str) -> Response:
    """The build's output, live while it runs, whole once it ended. Its URL is the secret
    (Heroku's CLI sends no token to it): unknown, expired, or its holder no longer may
    view the app, a plain 404. A live build's stream takes one of STREAMS (429 past it),
    and at most FOLLOWERS_PER_SECRET of them follow one URL."""
    context = ctx()
    store = context.store
    grant = build_streams.by_secret(store, secret)
    found = None if grant is None else store.build_by_id(grant.build_id)
    if grant is None or found is None or not _may_view(store, grant, found):
        raise NotFound(
            "no such build output stream, or it expired: list the builds again for a fresh "
            "output_stream_url (heroku builds, paas builds)"
        )
    build: Build = found

    def current() -> Build:  # a record trimmed meanwhile: the last one read
        return store.build_by_id(build.id) or build

    if current().status != "pending":  # ended: its recorded output, whole, at once
        return _plain(iter([current().output.encode()]))
    claim = _claim(grant.secret_hash)
    allowed = _Recheck(lambda: _may_view(store, grant, current()))
    chunks: Iterator[bytes] = build_output.follow(
        context.settings.run_dir,
        build.id,
        running=lambda: allowed() and current().status == "pending",
        recorded=lambda: current().output if allowed() else "",
        timeout=context.settings.push_timeout_seconds,
    )
    response = _plain(c for c in chunks if allowed())  # no request context needed
    response.call_on_close(claim)
    return response


class TooManyStreams(PaasError):
    code = "rate_limit"
    status = 429


# Live build streams per API process, each holding one of its 16 gunicorn threads: with
# log tails (4, paas.api.log_sessions) and run relays (6, paas.api.run), 3 stay for the rest.
MAX_STREAMS = 3
FOLLOWERS_PER_SECRET = 2
STREAM_SLOTS = slots.SlotPool(MAX_STREAMS, FOLLOWERS_PER_SECRET)  # keyed by secret hash


def _claim(secret_hash: str) -> Callable[[], None]:
    """Takes a stream slot and a follower of this secret (TooManyStreams past either);
    returns what gives them back, once however often it is called."""
    refused = STREAM_SLOTS.take(secret_hash)
    if refused == "key":
        raise TooManyStreams(
            f"this build output URL is followed {FOLLOWERS_PER_SECRET} times already: "
            "close one, or list the builds again for a URL of your own"
        )
    if refused == "total":
        raise TooManyStreams(
            f"this API process streams {MAX_STREAMS} live builds already: try again once one ended"
        )
    released = threading.Event()
    lock = threading.Lock()

    def release() -> None:
        with lock:
            if released.is_set():
                return
            released.set()
        STREAM_SLOTS.give(secret_hash)

    return release


class _Recheck:
    """A check re-run at most every RECHECK_SECONDS; once false, false for good."""

    RECHECK_SECONDS = 1.0

    def __init__(self, check: Callable[[], bool]) -> None:
        self._check = check
        self._at = time.monotonic()
        self._ok = True

    def __call__(self) -> bool:
        if self._ok and time.monotonic() - self._at >= self.RECHECK_SECONDS:
            self._ok, self._at = self._check(), time.monotonic()
        return self._ok


def _may_view(store: Store, grant: build_streams.Grant, build: Build) -> bool:
    """Whether the grant's holder (still a user) may still view the build's app."""
    holder = build_streams.holder(store, grant)
    if holder is None:
        return False
    try:
        app = store.app(build.app_id)
    except NotFound:
        return False
    held = store.permission(app, holder)
    return held is not None and held >= Permission.VIEW


def _plain(body: Iterator[bytes]) -> Response:
    return Response(
        body,
        content_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# -- slugs ----------------------------------------------------------------------------------


@blueprint.get("/apps/<name>/slugs/<slug>")
def show_slug(name: str, slug: str) -> Response:
    """Heroku's slug for a slug id of a release or build of the app. No blob: paas's slugs
    stay on the host (dynos run them from there), never downloaded."""
    context = ctx()
    app = find_app(name, Permission.VIEW)
    found = context.store.slug_record(app, slug)
    if found is None:
        raise NotFound(f"slug {slug!r} of {app.name} not found: `paas releases` shows them")
    artifact, process_types, commit, created_at = found
    tar = SlugStore(context.settings.slugs_dir).tar_path(artifact.removeprefix("sha256:"))
    size = tar.stat().st_size if tar.exists() else None
    return jsonify(
        {
            "id": slug_id(artifact),
            "commit": commit,
            "commit_description": None,
            "process_types": process_types,
            "size": size,
            "stack": identity.stack(app.stack),
            "checksum": artifact if artifact.startswith("sha256:") else f"sha256:{artifact}",
            "buildpack_provided_description": None,
            "blob": None,
            "created_at": created_at,
            "updated_at": created_at,
            "artifact": artifact,
        }
    )
