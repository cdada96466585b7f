"""Dynos (listing and restarts) and log lines."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify, request

from paas.api.context import ctx, find_app
from paas.domain.errors import InvalidParams
from paas.domain.procfile import formation_types
from paas.dynos.runtime import ProcessRuntime
from paas.reconcile.agent import describe_dynos

blueprint = Blueprint("dynos", __name__)
CPU_WINDOW_SECONDS = 0.2


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return (
        datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


@blueprint.get("/apps/<name>/dynos")
def list_dynos(name: str) -> Response:
    context = ctx()
    app = find_app(name)
    runtime = ProcessRuntime(context.settings.dynos_dir, {})
    statuses = [s for s in runtime.list() if s.spec.app == app.name]
    now = time.time()
    views = describe_dynos(statuses, context.store.slots(app))
    usage = sample_usage(runtime, [v.id for v in views if v.id and v.state == "up"])
    return jsonify(
        [
            {
                "name": v.name,
                "type": v.type,
                "state": v.state,
                "release": {"version": v.release},
                "command": v.command,
                "started_at": iso(v.started_at),
                "uptime_seconds": None if v.started_at is None else round(now - v.started_at, 1),
                "crash_count": v.crash_count,
                "last_exit_status": v.last_exit_status,
                "next_retry_at": iso(v.next_retry_at) if v.state == "crashed" else None,
                **usage.get(v.id or "", {}),
            }
            for v in views
        ]
    )


def sample_usage(runtime: ProcessRuntime, dyno_ids: list[str]) -> dict[str, dict[str, float]]:
    """Working-set memory and CPU % over a short window, per dyno."""
    if not dyno_ids:  # no dyno up: nothing to wait a window for (most apps of a big host)
        return {}
    first = {i: runtime.stats(i) for i in dyno_ids}
    time.sleep(CPU_WINDOW_SECONDS)
    usage = {}
    for dyno_id, before in first.items():
        after = runtime.stats(dyno_id)
        if before is None or after is None:
            continue
        busy = max(0, after.cpu_ns - before.cpu_ns) / (CPU_WINDOW_SECONDS * 1e9)
        usage[dyno_id] = {
            "memory_mb": round(after.memory_bytes / 2**20, 1),
            "cpu_percent": round(100 * busy, 1),
        }
    return usage


@blueprint.delete("/apps/<name>/dynos")
@blueprint.delete("/apps/<name>/dynos/<target>")
def restart(name: str, target: str = "") -> tuple[Response, int]:
    context = ctx()
    app = find_app(name)
    latest = context.store.latest_release(app)
    if target:
        kind, _, number = target.partition(".")
        known = formation_types(latest.process_types if latest else {})
        if kind not in known or (number and not number.isdigit()):
            raise InvalidParams(
                f"no dyno or process type {target!r} in {app.name}: `paas ps` lists them"
            )
    context.store.request_restart(app, target)
    context.logs.event(app.name, "api", f"Restart {target or 'all dynos'} requested")
    return jsonify(message=f"Restarting {target or 'all dynos'} of {app.name}"), 202


@blueprint.get("/apps/<name>/log-lines")
def log_lines(name: str) -> Response:
    context = ctx()
    app = find_app(name)
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
