"""`paas addons:servers`, the platform process (Procfile line `addon-servers`) that keeps
the add-on servers running while their add-ons exist, and runs scheduled backups.

It learns of add-ons from the records provision writes under PAAS_HOME/addons (not from
the store: this side of the seam keeps its own list). Each second it looks: PostgreSQL
runs while at least one postgresql record exists and is stopped once none does (a
platform with no add-on pays nothing); one redis-server runs per redis record. A server
found not running is started again, after a backoff that doubles with each failure in a
row (1 s up to a minute). Provision does not wait for this loop: it starts its server
itself (under the same lock), so the two never race and provisioning works even while
this process restarts.

Invariant: stopping this process (SIGTERM, or a kill -9 of `paas server`) stops
supervision only. The servers are detached daemons, like dynos and HAProxy: the apps keep
their databases while the control plane is down, and the next supervisor adopts them by
their pidfiles. `paas server --stop` stops them, after the dynos (stop_servers). An
unexpected error in one server's or schedule's turn is logged to the platform log and the
loop goes on; a scheduled backup runs in a thread of its own (a long pg_dump does not hold
up the servers' restarts), and one that fails is recorded as Failed, so it is tried again
on its next day, not every second.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from paas.addons import backups, hosting
from paas.addons.postgresql import PostgreSQL
from paas.addons.redis import Redis
from paas.domain.errors import PaasError
from paas.domain.settings import Settings
from paas.host import platform_log

INTERVAL_SECONDS = 1.0
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0


@dataclass
class Backoff:
    """When each server may next be started (pure: times are given)."""

    failures: dict[str, int] = field(default_factory=dict)
    next_try: dict[str, float] = field(default_factory=dict)

    def ready(self, key: str, now: float) -> bool:
        return now >= self.next_try.get(key, 0.0)

    def failed(self, key: str, now: float) -> float:
        """Records a failed start; returns the delay before the next try."""
        count = self.failures.get(key, 0) + 1
        self.failures[key] = count
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * float(2 ** (count - 1)))
        self.next_try[key] = now + delay
        return delay

    def succeeded(self, key: str) -> None:
        self.failures.pop(key, None)
        self.next_try.pop(key, None)


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        monotonic: Callable[[], float],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        say: Callable[[str], None] = platform_log.line,
    ) -> None:
        self.settings = settings
        self.postgresql = PostgreSQL(settings)
        self.redis = Redis(settings)
        self.backoff = Backoff()
        self.monotonic = monotonic
        self.now = now
        self.say = say
        self.captures: dict[str, threading.Thread] = {}  # scheduled pg_dumps under way

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.step()
            stop.wait(INTERVAL_SECONDS)
        self.finish_captures()  # a dump under way completes (and is recorded) first

    def finish_captures(self) -> None:
        for thread in list(self.captures.values()):
            thread.join()

    def step(self) -> None:
        """One look at every server and schedule; a unit that fails unexpectedly is logged
        and the others still run (this loop must outlive any one add-on's trouble)."""
        self._guarded("PostgreSQL", self.keep_postgresql)
        for addon_id in self._guarded_ids("redis", self.redis.addon_ids):
            self._guarded(f"redis {addon_id}", functools.partial(self.keep_redis, addon_id))
        for addon_id in self._guarded_ids("postgresql", self.postgresql.cluster.addon_ids):
            backup = functools.partial(self.scheduled_backup, addon_id)
            self._guarded(f"backups of {addon_id}", backup)

    def _guarded(self, unit: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception:
            platform_log.exception(f"paas addons: looking after {unit} failed")

    def _guarded_ids(self, service: str, ids: Callable[[], list[str]]) -> list[str]:
        try:
            return ids()
        except Exception:
            platform_log.exception(f"paas addons: listing the {service} add-ons failed")
            return []

    def keep_redis(self, addon_id: str) -> None:
        instance = self.redis.instance(addon_id)
        self.keep(f"redis {addon_id}", instance.pid() is not None, instance.ensure_running)

    def keep_postgresql(self) -> None:
        cluster = self.postgresql.cluster
        running = cluster.pid() is not None
        if cluster.addon_ids():
            self.keep("PostgreSQL", running, cluster.ensure_running)
        elif running and cluster.stop_if_unused():
            self.say("paas addons: no postgresql add-on is left: stopped PostgreSQL")

    def keep(self, name: str, running: bool, start: Callable[[], None]) -> None:
        if running:
            self.backoff.succeeded(name)
            return
        now = self.monotonic()
        if not self.backoff.ready(name, now):
            return
        self.say(f"paas addons: {name} is not running: starting it")
        try:
            start()
        except PaasError as error:
            delay = self.backoff.failed(name, now)
            self.say(
                f"paas addons: {name} failed to start ({error.message}); next try in {delay:g}s"
            )
        else:
            self.backoff.succeeded(name)

    def scheduled_backup(self, addon_id: str) -> None:
        """Starts a due capture in a thread of its own: a pg_dump may take up to
        DUMP_TIMEOUT, and the servers' restarts must not wait for it."""
        running = self.captures.get(addon_id)
        if running is not None and running.is_alive():
            return
        store = backups.Backups(self.settings, addon_id)
        if not store.due(self.now()):
            return
        thread = threading.Thread(
            target=self._guarded,
            args=(f"backups of {addon_id}", functools.partial(self._capture, store, addon_id)),
            name=f"backup {addon_id}",
        )
        self.captures[addon_id] = thread
        thread.start()

    def _capture(self, store: backups.Backups, addon_id: str) -> None:
        try:
            made = store.capture(self.postgresql, scheduled=True, now=self.now())
        except Exception as error:
            why = error.message if isinstance(error, PaasError) else repr(error)
            self.say(f"paas addons: scheduled backup of {addon_id} failed: {why}")
            store.record_failure(scheduled=True, now=self.now(), detail=why)  # not again today
        else:
            self.say(f"paas addons: scheduled backup {made.id} of {addon_id}: {made.status}")


def stop_servers(settings: Settings) -> None:
    """Stops every add-on server of this PAAS_HOME (their data and records stay)."""
    if not hosting.root(settings).exists():
        return
    postgresql = PostgreSQL(settings)
    if postgresql.cluster.data.exists():
        postgresql.cluster.stop()
    redis = Redis(settings)
    for addon_id in redis.addon_ids():
        redis.instance(addon_id).stop()
