"""Dynos (listing and restarts) and log lines."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify, request

from paas.api.context import ctx, find_app
from paas.domain.access import Permission
from paas.domain.errors import InvalidParams
from paas.domain.procfile import formation_types
from paas.dynos.runtime import ProcessRuntime
from paas.reconcile.agent import describe_dynos

blueprint = Blueprint("dynos", __name__)
MIN_WINDOW_SECONDS = 1.0


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return (
        datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


@blueprint.get("/apps/<name>/dynos")
def list_dynos(name: str) -> Response:
    context = ctx()
    app = find_app(name, Permission.VIEW)
    runtime = ProcessRuntime(context.settings.dynos_dir, {})
    statuses = [s for s in runtime.list() if s.spec.app == app.name]
    now = time.time()
    views = describe_dynos(statuses, context.store.slots(app))
    running = [(v.id, v.started_at) for v in views if v.id and v.state == "up"]
    usage = sample_usage(runtime, app.name, running)
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
def restart(name: str, target: str = "") -> tuple[Response, int]:
    context = ctx()
    app = find_app(name, Permission.OPERATE)
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
