"""Drains: a web dyno leaves the router before it is stopped.

A dyno the plan stops while it is up is drained: it leaves the next route table, and is
stopped only once the router reports serving a route generation without it — never before,
however long that takes: a router that is down or stuck leaves HAProxy serving its last
table, which still sends requests to the dyno, so stopping it would turn them into errors.
Such a dyno is logged once and stays. A dyno the plan no longer stops (its replacement
failed) is forgotten here and routed again.
"""

from __future__ import annotations

from paas.domain.clock import Clock
from paas.dynos.runtime import Runtime
from paas.state.logs import LogStore

# The router drains a removed server for up to 10 s before it leaves HAProxy for good; a
# dyno still waiting for the router's word after this long is worth a line in its log.
DRAIN_TIMEOUT_SECONDS = 15.0


class Drains:
    def __init__(self, runtime: Runtime, logs: LogStore, clock: Clock) -> None:
        self.runtime = runtime
        self.logs = logs
        self.clock = clock
        self.needed: dict[str, int] = {}  # dyno id -> the route generation it is out of
        self.started: dict[str, float] = {}
        self.overdue: set[str] = set()

    def __contains__(self, dyno_id: object) -> bool:
        return dyno_id in self.needed

    def begin(self, dyno_id: str, generation: int) -> None:
        """Drains the dyno until the router serves `generation` (the next table); a dyno
        already draining keeps the generation it waits for."""
        if dyno_id not in self.needed:
            self.needed[dyno_id] = generation
            self.started[dyno_id] = self.clock.now()

    def keep_only(self, stopping: set[str]) -> None:
        """A dyno the plan no longer stops (its replacement failed) is routed again."""
        for dyno_id in [d for d in self.needed if d not in stopping]:
            self.forget(dyno_id)

    def forget(self, dyno_id: str) -> None:
        self.needed.pop(dyno_id, None)
        self.started.pop(dyno_id, None)
        self.overdue.discard(dyno_id)

    def finish(self, applied: int, now: float) -> bool:
        """Stops each draining dyno once the router serves generation `applied` without it;
        says once of a dyno waiting longer than DRAIN_TIMEOUT_SECONDS why it still runs.
        True when one was stopped (a rollout waiting for it can be judged at once)."""
        stopped = False
        for dyno_id, generation in list(self.needed.items()):
            if applied >= generation:
                self.runtime.stop(dyno_id)
                self.forget(dyno_id)
                stopped = True
                continue
            waited = now - self.started.get(dyno_id, now)
            if waited > DRAIN_TIMEOUT_SECONDS and dyno_id not in self.overdue:
                self.overdue.add(dyno_id)
                app, _, rest = dyno_id.partition(".")
                self.logs.event(
                    app,
                    rest.split(".v", 1)[0],
                    f"Kept running after {waited:.0f}s of draining: the router has not "
                    f"confirmed it is routed out (it serves route generation {applied}, "
                    f"this needs {generation}); is `paas router` running?",
                )
        return stopped
