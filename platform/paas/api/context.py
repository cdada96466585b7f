"""What every request handler needs: settings, store, logs — built once per process."""

from __future__ import annotations

import json
from dataclasses import dataclass

from flask import current_app, g, request

from paas.domain.access import Permission, Principal
from paas.domain.errors import Forbidden, InvalidParams, NotFound, PaasError
from paas.domain.models import App
from paas.domain.settings import Settings
from paas.state.logs import LogStore
from paas.state.store import Store


@dataclass(frozen=True)
class Context:
    settings: Settings
    store: Store
    logs: LogStore


def ctx() -> Context:
    context = current_app.extensions["paas"]
    assert isinstance(context, Context)
    return context


def principal() -> Principal:
    """Who sent this request (auth.require_token sets it before any route runs)."""
    caller = g.get("paas_principal")
    assert isinstance(caller, Principal), "a route ran before require_token"
    return caller


def find_app(ref: str, need: Permission) -> App:
    """The app named or identified (its id) by `ref`, if the caller holds `need` on it. An
    app the caller holds nothing on is NotFound exactly like a missing one, so another
    user's app names do not leak; one seen with a lower permission is Forbidden."""
    context, caller = ctx(), principal()
    app = context.store.app(ref)
    held = context.store.permission(app, caller)
    if held is None:
        raise NotFound(f"app {ref!r} not found: `paas apps` lists the apps")
    if held < need:
        raise Forbidden(
            f"{caller.email} holds {held.label} on {app.name} and this needs {need.label}: "
            f"ask one who manages it (`paas access -a {app.name}` lists them)"
        )
    g.paas_app = app  # the audit names the app a change was made to
    return app


# Far above any body the API takes (config vars are capped at 32 KB), far below harm.
MAX_JSON_BYTES = 1024 * 1024


class BodyTooLarge(PaasError):
    id = "request_too_large"
    status = 413


def json_body() -> dict[str, object]:
    """The request's JSON object; an empty body is {}. Whatever the content type says, a
    body that is not a JSON object (bad UTF-8, bad JSON, nested too deep to parse, too
    large) is a 4xx, never a 500."""
    if "paas_body" not in g:  # the stream can be read once; a second call sees the same
        g.paas_body = request.stream.read(MAX_JSON_BYTES + 1)
    raw: bytes = g.paas_body
    if len(raw) > MAX_JSON_BYTES:
        raise BodyTooLarge(f"the request body is over {MAX_JSON_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise InvalidParams(f"the request body is not valid JSON: {reason}") from None
    if not isinstance(body, dict):
        raise InvalidParams("the request body must be a JSON object")
    return body
