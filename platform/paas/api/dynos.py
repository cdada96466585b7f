"""Dynos in Heroku's shape (list, one, restarts) and paas's own log lines.

A dyno's fields are Heroku's (id, name, type, state, command, size, release, app,
attach_url, created_at, updated_at) with paas's figures beside them (uptime, crash
backoff, memory and CPU). Its id is derived from the runtime's id for it, so it holds
while that dyno runs and a replacement gets another. Restarts bump a restart generation
(paas.state.store) that the agent acts on; Heroku's stop of a formation dyno is one too.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify, request

from paas.api import protocol
from paas.api.context import ctx, find_app
from paas.domain import one_off, sizes
from paas.domain.access import Permission
from paas.domain.errors import InvalidParams, NotFound
from paas.domain.models import App
from paas.domain.procfile import formation_types
from paas.dynos.runtime import ProcessRuntime
from paas.reconcile.agent import describe_dynos
from paas.state import one_offs
from paas.state.one_offs import OneOffRequest

blueprint = Blueprint("dynos", __name__)
MIN_WINDOW_SECONDS = 1.0
RANGE_FIELDS = ("name", "id")
_IDS = uuid.UUID("0c6f4a8e-9d2b-4e71-b3a5-7f1e2d9c4b60")  # the namespace of derived ids
# The runtime's states as Heroku names them (up, starting, crashed, down).
STATES = {"running": "up", "stopping": "down", "exited": "down"}


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return (
        datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


@blueprint.get("/apps/<name>/dynos")
def list_dynos(name: str) -> tuple[Response, int]:
    app = find_app(name, Permission.VIEW)
    return protocol.listing(dynos_json(app), RANGE_FIELDS)


@blueprint.get("/apps/<name>/dynos/<dyno>")
def show_dyno(name: str, dyno: str) -> Response:
    app = find_app(name, Permission.VIEW)
    for found in dynos_json(app):
        if dyno in (found["name"], found["id"]):
            return jsonify(found)
    waiting = one_offs.by_name(ctx().store, app, dyno)
    if waiting is not None:  # asked for, not started yet (or ended: down)
        return jsonify(one_off_json(app, waiting))
    raise NotFound(f"no dyno {dyno} in {app.name}: `paas ps` lists them")


def dynos_json(app: App) -> list[dict[str, object]]:
    """The app's dynos in Heroku's shape, by name, with paas's figures as extra fields."""
    context = ctx()
    runtime = ProcessRuntime(context.settings.dynos_dir, {})
    statuses = [s for s in runtime.list() if s.spec.app == app.name]
    views = describe_dynos(statuses, context.store.slots(app))
    running = [(v.id, v.started_at) for v in views if v.id and v.state == "up"]
    usage = sample_usage(runtime, app.name, running)
    sizes_of = {f.type: f.size for f in context.store.formation(app)}
    with context.store.reading() as tx:  # the few releases the dynos run
        releases_of = {v.release: tx.find_release(app, v.release) for v in views if v.release}
    release_ids = {version: r.id for version, r in releases_of.items() if r is not None}
    requests = {r.name: r for r in one_offs.unended(context.store) if r.app == app.name}
    now = time.time()
    found: list[dict[str, object]] = []
    for view in views:
        request_of = requests.get(view.name) if view.type == one_off.RUN_TYPE else None
        size = (request_of.size if request_of else None) or sizes_of.get(view.type)
        found.append(
            {
                "id": dyno_id(app, view.id or view.name),
                "name": view.name,
                "type": view.type,
                "state": STATES.get(view.state, view.state),
                "command": view.command,
                "size": sizes.display(size or sizes.DEFAULT_SIZE),
                "release": None
                if view.release is None
                else {"id": release_ids.get(view.release), "version": view.release},
                "app": {"id": app.id, "name": app.name},
                "attach_url": None,
                "created_at": iso(view.started_at or now),
                "updated_at": iso(view.started_at or now),
                "started_at": iso(view.started_at),
                "uptime_seconds": None
                if view.started_at is None
                else round(now - view.started_at, 1),
                "crash_count": view.crash_count,
                "last_exit_status": view.last_exit_status,
                "next_retry_at": iso(view.next_retry_at) if view.state == "crashed" else None,
                **usage.get(view.id or "", {}),
            }
        )
    return found


def dyno_id(app: App, key: str) -> str:
    """A dyno's id, a UUID derived from the runtime's own id (APP.web.1.N), so the same
    dyno keeps it and a replacement gets a new one."""
    return str(uuid.uuid5(_IDS, f"dyno:{app.id}:{key}"))


def one_off_json(
    app: App, found: OneOffRequest, attach_url: str | None = None
) -> dict[str, object]:
    """A one-off dyno asked for, in Heroku's dyno shape; paas's own request state, exit
    status and attach path as extra fields."""
    state = "down" if found.ended else ("up" if found.dyno_id else "starting")
    created = iso(found.created_at)
    release_of = None
    if found.release is not None:
        with ctx().store.reading() as tx:
            known = tx.find_release(app, found.release)
        release_of = {"id": known.id if known else None, "version": found.release}
    return {
        "id": found.id,
        "name": found.name,
        "type": found.type,
        "state": state,
        "command": found.command,
        "size": sizes.display(found.size or sizes.DEFAULT_SIZE),
        "release": release_of,
        "app": {"id": app.id, "name": app.name},
        "attach_url": attach_url,
        "created_at": created,
        "updated_at": created,
        "attach_path": f"/apps/{app.name}/dynos/{found.name}/attach" if found.attach else None,
        "request_state": found.state,
        "exit_status": found.exit_status,
        "detail": found.detail,
    }


class CpuMeter:
    """CPU % of each dyno without waiting for a window: over the time since this API
    process last read the dyno's CPU counter (the `paas ps` before), at least
    MIN_WINDOW_SECONDS of it, else since the dyno started. Waiting 0.2 s for a sample made
    every `paas ps` of a running app slower than the API's 50 ms budget."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[float, int]] = {}  # dyno id -> (when, CPU ns then)
        self.last: dict[str, float] = {}  # dyno id -> the % last said

    def percent(self, dyno_id: str, cpu_ns: int, now: float, started_at: float | None) -> float:
        since, used = self.seen.get(dyno_id, (started_at or now, 0))
        if now - since < MIN_WINDOW_SECONDS and dyno_id in self.seen:
            return self.last.get(dyno_id, 0.0)  # too short a window to say more
        self.seen[dyno_id] = (now, cpu_ns)
        elapsed = now - since
        busy = 0.0 if elapsed <= 0 else max(0, cpu_ns - used) / (elapsed * 1e9)
        self.last[dyno_id] = round(100 * busy, 1)
        return self.last[dyno_id]

    def keep_only(self, prefix: str, dyno_ids: set[str]) -> None:
        """Forgets the gone dynos of one app (ids start with `APP.`): the meter stays as
        big as what runs."""
        for dyno_id in [d for d in self.seen if d.startswith(prefix) and d not in dyno_ids]:
            del self.seen[dyno_id]
            self.last.pop(dyno_id, None)


METER = CpuMeter()  # one per API process: what its last `paas ps` read


def sample_usage(
    runtime: ProcessRuntime, app: str, dynos: list[tuple[str, float | None]]
) -> dict[str, dict[str, float]]:
    """Working-set memory and CPU % per running dyno (id, start time), at once."""
    now = time.time()
    usage = {}
    for dyno_id, started_at in dynos:
        stats = runtime.stats(dyno_id)
        if stats is None:
            continue
        usage[dyno_id] = {
            "memory_mb": round(stats.memory_bytes / 2**20, 1),
            "cpu_percent": METER.percent(dyno_id, stats.cpu_ns, now, started_at),
        }
    METER.keep_only(f"{app}.", set(usage))
    return usage


@blueprint.delete("/apps/<name>/dynos")
@blueprint.delete("/apps/<name>/dynos/<target>")
@blueprint.delete("/apps/<name>/formations/<target>")  # Heroku's restart of a process type
def restart(name: str, target: str = "") -> tuple[Response, int]:
    app = find_app(name, Permission.OPERATE)
    return restart_target(app, target, "Restart")


def restart_target(app: App, target: str, verb: str) -> tuple[Response, int]:
    """Fresh dynos for '' (all), a type or one dyno (web.1): the agent replaces them."""
    context = ctx()
    latest = context.store.latest_release(app)
    if target:
        kind, _, number = target.partition(".")
        known = formation_types(latest.process_types if latest else {})
        if kind not in known or (number and not number.isdigit()):
            raise InvalidParams(
                f"no dyno or process type {target!r} in {app.name}: `paas ps` lists them"
            )
    context.store.request_restart(app, target)
    context.logs.event(app.name, "api", f"{verb} {target or 'all dynos'} requested")
    doing = "Restarting" if verb == "Restart" else "Stopping"
    return jsonify(message=f"{doing} {target or 'all dynos'} of {app.name}"), 202


@blueprint.get("/apps/<name>/log-lines")
def log_lines(name: str) -> Response:
    context = ctx()
    app = find_app(name, Permission.VIEW)
    source = request.args.get("source") or None
    if source not in (None, "app", "paas"):
        raise InvalidParams("--source must be app or paas")
    try:
        num = int(request.args.get("num", "100"))
        after = request.args.get("after")
        cursor = None if after is None else int(after)
    except ValueError:
        raise InvalidParams("num and after must be whole numbers") from None
    if not 1 <= num <= 10_000:
        raise InvalidParams("num must be between 1 and 10000")
    if cursor is not None and not 0 <= cursor < 2**63:
        raise InvalidParams("after must be a cursor the API returned")
    lines, cursor = context.logs.read(
        app.name, num=num, after=cursor, process=request.args.get("dyno") or None, source=source
    )
    return jsonify(lines=[line.format() for line in lines], cursor=cursor)
