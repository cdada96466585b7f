"""The platform's records as frozen values: apps, releases, formation entries, builds,
dyno slots, and the release statuses with the moves allowed between them.

Pure: the store (paas.state.store) reads and writes them; everything above passes them
around. Nothing here touches a database, a process or the network.
"""

from __future__ import annotations

from dataclasses import dataclass

# A release's life: "pending" while its release phase runs, "deploying" while its web
# dynos boot and pass their checks, then "succeeded" (it serves) or "failed" (it never
# served; the release before it kept serving). "superseded": a newer release came first.
RELEASE_STATUSES = ("pending", "deploying", "succeeded", "failed", "superseded")
SETTLED_STATUSES = ("succeeded", "failed", "superseded")
RUNNABLE_STATUSES = ("deploying", "succeeded")
UNSETTLED = ("pending", "deploying")
# The allowed moves (from any of, to); each is applied only if the release is still "from".
PHASE_PASSED = (("pending",), "deploying")
PHASE_FAILED = (("pending",), "failed")
ROLLED_OUT = (("deploying",), "succeeded")
ROLLOUT_FAILED = (("deploying",), "failed")
OVERTAKEN = (UNSETTLED, "superseded")
ABANDONED = (UNSETTLED, "failed")


@dataclass(frozen=True)
class App:
    id: str
    name: str
    stack: str
    created_at: str


@dataclass(frozen=True)
class Release:
    id: str
    app_id: str
    version: int
    description: str
    artifact: str
    config: dict[str, str]
    process_types: dict[str, str]
    created_at: str
    image: str | None = None
    status: str = "succeeded"
    status_detail: str | None = None
    status_at: float | None = None
    healthcheck: str | None = None  # JSON of paas.domain.healthcheck.HealthCheck

    @property
    def settled(self) -> bool:
        return self.status in SETTLED_STATUSES


@dataclass(frozen=True)
class FormationEntry:
    type: str
    quantity: int
    size: str


@dataclass(frozen=True)
class Build:
    id: str
    app_id: str
    status: str
    source_version: str
    artifact: str | None
    output: str
    created_at: str
    finished_at: str | None


@dataclass(frozen=True)
class DynoSlot:
    """Crash bookkeeping for one dyno name (web.1): what `paas ps` shows and backoff uses."""

    name: str
    crash_count: int
    last_exit_status: int | None
    next_retry_at: float | None
