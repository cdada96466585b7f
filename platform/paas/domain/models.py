"""The platform's records as frozen values: apps, releases, formation entries, builds,
dyno slots, the release statuses with the moves allowed between them, and the desired
state the agent reads in one snapshot.

Pure: the store (paas.state.store) reads and writes them; everything above passes them
around. Nothing here touches a database, a process or the network.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field

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
    user_id: str | None = None  # who caused it (None: the operator, or before it was kept)
    user_email: str | None = None

    @property
    def settled(self) -> bool:
        return self.status in SETTLED_STATUSES

    @property
    def has_slug(self) -> bool:
        """False for a config change made before the app's first deploy: no code to run."""
        return bool(self.artifact)


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
    user_id: str | None = None  # the pusher (None: the operator, or before it was kept)
    user_email: str | None = None
    release_id: str | None = None  # the release it made, once made
    stack: str | None = None  # the stack it built on
    buildpacks: str | None = None  # JSON list of the buildpack URLs it was given
    stream_secret: str | None = None  # no longer set (paas.state.build_streams grants)


@dataclass(frozen=True)
class DynoSlot:
    """Crash bookkeeping for one dyno name (web.1): what `paas ps` shows and backoff uses."""

    name: str
    crash_count: int
    last_exit_status: int | None
    next_retry_at: float | None


@dataclass(frozen=True)
class AppState:
    """One app as the agent wants it, read with every other app in one transaction."""

    app: App
    current: Release | None  # the release dynos run (newest deploying or succeeded)
    unsettled: tuple[Release, ...] = ()  # pending and deploying, oldest first
    formation: tuple[FormationEntry, ...] = ()
    generations: dict[str, int] = field(default_factory=dict)  # restart target -> generation
    slots: dict[str, DynoSlot] = field(default_factory=dict)
    domains: tuple[str, ...] = ()  # custom domains, sorted

    @property
    def quantities(self) -> dict[str, int]:
        return {f.type: f.quantity for f in self.formation}

    @property
    def sizes(self) -> dict[str, str]:
        return {f.type: f.size for f in self.formation}

    def generation(self, name: str) -> int:
        """The restart generation a new dyno `name` (web.1) starts at."""
        kind = name.split(".", 1)[0]
        g = self.generations
        return max(g.get("", 0), g.get(kind, 0), g.get(name, 0))


@dataclass(frozen=True)
class DesiredState:
    """Every app, sorted by name: what `Store.desired_state()` returns for one tick."""

    apps: tuple[AppState, ...] = ()

    def by_name(self) -> dict[str, AppState]:
        return {state.app.name: state for state in self.apps}


# Slug ids: UUIDs (version 5) derived from the slug's content digest, so a slug has one id
# wherever it is named, without a column to keep it.
_SLUG_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://paas.invalid/slugs")


@functools.lru_cache(maxsize=4096)
def slug_id(artifact: str) -> str | None:
    """The stable UUID Heroku's API names a slug by; None for a release without one."""
    return str(uuid.uuid5(_SLUG_NAMESPACE, artifact)) if artifact else None
