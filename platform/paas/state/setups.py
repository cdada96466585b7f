"""The record of an app's app.json setup: which of its first-deploy steps are done.

An app's setup (paas.push.app_setup) runs in steps, each recorded here once it has
happened, so a push that failed half-way redoes only what is not done and a later push
redoes nothing. Rows go with the app (ON DELETE CASCADE).

Invariant: a step is recorded at most once (the first record wins: a step never runs
twice, so there is nothing to overwrite); the statements run inside the caller's
transaction, so a step's change and its record commit together.
"""

from __future__ import annotations

from paas.domain.models import App
from paas.state.store import Tx, now_iso


def steps(tx: Tx, app: App) -> dict[str, str]:
    """The steps done, each with its detail (a commit, an exit status ...)."""
    rows = tx.execute("SELECT step, detail FROM app_setup_steps WHERE app_id = ?", (app.id,))
    return {row["step"]: row["detail"] for row in rows}


def mark(tx: Tx, app: App, step: str, detail: str = "") -> None:
    tx.execute(
        "INSERT INTO app_setup_steps (app_id, step, detail, done_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (app_id, step) DO NOTHING",
        (app.id, step, detail, now_iso()),
    )
