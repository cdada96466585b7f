"""The router loop: make HAProxy serve what routes.json says, and report what is live.

Reconciles observed state against desired state on every tick instead of reacting to
events: read routes.json, render it, and apply only when the rendered files differ from
the ones HAProxy is serving or HAProxy is not running. Invariants:
- A bad routes.json or a config HAProxy rejects never replaces the last good config; it
  costs one line on stderr (repeated only when the problem changes).
- applied.json names the generation HAProxy is serving, and is written only after the
  apply succeeded, so the control plane can wait on it.
"""

import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from paas_router import fileio, layout, render
from paas_router.errors import RouterError
from paas_router.model import RouterSettings, RouteTable, route_table_from_json

EMPTY_TABLE = RouteTable(generation=0, apps=())


class Proxy(Protocol):
    """What the loop needs from HAProxy; ``paas_router.haproxy.HAProxy`` is the real one."""

    def running(self) -> bool: ...

    def installed(self) -> tuple[str, str] | None: ...

    def apply(self, text: str, hosts_map_text: str) -> None: ...


def _log_stderr(line: str) -> None:
    print(f"paas-router: {line}", file=sys.stderr, flush=True)


def read_routes(path: Path) -> RouteTable:
    """The route table in ``path``; a missing file is the empty table (nothing routed)."""
    text = fileio.read_text(path)
    if text is None:
        return EMPTY_TABLE
    try:
        data = json.loads(text)
    except ValueError as err:
        raise RouterError(f"{path} is not valid JSON: {err}") from None
    try:
        return route_table_from_json(data)
    except RouterError as err:
        raise RouterError(f"{path}: {err}") from None


class RouterService:
    """One router: ``tick()`` reconciles once, ``run()`` ticks until told to stop."""

    def __init__(
        self,
        routes_path: Path,
        settings: RouterSettings,
        haproxy: Proxy,
        *,
        log: Callable[[str], None] = _log_stderr,
    ) -> None:
        self.routes_path = routes_path
        self.settings = settings
        self.haproxy = haproxy
        self._log = log
        self._last_good: RouteTable | None = None
        self._recorded_generation: int | None = None
        self._last_error: str | None = None

    @property
    def applied_path(self) -> Path:
        return self.settings.run_dir / layout.APPLIED_FILE

    def tick(self) -> bool:
        """Reconcile once; True when HAProxy was started or reloaded."""
        try:
            table = read_routes(self.routes_path)
        except RouterError as err:
            self._report(f"keeping the current routes: {err}")
            if self._last_good is None:
                return False
            # Still reconcile the last good table, in case HAProxy died meanwhile.
            table = self._last_good
        try:
            applied = self._reconcile(table)
        except (RouterError, OSError) as err:
            self._report(f"keeping the current config: {err}")
            return False
        if table is not self._last_good:
            self._last_error = None
        self._last_good = table
        return applied

    def _reconcile(self, table: RouteTable) -> bool:
        config = render.render(table, self.settings)
        hosts = render.render_hosts_map(table)
        applied = False
        if not self.haproxy.running() or self.haproxy.installed() != (config, hosts):
            self.haproxy.apply(config, hosts)
            applied = True
        if self._recorded_generation != table.generation:
            fileio.write_atomic(
                self.applied_path, json.dumps({"generation": table.generation}) + "\n"
            )
            self._recorded_generation = table.generation
        return applied

    def _report(self, line: str) -> None:
        # A bad routes.json stays bad for many ticks; say so once, not five times a second.
        if line != self._last_error:
            self._log(line)
            self._last_error = line

    def run(self, stop_event: threading.Event, interval: float = 0.2) -> None:
        """Tick every ``interval`` seconds until ``stop_event`` is set.

        HAProxy is left running on return: routes keep being served while the router
        restarts, and the next router adopts the master.
        """
        while not stop_event.is_set():
            self.tick()
            stop_event.wait(interval)
