"""One-off dyno requests in the state database: the one way to ask for a `run.N` dyno.

Whoever wants one (the API for `paas run` and `run:detached`, the push for app.json's
`scripts.postdeploy`) calls `request`; the agent (paas.reconcile.one_off) starts it within
a tick, records its dyno id, and once the dyno ended its exit status, which `wait` or
`get` read back. A request names its dyno at once (run.N, N counted per app), so the caller
can say which dyno it is before it runs.

Invariants: a row moves only forward (requested -> started -> exited, or to failed from
either), each move a guarded UPDATE inside one transaction, so the agent and a `ps:stop`
racing it never move a row back; every value is checked before it is written; each app
keeps its newest KEPT ended rows.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from paas.domain import one_off, sizes, validation
from paas.domain.errors import NotFound
from paas.domain.models import App
from paas.state.store import Store

REQUESTED, STARTED, EXITED, FAILED = "requested", "started", "exited", "failed"
ENDED = (EXITED, FAILED)
KEPT = 100  # ended requests kept per app (what `wait` may still read)


@dataclass(frozen=True)
class OneOffRequest:
    id: str
    app: str
    number: int
    command: str
    type: str = one_off.RUN_TYPE
    size: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    attach: bool = False
    tty: bool = False
    rows: int = 0
    cols: int = 0
    release: int | None = None  # run on this release once it runs (None: the current one)
    state: str = REQUESTED
    dyno_id: str | None = None
    exit_status: int | None = None
    detail: str | None = None
    created_at: float = 0.0

    @property
    def name(self) -> str:
        return one_off.run_name(self.number)

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    def to_one_off(self, command: str) -> one_off.OneOff:
        """What the agent starts, `command` resolved against the release's Procfile."""
        return one_off.OneOff(
            name=self.name,
            command=command,
            type=self.type,
            size=self.size,
            env=dict(self.env),
            attach=self.attach,
            tty=self.tty,
            rows=self.rows,
            cols=self.cols,
        )


def _row(row: Any, app: str) -> OneOffRequest:
    return OneOffRequest(
        id=row["id"],
        app=app,
        number=row["number"],
        command=row["command"],
        type=row["type"],
        size=row["size"],
        env=json.loads(row["env"]),
        attach=bool(row["attach"]),
        tty=bool(row["tty"]),
        rows=row["rows"],
        cols=row["cols"],
        release=row["release"],
        state=row["state"],
        dyno_id=row["dyno_id"],
        exit_status=row["exit_status"],
        detail=row["detail"],
        created_at=row["created_at"],
    )


def request(
    store: Store,
    app: App,
    command: str,
    *,
    env: dict[str, str] | None = None,
    size: str | None = None,
    type: str = one_off.RUN_TYPE,
    attach: bool = False,
    tty: bool = False,
    rows: int = 0,
    cols: int = 0,
    release: int | None = None,
) -> OneOffRequest:
    """Asks for a one-off dyno `run.N` of `app` running `command` (a shell command line, or
    a Procfile process name first); returns the request, its name already given. Detached
    unless `attach` (then its supervisor waits for a client on its socket: paas.api.run).
    InvalidParams for a bad value, nothing written."""
    command = one_off.check_command(command)
    extra = {
        validation.config_key(k): validation.config_value(k, v) for k, v in (env or {}).items()
    }
    validation.config_size({**store.config(app), **extra})  # what the dyno's env holds
    if size is not None:
        sizes.memory_mb(size)
    validation.process_type(type)
    rows, cols = one_off.check_window(rows, cols)
    row_id = str(uuid.uuid4())
    with store.transaction() as tx:
        top = tx.execute(
            "SELECT MAX(number) FROM one_off_dynos WHERE app_id = ?", (app.id,)
        ).fetchone()[0]
        number = int(top or 0) + 1
        tx.execute(
            "INSERT INTO one_off_dynos (id, app_id, number, command, type, size, env, attach,"
            " tty, rows, cols, release, state, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row_id,
                app.id,
                number,
                command,
                type,
                size,
                json.dumps(extra),
                int(attach),
                int(tty),
                rows,
                cols,
                release,
                REQUESTED,
                time.time(),
            ),
        )
    return get(store, app, row_id)


def get(store: Store, app: App, request_id: str) -> OneOffRequest:
    with store.reading() as tx:
        row = tx.execute(
            "SELECT * FROM one_off_dynos WHERE id = ? AND app_id = ?", (request_id, app.id)
        ).fetchone()
    if row is None:
        raise NotFound(f"no one-off dyno request {request_id} in {app.name}")
    return _row(row, app.name)


def by_name(store: Store, app: App, name: str) -> OneOffRequest | None:
    """The request of dyno `name` (run.N) of `app`, or None."""
    kind, _, number = name.partition(".")
    if kind != one_off.RUN_TYPE or not (number.isascii() and number.isdigit()):
        return None
    with store.reading() as tx:
        row = tx.execute(
            "SELECT * FROM one_off_dynos WHERE app_id = ? AND number = ?", (app.id, int(number))
        ).fetchone()
    return None if row is None else _row(row, app.name)


def unended(store: Store) -> list[OneOffRequest]:
    """Every app's requests not ended yet (requested or started), oldest first: the
    agent's work."""
    with store.reading() as tx:
        rows = tx.execute(
            "SELECT one_off_dynos.*, apps.name AS app_name FROM one_off_dynos"
            " JOIN apps ON apps.id = one_off_dynos.app_id"
            " WHERE state IN (?, ?) ORDER BY created_at",
            (REQUESTED, STARTED),
        ).fetchall()
    return [_row(r, r["app_name"]) for r in rows]


def mark_started(store: Store, request_id: str, dyno_id: str) -> bool:
    with store.transaction() as tx:
        moved = tx.execute(
            "UPDATE one_off_dynos SET state = ?, dyno_id = ? WHERE id = ? AND state = ?",
            (STARTED, dyno_id, request_id, REQUESTED),
        ).rowcount
    return bool(moved)


def cancel(store: Store, request_id: str, detail: str) -> bool:
    """Fails a request the agent has not started yet; False once it started (or ended):
    then its dyno is the one to stop."""
    with store.transaction() as tx:
        moved = tx.execute(
            "UPDATE one_off_dynos SET state = ?, detail = ? WHERE id = ? AND state = ?",
            (FAILED, detail, request_id, REQUESTED),
        ).rowcount
    return bool(moved)


def mark_ended(
    store: Store, request_id: str, exit_status: int | None, detail: str | None = None
) -> bool:
    """Ends a request: exited with `exit_status`, or failed (None) saying `detail`; keeps
    each app's newest KEPT ended rows."""
    state = FAILED if exit_status is None else EXITED
    with store.transaction() as tx:
        moved = tx.execute(
            "UPDATE one_off_dynos SET state = ?, exit_status = ?, detail = ?"
            " WHERE id = ? AND state IN (?, ?)",
            (state, exit_status, detail, request_id, REQUESTED, STARTED),
        ).rowcount
        tx.execute(
            "DELETE FROM one_off_dynos WHERE state IN (?, ?) AND app_id = ("
            " SELECT app_id FROM one_off_dynos WHERE id = ?) AND number <= ("
            " SELECT MAX(number) FROM one_off_dynos WHERE app_id = ("
            " SELECT app_id FROM one_off_dynos WHERE id = ?)) - ?",
            (EXITED, FAILED, request_id, request_id, KEPT),
        )
    return bool(moved)


def wait(
    store: Store, app: App, request_id: str, timeout: float, interval: float = 0.1
) -> OneOffRequest:
    """The request once it ended (its `exit_status`: the command's, None when it failed to
    run, `detail` says why), or as it is after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = get(store, app, request_id)
        if found.ended or time.monotonic() >= deadline:
            return found
        time.sleep(interval)
