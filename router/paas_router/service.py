"""The router loop: make HAProxy serve what routes.json says, and report what is live.

Reconciles against the desired state on every tick instead of reacting to events: read
routes.json, render it, and compare it with what the running worker serves. Invariants:
- The config and map on disk always describe the wanted table, so a reload at any moment
  serves it. A config is validated by ``haproxy -c`` before the reload that loads it; a
  runtime change writes the same config with other server lines and map entries, which
  the route table's own checks vouch for.
- What the runtime API can express (servers of existing apps, hostnames of existing apps)
  is changed in the running worker without a reload (``plan``); a removed server is
  drained over several ticks, never by blocking one (``drain``). Everything else — a new
  or removed app, changed settings, HAProxy not running, a router that just started and
  so does not know what the worker has, any runtime command failing — is a reload through
  the master socket, which resets the worker to the files on disk.
- One bad app in routes.json (a name or hostname the rules refuse, a hostname another
  app has) is left out and the rest is served; it is logged once and listed in
  applied.json as rejected, so the control plane can show it. A routes.json that is not a
  route table at all, or a config HAProxy rejects, never replaces the last good config; it
  costs one line on stderr (repeated only when the problem changes).
- applied.json names a generation only once HAProxy serves it: every server it adds is
  enabled and every server it removes is in maint (gets no new request), so the control
  plane can stop a removed dyno as soon as it sees it.
"""

import dataclasses
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from paas_router import drain, fileio, layout, plan, render, runtime
from paas_router.errors import RouterError
from paas_router.model import RouteParser, RouterSettings, RouteTable

EMPTY_TABLE = RouteTable(generation=0, apps=())


class Proxy(Protocol):
    """What the loop needs from HAProxy; ``paas_router.haproxy.HAProxy`` is the real one."""

    def running(self) -> bool: ...

    def installed(self) -> tuple[str, str] | None: ...

    def apply(self, text: str, hosts_map_text: str) -> None: ...

    def install(self, text: str, hosts_map_text: str) -> None: ...

    def runtime_command(self, command: str) -> str: ...


class _CommandFailed(RouterError):
    """A runtime command HAProxy did not carry out; the answer is a reload."""


def _log_stderr(line: str) -> None:
    print(f"paas-router: {line}", file=sys.stderr, flush=True)


def read_routes(path: Path) -> RouteTable:
    """The route table in ``path``, without the apps it rejects (listed in ``rejected``);
    a missing file is the empty table (nothing routed)."""
    return RouteReader(path).read()


class RouteReader:
    """Reads routes.json; the same text gives the same table object, unparsed, and a
    changed one is parsed by a RouteParser (unchanged apps are not checked again)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._parser = RouteParser()
        self._last: tuple[str | None, RouteTable] | None = None

    def read(self) -> RouteTable:
        try:
            text = fileio.read_text(self.path)
        except (OSError, UnicodeDecodeError) as err:  # a directory, unreadable, not UTF-8
            raise RouterError(f"cannot read {self.path}: {err}") from None
        if self._last is not None and self._last[0] == text:
            return self._last[1]
        table = EMPTY_TABLE if text is None else self._parse(text)
        self._last = (text, table)
        return table

    def _parse(self, text: str) -> RouteTable:
        try:
            data = json.loads(text)
        except ValueError as err:
            raise RouterError(f"{self.path} is not valid JSON: {err}") from None
        try:
            return self._parser.parse(data)
        except RouterError as err:
            raise RouterError(f"{self.path}: {err}") from None


class RouterService:
    """One router: ``tick()`` reconciles once, ``run()`` ticks until told to stop.

    Seams: ``haproxy`` (a Proxy), ``log``, ``clock`` (for drain limits) and
    ``drain_limit_s`` (how long a removed server may keep its requests before it is put in
    maint anyway).
    """

    def __init__(
        self,
        routes_path: Path,
        settings: RouterSettings,
        haproxy: Proxy,
        *,
        log: Callable[[str], None] = _log_stderr,
        clock: Callable[[], float] = time.monotonic,
        drain_limit_s: float = 10.0,
    ) -> None:
        self.routes_path = routes_path
        self.settings = settings
        self._reader = RouteReader(routes_path)
        self._renderer = render.Renderer(settings)
        self.haproxy = haproxy
        self._log = log
        self._clock = clock
        self._drain_limit_s = drain_limit_s
        self._last_good: RouteTable | None = None
        self._recorded_generation: int | None = None
        self._last_error: str | None = None
        self._rejections_logged: frozenset[str] = frozenset()
        # The table the running worker serves, as this process made it; None when unknown
        # (at start-up, or after a command or reload that failed): the next tick reloads.
        self._live: RouteTable | None = None
        # The config the worker loaded, without its server lines: what needs a reload.
        self._loaded: str | None = None
        # Servers the worker still has although ``_live`` no longer lists them.
        self._retiring: dict[tuple[str, str], drain.Retiring] = {}

    @property
    def applied_path(self) -> Path:
        return self.settings.run_dir / layout.APPLIED_FILE

    def retiring(self) -> list[drain.Retiring]:
        """The servers being removed, oldest first (for tests and status output)."""
        return sorted(self._retiring.values(), key=lambda r: r.since)

    def tick(self) -> bool:
        """Reconcile once; True when HAProxy was started or reloaded."""
        try:
            table = self._reader.read()
        except RouterError as err:
            self._report(f"keeping the current routes: {err}")
            if self._last_good is None:
                return False
            # Still reconcile the last good table, in case HAProxy died meanwhile.
            table = self._last_good
        self._report_rejected(table)
        try:
            reloaded = self._reconcile(table)
        except (RouterError, OSError) as err:
            self._report(f"keeping the current config: {err}")
            return False
        if table is not self._last_good:
            self._last_error = None
        self._last_good = table
        return reloaded

    def _report_rejected(self, table: RouteTable) -> None:
        lines = frozenset(f"left out app {r.app!r}: {r.reason}" for r in table.rejected)
        for line in sorted(lines - self._rejections_logged):
            self._log(line)
        self._rejections_logged = lines

    def _reconcile(self, table: RouteTable) -> bool:
        running = self.haproxy.running()
        if running and table is self._live and not self._retiring:
            return False  # an idle tick: HAProxy serves this very table, nothing drains
        rendered = self._renderer.render(table)
        planned = self._plan(table, rendered.skeleton, running)
        reasons = planned.reload_reasons
        if not reasons:
            try:
                self._change_at_runtime(planned, table, rendered.config, rendered.hosts_map)
            except _CommandFailed as err:
                self._live = None
                reasons = (str(err),)
        if reasons:
            self._reload(table, rendered, reasons)
        self._record_applied()
        return bool(reasons)

    def _plan(self, table: RouteTable, skeleton: str, running: bool) -> plan.Plan:
        if not running:
            return plan.Plan(reload_reasons=("haproxy is not running",))
        if self._live is None:
            return plan.Plan(reload_reasons=("syncing with the running haproxy",))
        planned = plan.diff(self._live, table, self._retiring.keys())
        if not planned.reload_reasons and skeleton != self._loaded:
            return plan.Plan(reload_reasons=("settings changed",))
        return planned

    def _reload(
        self, table: RouteTable, rendered: render.Rendered, reasons: tuple[str, ...]
    ) -> None:
        starting = not self.haproxy.running()
        try:
            self.haproxy.apply(rendered.config, rendered.hosts_map)
        except BaseException:
            # It may have half-happened: only a reload that succeeds says what is served.
            self._live = None
            raise
        self._live = table
        self._loaded = rendered.skeleton
        # The new worker has only what the config lists; old workers finish their requests.
        self._retiring.clear()
        self._log("started haproxy" if starting else f"reloaded: {'; '.join(reasons)}")

    def _change_at_runtime(
        self, planned: plan.Plan, table: RouteTable, config: str, hosts: str
    ) -> None:
        if self.haproxy.installed() != (config, hosts):
            # First: if the write fails, nothing has changed in HAProxy yet.
            self.haproxy.install(config, hosts)
        for op in planned.operations:
            for command in plan.commands(op):
                self._send(command)
            if isinstance(op, plan.RemoveServer):
                since = self._clock()
                self._retiring[(op.app, op.name)] = drain.Retiring(
                    op.app, op.name, drain.Stage.DRAINING, since
                )
            else:
                self._log(plan.describe(op))
        self._live = table
        self._advance_retiring()

    def _advance_retiring(self) -> None:
        if not self._retiring:
            return
        try:
            sessions = runtime.parse_server_sessions(self._ask(runtime.SHOW_SERVER_STATS))
        except RouterError as err:
            raise _CommandFailed(str(err)) from None
        now = self._clock()
        for key, server in list(self._retiring.items()):
            current = sessions.get((render.backend_name(server.app), server.name))
            step = drain.next_step(server, current, now, self._drain_limit_s)
            if step is drain.Step.WAIT:
                continue
            if step is drain.Step.FORGET:
                del self._retiring[key]
                continue
            if step in (drain.Step.MAINT, drain.Step.MAINT_LATE):
                self._send(runtime.set_state(server.app, server.name, "maint"))
                if step is drain.Step.MAINT_LATE:
                    self._log(
                        f"{server.name} of app {server.app} still had {current} requests "
                        f"after {self._drain_limit_s:g}s of draining: it gets no new ones, "
                        "and is removed once they end"
                    )
                server = dataclasses.replace(server, stage=drain.Stage.MAINT)
                self._retiring[key] = server
            self._delete(key, server)

    def _delete(self, key: tuple[str, str], server: drain.Retiring) -> None:
        command = runtime.delete_server(server.app, server.name)
        answer = self._ask(command.text)
        if command.succeeded(answer) or runtime.no_such_server(answer):
            del self._retiring[key]
            took = self._clock() - server.since
            self._log(f"drained and removed {server.name} from app {server.app} ({took:.1f}s)")
        elif not runtime.still_connected(answer):
            raise _CommandFailed(f"runtime command {command.text!r} failed: {answer.strip()}")

    def _send(self, command: runtime.Command) -> None:
        answer = self._ask(command.text)
        if not command.succeeded(answer):
            raise _CommandFailed(f"runtime command {command.text!r} failed: {answer.strip()}")

    def _ask(self, text: str) -> str:
        try:
            return self.haproxy.runtime_command(text)
        except RouterError as err:
            raise _CommandFailed(str(err)) from None

    def _record_applied(self) -> None:
        # Served means: nothing removed still draining (in maint, it gets no new request).
        if self._live is None or any(
            r.stage is drain.Stage.DRAINING for r in self._retiring.values()
        ):
            return
        if self._recorded_generation != self._live.generation:
            rejected = [{"app": r.app, "reason": r.reason} for r in self._live.rejected]
            document = {"generation": self._live.generation, "rejected": rejected}
            fileio.write_atomic(self.applied_path, json.dumps(document) + "\n")
            self._recorded_generation = self._live.generation

    def _report(self, line: str) -> None:
        # A bad routes.json stays bad for many ticks; say so once, not five times a second.
        if line != self._last_error:
            self._log(line)
            self._last_error = line

    def run(self, stop_event: threading.Event, interval: float = 0.2, poll: float = 0.01) -> None:
        """Tick every ``interval`` seconds, and within ``poll`` of a change to routes.json
        (a stat is cheap, a tick renders the whole config), until ``stop_event`` is set.

        HAProxy is left running on return: routes keep being served while the router
        restarts, and the next router adopts the master (with one reload, to learn what
        it serves).
        """
        seen: tuple[int, int, int] | None = None
        last_tick = float("-inf")
        while not stop_event.is_set():
            stamp = fileio.stamp(self.routes_path)
            if stamp != seen or time.monotonic() - last_tick >= interval:
                seen, last_tick = stamp, time.monotonic()
                self.tick()
            stop_event.wait(poll)
