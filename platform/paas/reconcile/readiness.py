"""Readiness probes of starting web dynos, each polled in a thread of its own.

A probe may take up to its check's timeout; run inline, one slow dyno would hold up the
whole agent tick, and with it every other dyno's start and drain. So each starting dyno
gets a thread that polls every POLL_SECONDS until the probe passes or the dyno is no
longer starting, and a dyno that passes wakes the agent at once.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable

from paas.domain import healthcheck
from paas.domain.dyno import DynoSpec
from paas.host import platform_log
from paas.reconcile import probe

POLL_SECONDS = 0.1
CONNECT_TIMEOUT_SECONDS = 0.2


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def answers(spec: DynoSpec) -> bool:
    """A web dyno is ready when its app's HTTP health check passes, or by default when
    its port accepts a connection."""
    if spec.port is None:
        return False
    if spec.healthcheck is None:
        return port_open(spec.host, spec.port)
    return probe.passes(healthcheck.HealthCheck.from_json(spec.healthcheck), spec.host, spec.port)


def initial_delay(spec: DynoSpec) -> float:
    """Seconds to leave a starting dyno alone before its first probe."""
    if spec.healthcheck is None:
        return 0.0
    return float(healthcheck.HealthCheck.from_json(spec.healthcheck).initial_delay)


class Prober:
    def __init__(
        self,
        probe: Callable[[DynoSpec], bool],
        wake: threading.Event,
        delay: Callable[[DynoSpec], float] = lambda _spec: 0.0,
    ) -> None:
        self.probe = probe
        self.delay = delay
        self.wake = wake
        self.lock = threading.Lock()
        self.passed: set[str] = set()
        self.watching: dict[str, threading.Event] = {}

    def ready(self, spec: DynoSpec) -> bool:
        """True once the dyno passed; starts watching it otherwise."""
        with self.lock:
            if spec.id in self.passed:
                return True
            if spec.id not in self.watching:
                cancel = threading.Event()
                self.watching[spec.id] = cancel
                threading.Thread(
                    target=self._poll, args=(spec, cancel), name=f"probe {spec.name}", daemon=True
                ).start()
        return False

    def keep_only(self, starting: Iterable[str]) -> None:
        """Stops watching dynos that are no longer starting (up, stopped or gone)."""
        wanted = set(starting)
        with self.lock:
            for dyno_id in [d for d in self.watching if d not in wanted]:
                self.watching.pop(dyno_id).set()
            self.passed &= wanted

    def _poll(self, spec: DynoSpec, cancel: threading.Event) -> None:
        try:
            cancel.wait(self.delay(spec))
            while not cancel.is_set():
                if self.probe(spec):
                    with self.lock:
                        self.passed.add(spec.id)
                    self.wake.set()
                    return
                cancel.wait(POLL_SECONDS)
        except Exception as error:  # the top of the thread: the next tick probes afresh
            platform_log.exception(f"agent: probing {spec.id} failed: {error!r}")
        finally:
            with self.lock:
                if self.watching.get(spec.id) is cancel:
                    del self.watching[spec.id]  # the next tick starts a fresh probe
