"""Heroku's log sessions: POST /apps/APP/log-sessions {dyno, lines, source, tail} answers
{id, logplex_url, created_at, updated_at}; the logplex_url streams the app's log as
server-sent events, one `data:` line per log line in logplex's format
(`2026-12-01T23:50:18.123456+00:00 app[web.1]: message`): the last `lines` lines, then,
with `tail`, every new line until the client leaves.

The URL is on the API's own address and carries the session's secret (paas.state.
log_sessions), since Heroku's CLI fetches it without its token; that one route is the only
one served without a token (marked `auth.public`, like a build's output stream).

A tail holds one of its API process's 16 gunicorn threads while it lasts (as a `paas run`
relay does, paas.api.run, at most 6): so each process streams at most MAX_TAILS tails at
once and answers 429 past that, leaving 16 - 6 - 4 = 6 threads to the rest of the API
whatever runs. A tail reads the log only when the log database changed (a stat of the
file, paas.state.database.stamp), and writes a comment every HEARTBEAT_SECONDS, so a
client that left is noticed (its write fails) and its thread freed within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from flask import Blueprint, Response, jsonify, request

from paas.api import auth
from paas.api.context import Context, ctx, find_app, json_body
from paas.domain.access import Permission
from paas.domain.errors import NotFound, PaasError
from paas.state import database, log_sessions
from paas.state.log_sessions import LogSession

blueprint = Blueprint("log_sessions", __name__)
MAX_TAILS = 4  # per API process
HEARTBEAT_SECONDS = 10.0
POLL_SECONDS = 0.2
READ_BATCH = 1000  # what one LogStore.read(after=...) returns at most
TAILS = threading.BoundedSemaphore(MAX_TAILS)


class TooManyTails(PaasError):
    id = "rate_limit"
    status = 429


@blueprint.post("/apps/<name>/log-sessions")
def create(name: str) -> tuple[Response, int]:
    context = ctx()
    app = find_app(name, Permission.VIEW)
    found, secret = log_sessions.create(context.store, app, json_body())
    return jsonify(
        id=found.id,
        logplex_url=f"{request.host_url.rstrip('/')}/log-sessions/{secret}",
        created_at=found.created_at,
        updated_at=found.created_at,
    ), 201


@blueprint.get("/log-sessions/<secret>")
@auth.public
def stream(secret: str) -> Response:
    context = ctx()
    found = log_sessions.by_secret(context.store, secret)
    if found is None:
        raise NotFound("no such log session, or it expired: ask for a new one (heroku logs)")
    app_name = context.store.app(found.app_id).name
    if found.tail and not TAILS.acquire(blocking=False):
        raise TooManyTails(
            f"this API process streams {MAX_TAILS} log tails already: try again once one ended"
        )
    response = Response(events(context, app_name, found), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    if found.tail:
        released = threading.Event()

        def release() -> None:  # once, however the stream ended (or never started)
            if not released.is_set():
                released.set()
                TAILS.release()

        response.call_on_close(release)
    return response


def events(context: Context, app: str, found: LogSession) -> Iterator[bytes]:
    lines, cursor = context.logs.read(app, num=found.lines, process=found.dyno, source=found.source)
    if lines:
        yield event([line.format() for line in lines])
    if not found.tail:
        return
    yield b": tailing\n\n"  # headers and history out now, not with the first new line
    stamp, beat = None, time.monotonic()
    while True:
        now_stamp = database.stamp(context.settings.logs_db_path)
        if now_stamp != stamp:
            stamp = now_stamp
            while True:  # a read gives at most READ_BATCH lines: read on to the end
                lines, cursor = context.logs.read(
                    app, after=cursor, process=found.dyno, source=found.source
                )
                if lines:
                    yield event([line.format() for line in lines])
                    beat = time.monotonic()
                if len(lines) < READ_BATCH:
                    break
        if time.monotonic() - beat >= HEARTBEAT_SECONDS:
            if not _app_exists(context, app):
                return  # destroyed: nothing more will come
            yield b": heartbeat\n\n"  # a client gone makes this write fail
            beat = time.monotonic()
        time.sleep(POLL_SECONDS)


def _app_exists(context: Context, app: str) -> bool:
    try:
        context.store.app(app)
    except NotFound:
        return False
    return True


def event(lines: list[str]) -> bytes:
    """One server-sent event of several lines (a log line holds no newline)."""
    flat = (line.replace("\r", " ").replace("\n", " ") for line in lines)
    return "".join(f"data: {line}\n" for line in flat).encode() + b"\n"
