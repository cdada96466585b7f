"""The one clock the agent and its collaborators read, as an interface (pure).

`now()` is wall time (seconds since the epoch: what is stored and shown, such as a
release's status_at or a crash's next retry); `monotonic()` only measures intervals (tick
pacing). The real clock is paas.host.clock.SystemClock; a test passes one it moves by hand,
so drains, backoff, rollout judging and release phases are driven without sleeping.
"""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...
    def monotonic(self) -> float: ...
