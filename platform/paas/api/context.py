"""What every request handler needs: settings, store, logs — built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, request

from paas.errors import InvalidParams
from paas.logs import LogStore
from paas.settings import Settings
from paas.store import App, Store


@dataclass(frozen=True)
class Context:
    settings: Settings
    store: Store
    logs: LogStore


def ctx() -> Context:
    context = current_app.extensions["paas"]
    assert isinstance(context, Context)
    return context


def find_app(name: str) -> App:
    return ctx().store.app(name)


def json_body() -> dict[str, object]:
    body = request.get_json(silent=True)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidParams("the request body must be a JSON object")
    return body
