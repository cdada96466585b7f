"""Bounded slots of an API process for long-lived answers (log tails, live build streams):
at most `per_key` held by one key (a user, a URL) and `total` in all. Invariant: a slot is
taken only when both bounds allow it, and `give` returns exactly what `take` took."""

from __future__ import annotations

import threading


class SlotPool:
    def __init__(self, total: int, per_key: int) -> None:
        self.total = threading.BoundedSemaphore(total)
        self.per_key = per_key
        self._held: dict[str | None, int] = {}
        self._lock = threading.Lock()

    def take(self, key: str | None) -> str | None:
        """None when a slot was taken; else which bound refused it: "key" or "total"."""
        with self._lock:
            if self._held.get(key, 0) >= self.per_key:
                return "key"
            if not self.total.acquire(blocking=False):
                return "total"
            self._held[key] = self._held.get(key, 0) + 1
            return None

    def give(self, key: str | None) -> None:
        with self._lock:
            left = self._held.pop(key, 1) - 1
            if left:
                self._held[key] = left
            self.total.release()
