"""Taking a server out of the running HAProxy without cutting a request.

A removed server goes through explicit stages, one step per router tick, so the tick loop
never blocks on it:

    DRAINING  ``set server … state drain``: no new request, the running ones go on;
              left once HAProxy shows no session on it, or after the drain limit
    MAINT     ``set server … state maint``: no request at all, ever;
              ``del server`` is retried every tick while HAProxy still has connections
    (gone)    deleted, or no longer in HAProxy at all (a reload took it away)

Pure: the stage is data and ``next_step`` decides from what HAProxy reports. Invariant: a
server reaches MAINT only once it is idle or has drained for ``limit`` seconds, and a
route generation counts as served once none of its removed servers is still DRAINING.
"""

import enum
from dataclasses import dataclass


class Stage(enum.Enum):
    DRAINING = "draining"
    MAINT = "maint"


@dataclass(frozen=True)
class Retiring:
    """A server being removed from ``app``: its HAProxy name, stage, and when it began."""

    app: str
    name: str
    stage: Stage
    since: float


class Step(enum.Enum):
    WAIT = "wait"  # still has requests, within the drain limit
    MAINT = "maint"  # idle: to maint, then delete
    MAINT_LATE = "maint-late"  # drain limit passed with requests left: to maint anyway
    DELETE = "delete"  # in maint: try del server
    FORGET = "forget"  # HAProxy no longer has it


def next_step(server: Retiring, sessions: int | None, now: float, limit: float) -> Step:
    """What to do with ``server`` now, given its current ``sessions`` (None: not in HAProxy)."""
    if sessions is None:
        return Step.FORGET
    if server.stage is Stage.MAINT:
        return Step.DELETE
    if sessions == 0:
        return Step.MAINT
    if now - server.since >= limit:
        return Step.MAINT_LATE
    return Step.WAIT
