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
once, at most MAX_TAILS_PER_CREATOR of them one creator's, and answers 429 past that,
leaving 16 - 6 - 4 = 6 threads to the rest of the API whatever runs. A tail reads the log
only when the log database changed (a stat of the file, paas.state.database.stamp), and
writes a comment every HEARTBEAT_SECONDS, so a client that left is noticed (its write
fails) and its thread freed within that time.

The log is kept by app name, and a name can pass to another app (rename, destroy and
create): so a stream reads its app's name by id at its start, before it sends lines and
at every heartbeat, and ends once the app is gone or renamed; and it checks at its start
and every heartbeat that its creator may still view the app (a deleted user may not).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from flask import Blueprint, Response, jsonify, request

from paas.api import auth, slots
from paas.api.context import Context, ctx, find_app, json_body, principal
from paas.domain.access import Permission
from paas.domain.errors import NotFound, PaasError
from paas.state import database, log_sessions
from paas.state.log_sessions import LogSession

blueprint = Blueprint("log_sessions", __name__)
MAX_TAILS = 4  # per API process
MAX_TAILS_PER_CREATOR = 2  # per API process: one user cannot take every slot
HEARTBEAT_SECONDS = 10.0
POLL_SECONDS = 0.2
READ_BATCH = 1000  # what one LogStore.read(after=...) returns at most
TAIL_SLOTS = slots.SlotPool(MAX_TAILS, MAX_TAILS_PER_CREATOR)  # keyed by creator's user id
TAILS = TAIL_SLOTS.total
GONE = "no such log session, or it expired: ask for a new one (heroku logs)"


class TooManyTails(PaasError):
    id = "rate_limit"
    status = 429


@blueprint.post("/apps/<name>/log-sessions")
def create(name: str) -> tuple[Response, int]:
    context = ctx()
    app = find_app(name, Permission.VIEW)
    found, secret = log_sessions.create(context.store, app, json_body(), principal())
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
    found = log_sessions.claim(context.store, secret)  # a plain read's secret is used up
    if found is None:
        raise NotFound(GONE)
    try:
        app_name = log_sessions.app_name(context.store, found.app_id)
        if app_name is None or not _allowed(context, found):
            raise NotFound(GONE)
        if found.tail:
            _take_tail(found.user_id)
    except PaasError:
        if found.tail:
            log_sessions.release(context.store, found)
        raise
    response = Response(events(context, app_name, found), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    if found.tail:
        released = threading.Event()

        def release() -> None:  # once, however the stream ended (or never started)
            if not released.is_set():
                released.set()
                _give_tail(found.user_id)
                log_sessions.release(context.store, found)

        response.call_on_close(release)
    return response


def _take_tail(user_id: str | None) -> None:
    """One of the process's tail slots for this creator, or TooManyTails."""
    refused = TAIL_SLOTS.take(user_id)
    if refused == "key":
        raise TooManyTails(
            f"you stream {MAX_TAILS_PER_CREATOR} log tails from this API process already:"
            " end one (Ctrl-C) before starting another"
        )
    if refused == "total":
        raise TooManyTails(
            f"this API process streams {MAX_TAILS} log tails already: try again once one ended"
        )


def _give_tail(user_id: str | None) -> None:
    TAIL_SLOTS.give(user_id)


def events(context: Context, app: str, found: LogSession) -> Iterator[bytes]:
    lines, cursor = context.logs.read(app, num=found.lines, process=found.dyno, source=found.source)
    if lines and _same_app(context, found, app):
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
                    if not _same_app(context, found, app):
                        return  # the name is another app's now: its lines are not ours
                    yield event([line.format() for line in lines])
                if len(lines) < READ_BATCH:
                    break
        if time.monotonic() - beat >= HEARTBEAT_SECONDS:
            if not _same_app(context, found, app) or not _allowed(context, found):
                return  # destroyed, renamed, or no longer the creator's to see
            yield b": heartbeat\n\n"  # a client gone makes this write fail
            beat = time.monotonic()
        time.sleep(POLL_SECONDS)


def _same_app(context: Context, found: LogSession, name: str) -> bool:
    """The session's app still exists and still has the name its log is read by."""
    return log_sessions.app_name(context.store, found.app_id) == name


def _allowed(context: Context, found: LogSession) -> bool:
    """The session's creator still exists and may still view its app."""
    creator = log_sessions.creator(context.store, found)
    if creator is None:
        return False
    try:
        app = context.store.app(found.app_id)
    except NotFound:
        return False
    held = context.store.permission(app, creator)
    return held is not None and held >= Permission.VIEW


def event(lines: list[str]) -> bytes:
    """One server-sent event of several lines (a log line holds no newline)."""
    flat = (line.replace("\r", " ").replace("\n", " ") for line in lines)
    return "".join(f"data: {line}\n" for line in flat).encode() + b"\n"
