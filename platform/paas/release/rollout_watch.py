"""A push follows its release until it serves: the pusher sees the release command's
output and the outcome, and the push fails when the release does.

Only the agent judges a rollout. The push gives up on its own (and then fails the
release, so it can never go live behind a rejected push) only after the longest time the
agent could legitimately take, plus a margin for an agent that is not running at all.
"""

from __future__ import annotations

import math
import time

from paas.domain import rollout
from paas.domain.errors import BuildFailed
from paas.domain.models import ABANDONED, App, Release
from paas.domain.output import Output
from paas.domain.procfile import PHASE_DYNO, RELEASE_PHASE
from paas.domain.settings import Settings
from paas.state import database
from paas.state.logs import LogStore
from paas.state.store import Store

POLL_SECONDS = 0.1  # the longest between two reads of the release and its log
WATCH_SECONDS = 0.01  # how often the databases' files are stat'ed for a change
MARGIN_SECONDS = 30.0
STEPS = {
    "pending": "-----> Running release command...\n",
    "deploying": "-----> Waiting for the web dynos to pass their health checks...\n",
}


def budget(settings: Settings, release: Release) -> float:
    """The longest the agent may take to settle `release`."""
    phase = settings.release_timeout_seconds if RELEASE_PHASE in release.process_types else 0.0
    boot = rollout.boot_timeout(release, settings.boot_timeout_seconds)
    return phase + settings.stop_grace_seconds + boot + MARGIN_SECONDS


def follow(
    settings: Settings,
    store: Store,
    logs: LogStore,
    app: App,
    release: Release,
    log_cursor: int,
    out: Output,
    push_deadline: float = math.inf,
) -> None:
    """Returns once `release` (or a newer one carrying the same build) serves; raises
    BuildFailed when it fails. A pusher who hangs up fails the release, and so does the
    end of the push's own time (PAAS_PUSH_TIMEOUT, `push_deadline` on time.monotonic())."""
    deadline = min(time.monotonic() + budget(settings, release), push_deadline)
    late = (
        f"the push took longer than {settings.push_timeout_seconds:.0f}s (PAAS_PUSH_TIMEOUT)"
        if deadline == push_deadline
        else "not rolled out in time (is `paas server` running?)"
    )
    shown = ""
    while True:
        lines, log_cursor = logs.read(app.name, after=log_cursor, process=PHASE_DYNO, source="app")
        now = store.release(app, release.version)
        try:
            out.write("".join(f"       {line.message}\n" for line in lines))
            if now.status != shown:
                out.write(STEPS.get(now.status, ""))
                shown = now.status
            out.flush()
        except BrokenPipeError:
            give_up(store, app, release, "the push was interrupted")
        if now.status == "succeeded":
            return
        if now.status == "failed":
            raise BuildFailed(
                f"release v{release.version} failed: {now.status_detail}. See `paas logs`"
            )
        if now.status == "superseded":
            release = successor(store, app, release)
            out.write(f"-----> v{now.version} was overtaken by v{release.version}, same build\n")
        if time.monotonic() > deadline:
            give_up(store, app, release, late)
        wait_for_change(settings)


def wait_for_change(settings: Settings) -> None:
    """Returns within WATCH_SECONDS of a commit to the state database (the agent settling
    the release), and at most POLL_SECONDS on (the release command's output, in the logs
    database, which a busy app writes too often to wake on)."""
    before = database.stamp(settings.db_path)
    end = time.monotonic() + POLL_SECONDS
    while time.monotonic() < end and database.stamp(settings.db_path) == before:
        time.sleep(WATCH_SECONDS)


def successor(store: Store, app: App, release: Release) -> Release:
    """The newer release to follow instead; fails unless it runs the same build."""
    newer = store.latest_release(app)
    if newer is None or newer.artifact != release.artifact:
        what = "nothing" if newer is None else f"v{newer.version} ({newer.description})"
        raise BuildFailed(
            f"release v{release.version} was not rolled out: {what} replaced it first"
        )
    return newer


def give_up(store: Store, app: App, release: Release, why: str) -> None:
    if store.set_release_status(app, release.version, ABANDONED, why, time.time()):
        raise BuildFailed(f"release v{release.version} failed: {why}")
    # Settled meanwhile: the next poll reports how.
