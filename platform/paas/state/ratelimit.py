"""The API's limits, as pure counting (no I/O): failed authentications per client address,
and API calls per user (a token bucket, Heroku's 4,500 an hour).

Job: decide, from a record and the time, the next record and whether the request is
refused. The store keeps the records in SQLite so every API worker counts together.
Invariants: only failures are counted per address; a request with a valid token is never
looked up there, so a success is never slowed or refused, whatever its address did before.
A call bucket never holds more than its capacity, and a refused call takes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    """`limit` failures within `window_seconds` are allowed; the next one starts a block
    of `block_seconds` during which every failure is answered 429."""

    limit: int = 10
    window_seconds: float = 60.0
    block_seconds: float = 60.0


@dataclass(frozen=True)
class Failures:
    window_start: float
    count: int
    blocked_until: float

    def refused_for(self, now: float) -> float:
        return max(0.0, self.blocked_until - now)


def after_failure(before: Failures | None, now: float, policy: Policy) -> Failures:
    """The record once one more failure happened at `now`. A block is not extended by the
    failures it refuses, so Retry-After stays true."""
    if before is not None and before.blocked_until > now:
        return before
    if before is None or before.blocked_until or now - before.window_start >= policy.window_seconds:
        return Failures(now, 1, 0.0)  # first failure, a block served, or a window gone
    count = before.count + 1
    blocked_until = now + policy.block_seconds if count > policy.limit else 0.0
    return Failures(before.window_start, count, blocked_until)


def retry_after(seconds: float) -> str:
    """The Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


# --- API calls per caller: a token bucket ------------------------------------------------
@dataclass(frozen=True)
class CallPolicy:
    """Heroku's: 4,500 calls an hour per account, refilled continuously."""

    capacity: float = 4500.0
    per_seconds: float = 3600.0

    @property
    def rate(self) -> float:
        return self.capacity / self.per_seconds


@dataclass(frozen=True)
class Take:
    level: float  # the bucket after this call
    allowed: bool

    @property
    def remaining(self) -> int:
        return max(0, math.floor(self.level))


def take_call(before: tuple[float, float] | None, now: float, policy: CallPolicy) -> Take:
    """The bucket once one call was asked for at `now`: a full bucket when new; refilled
    for the time since it was last seen (never above capacity); one call taken when at
    least one is left, else refused and left as it is (a refused call costs nothing)."""
    if before is None:
        level = policy.capacity
    else:
        last_level, updated = before
        level = min(policy.capacity, last_level + max(0.0, now - updated) * policy.rate)
    if level < 1.0:
        return Take(level, False)
    return Take(level - 1.0, True)


def seconds_until_call(level: float, policy: CallPolicy) -> float:
    """How long until the bucket holds one call again."""
    return max(0.0, (1.0 - level) / policy.rate)
