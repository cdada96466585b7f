"""The host's real clock (paas.domain.clock.Clock): time.time and time.monotonic."""

from __future__ import annotations

import time


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()
