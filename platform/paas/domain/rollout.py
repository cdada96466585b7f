"""When a deploying release has succeeded or failed (pure).

A release is rolled out once every web dyno its formation asks for (web.1 … web.N) is up
on it, meaning it passed its health check, and every web dyno of older releases has been
drained from the router (it is only stopped after that). It fails, and the release before it keeps
serving, when one of its web dynos exits before it answered or when the boot timeout
passes first. Apps with no web dyno to wait for succeed at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from paas.domain import healthcheck
from paas.domain.dyno_plan import LIVE_STATES, Crash, ObservedDyno
from paas.domain.models import Release


@dataclass(frozen=True)
class Deploying:
    app: str
    version: int
    since: float
    web_quantity: int
    boot_timeout: float


@dataclass(frozen=True)
class Verdict:
    status: str  # "succeeded" or "failed"
    detail: str


def judge(
    rollout: Deploying, dynos: Iterable[ObservedDyno], crashes: Iterable[Crash], now: float
) -> Verdict | None:
    """The verdict on a deploying release, or None while it is still booting."""
    wanted = {f"web.{i}" for i in range(1, rollout.web_quantity + 1)}
    mine = [d for d in dynos if d.app == rollout.app and d.type == "web"]
    up = {d.name for d in mine if d.release == rollout.version and d.state == "up"}
    old_routed = any(
        d.release != rollout.version and d.state in LIVE_STATES and not d.stop_requested
        for d in mine
    )
    if wanted <= up:  # then only waiting for the drain, itself bounded
        return None if old_routed else Verdict("succeeded", f"web dynos up: {len(wanted)}")
    # The boot timeout first: a dyno stopped for booting too long also counts as a crash.
    if now - rollout.since > rollout.boot_timeout:
        waiting = ", ".join(sorted(wanted - up))
        return Verdict(
            "failed",
            f"{waiting} did not pass the health check within the boot timeout "
            f"({rollout.boot_timeout:.0f}s)",
        )
    for crash in crashes:
        if crash.app == rollout.app and crash.name in wanted:
            status = "no exit status" if crash.exit_status is None else crash.exit_status
            return Verdict("failed", f"{crash.name} exited ({status}) before the rollout ended")
    return None


def boot_timeout(release: Release | None, default: float) -> float:
    """How long web dynos may take to pass: the app's own health check says, when it has
    one (as in Dokku); otherwise the platform's boot timeout."""
    if release is None or release.healthcheck is None:
        return default
    return healthcheck.deadline_seconds(healthcheck.HealthCheck.from_json(release.healthcheck))
