"""`paas server`: the whole platform in the foreground, from its own Procfile.

The server runs the platform's processes (api, agent, router) as children that die with it,
even on SIGKILL (PR_SET_PDEATHSIG). Dynos and HAProxy live in sessions of their own, so
stopping or killing the server leaves apps serving; a new server adopts them. `paas server
--stop` stops everything, apps included.

Invariant of a stop: the processes that start dynos or HAProxy (the agent and its
supervisor launcher, the router, the API and its workers) are gone before the dynos are
stopped, so nothing starts one after the stop has looked. The server records its children
in run/server.children for that: a stop still finds them when the server was killed or
does not exit.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from paas.addons import firewall as addon_firewall
from paas.api import rendezvous
from paas.artifacts import collector
from paas.artifacts.slugs import SlugStore
from paas.domain import procfile
from paas.domain.clock import Clock
from paas.domain.dyno import DynoStatus
from paas.domain.errors import PaasError
from paas.domain.settings import Settings
from paas.dynos import capability
from paas.dynos.placement import Placement
from paas.dynos.runtime import ProcessRuntime, Runtime
from paas.host import procs
from paas.host.clock import SystemClock
from paas.host.jsonfile import write_json
from paas.isolation import container, network
from paas.isolation.users import build_user, ensure_user, router_user
from paas.push.builder import ensure_tools
from paas.reconcile import readiness
from paas.reconcile.agent import Agent, supervisor_environment
from paas.reconcile.drains import Drains
from paas.reconcile.one_off import DynoStarter, OneOffs
from paas.reconcile.readiness import Prober
from paas.reconcile.release_phase import ReleasePhases
from paas.reconcile.routes import RoutePublisher, withdraw
from paas.state.logs import LogStore
from paas.state.store import Store

PLATFORM_PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"
DEFAULT_PROCESSES = {
    "api": "paas api",
    "agent": "paas agent",
    "router": "paas router",
    "addon-servers": "paas addons:servers",
}
CHILD_STOP_SECONDS = 10.0
# The server's own stop takes at most CHILD_STOP_SECONDS and the grandchildren's few
# seconds; past this a stop kills it.
SERVER_STOP_SECONDS = CHILD_STOP_SECONDS + 10.0
GRANDCHILD_STOP_SECONDS = 3.0


def platform_processes() -> dict[str, str]:
    if PLATFORM_PROCFILE.is_file():
        return procfile.parse(PLATFORM_PROCFILE.read_text())
    return DEFAULT_PROCESSES


def layout(settings: Settings) -> dict[Path, int]:
    """PAAS_HOME's directories and their modes. Private (0700): what only root reads —
    repos, slugs, images, runtime state. Traversable (0711, no listing): where a plain-process
    dyno or build reaches its own 0700 directory, owned by its app's uid. The tools are
    read by every build."""
    return {
        settings.home: 0o711,
        settings.repos_dir: 0o700,
        settings.run_dir: 0o700,
        settings.router_dir: 0o700,
        settings.slugs_dir: 0o700,
        settings.images_dir: 0o700,
        settings.builds_dir: 0o711,
        settings.cache_dir: 0o711,
        settings.dynos_dir: 0o711,
        settings.tools_dir: 0o755,
    }


def prepare(settings: Settings) -> None:
    """Creates PAAS_HOME's layout (modes fixed at every start, also for a PAAS_HOME made
    before), the database, the dyno user and the admin token."""
    for directory, mode in layout(settings).items():
        directory.mkdir(mode=mode, parents=True, exist_ok=True)
        directory.chmod(mode)
    user = build_user(settings)
    if user is not None:
        ensure_user(user)
        check_reachable(settings.home, user)
    ensure_tools(settings)
    store = Store(settings.db_path)
    LogStore(settings.logs_db_path)
    ensure_admin_token(settings, store)
    found = capability.detect(settings)
    capability.save(settings, found)
    if found.containers:
        print(f"paas: {found.reason}", flush=True)
        # Dynos outlive the control plane: theirs are the add-on openings (none else).
        addon_firewall.restore(settings, store, ProcessRuntime(settings.dynos_dir, {}).list())
    else:
        print(f"paas: dynos run as plain processes: {found.reason}", flush=True)
    if user is None:
        print(
            f"paas: not root: every app runs as uid {os.getuid()}, this platform's own, and "
            "could read the other apps' files: a second app is refused unless "
            "PAAS_SHARED_UID=1 (run as root for a uid per app)",
            flush=True,
        )


def check_reachable(home: Path, user: str) -> None:
    for directory in [home, *home.parents]:
        if not os.stat(directory).st_mode & 0o001:
            raise PaasError(
                f"PAAS_HOME {home} is not reachable by user {user}: {directory} is not "
                "world-executable; choose a PAAS_HOME such as /var/lib/paas or run chmod o+x"
            )


MIN_ADMIN_TOKEN_LENGTH = 16  # with the failure limit, guessing a token stays hopeless


def ensure_admin_token(settings: Settings, store: Store, terminal: bool | None = None) -> None:
    """The admin token is PAAS_ADMIN_TOKEN, else the kept file, else a new one; it replaces
    the previous admin token, which stops working. A new token is shown only on a terminal:
    output sent to a file or a journal would keep it readable there."""
    token = settings.admin_token
    path = settings.admin_token_file
    if token is not None and len(token) < MIN_ADMIN_TOKEN_LENGTH:
        raise PaasError(
            f"PAAS_ADMIN_TOKEN is shorter than {MIN_ADMIN_TOKEN_LENGTH} characters: use a "
            "long random one (python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    kept = path.read_text().strip() if path.exists() else None
    generated = token is None and not kept
    token = token or kept or secrets.token_urlsafe(32)
    if kept is None or not hmac.compare_digest(kept.encode(), token.encode()):
        write_private(path, token + "\n")
    if store.replace_token(token, "admin") and not generated:
        print("paas: admin API token changed: the previous one is revoked", flush=True)
    if generated:
        print(
            generated_token_notice(
                token, path, sys.stdout.isatty() if terminal is None else terminal
            ),
            flush=True,
        )


def generated_token_notice(token: str, path: Path, terminal: bool) -> str:
    if terminal:
        return f"paas: generated admin API token (kept in {path}):\n{token}"
    return f"paas: generated admin API token, kept in {path} (mode 0600; not printed: no terminal)"


def write_private(path: Path, text: str) -> None:
    """Writes a secret file whole at 0600 (a crash leaves the old one or the new one)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def child_argv(command: str) -> list[str]:
    """`paas NAME ...` from the Procfile runs with this interpreter, wherever PATH points."""
    words = command.split()
    if words and words[0] == "paas":
        return [sys.executable, "-m", "paas", *words[1:]]
    return ["/bin/sh", "-c", command]


class Server:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = threading.Event()

    def handle(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping.set()

    def spawn(self, name: str, command: str) -> None:
        self.children[name] = subprocess.Popen(
            child_argv(command), preexec_fn=procs.die_with_parent, stdin=subprocess.DEVNULL
        )
        self.record_children()

    def record_children(self) -> None:
        found = [procs.identity(child.pid) for child in self.children.values()]
        write_json(children_file(self.settings), [list(i) for i in found if i is not None])

    def run(self) -> int:
        prepare(self.settings)
        collector.at_start(self.settings)
        pidfile = self.settings.run_dir / "server.pid"
        pidfile.write_text(f"{os.getpid()} {procs.start_time(os.getpid())}\n")
        signal.signal(signal.SIGTERM, self.handle)
        signal.signal(signal.SIGINT, self.handle)
        processes = platform_processes()
        for name, command in processes.items():
            self.spawn(name, command)
        print(
            f"paas: API on http://{self.settings.bind_address}:{self.settings.api_port}, "
            f"apps on http://APP.{self.settings.domain}:{self.settings.http_port}",
            flush=True,
        )
        while not self.stopping.wait(0.5):
            for name, child in list(self.children.items()):
                if child.poll() is not None:
                    print(f"paas: {name} exited with {child.returncode}; restarting", flush=True)
                    time.sleep(1.0)
                    self.spawn(name, processes[name])
        self.stop_children()
        children_file(self.settings).unlink(missing_ok=True)
        pidfile.unlink(missing_ok=True)
        print("paas: control plane stopped; dynos and router keep serving", flush=True)
        return 0

    def stop_children(self) -> None:
        """TERM, the bounded wait, KILL; then whatever of their own children outlived them
        (an API worker or the agent's launcher whose parent had to be killed)."""
        grandchildren = [g for child in self.children.values() for g in procs.children(child.pid)]
        for child in self.children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + CHILD_STOP_SECONDS
        for child in self.children.values():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        procs.stop_processes(grandchildren, GRANDCHILD_STOP_SECONDS)


def run_api(settings: Settings) -> None:
    """Replaces this process with gunicorn serving the API (threads for long git pushes).
    The rendezvous certificate is made first, so it is there for a client to trust before
    the first `heroku run` (paas.api.rendezvous)."""
    rendezvous.certificate(settings.home / "rendezvous", settings)
    os.execv(sys.executable, api_argv(settings))


def api_argv(settings: Settings) -> list[str]:
    """gunicorn serving the API. No control socket: gunicorn's default is one path for
    every gunicorn of the user (~/.gunicorn/gunicorn.ctl or $XDG_RUNTIME_DIR's), so a
    second platform on the host, or an app's gunicorn run by hand, would take it over and
    delete it when it exits; nothing of the platform uses it."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{settings.bind_address}:{settings.api_port}",
        "--workers",
        "2",
        "--worker-class",
        "gthread",
        "--threads",
        "16",
        "--timeout",
        "0",
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
        "--umask",
        "0o077",
        "--no-control-socket",
        "paas.api:create_app()",
    ]


def build_agent(
    settings: Settings, store: Store, logs: LogStore, runtime: Runtime, clock: Clock
) -> Agent:
    """The agent and its collaborators, wired once: placement, release phases, the
    readiness prober, routes and drains, all on the one clock."""
    wake = threading.Event()
    placement = Placement(settings, store, capability.load(settings), SlugStore(settings.slugs_dir))
    start = DynoStarter(placement, runtime, logs)
    start_one_off = start.one_off  # release.1 and run.N alike
    release_phases = ReleasePhases(
        store, logs, runtime, start_one_off, settings.release_timeout_seconds
    )
    return Agent(
        settings,
        store,
        logs,
        runtime,
        prober=Prober(readiness.answers, wake, readiness.initial_delay),
        release_phases=release_phases,
        routes=RoutePublisher(settings, logs),
        drains=Drains(runtime, logs, clock),
        start=start,
        clock=clock,
        wake=wake,
        one_offs=OneOffs(store, logs, runtime, start_one_off),
    )


def run_agent(settings: Settings) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runtime = ProcessRuntime(settings.dynos_dir, supervisor_environment(settings))
    store, logs = Store(settings.db_path), LogStore(settings.logs_db_path)
    agent = build_agent(settings, store, logs, runtime, SystemClock())
    try:
        agent.run(stop)
    finally:
        runtime.close()


def run_router(settings: Settings) -> None:
    from paas_router.haproxy import HAProxy
    from paas_router.model import RouterSettings
    from paas_router.service import RouterService

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker_user = router_user()
    if worker_user is not None:
        ensure_user(worker_user)
    router_settings = RouterSettings(
        http_port=settings.http_port,
        bind_address="*",
        run_dir=settings.router_dir,
        client_maxconn=settings.router_client_maxconn,
        worker_user=worker_user,
    )
    service = RouterService(
        settings.routes_path, router_settings, HAProxy(run_dir=settings.router_dir)
    )
    service.run(stop)


def run_addon_servers(settings: Settings) -> None:
    from paas.addons.supervisor import Supervisor

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    Supervisor(settings, time.monotonic).run(stop)


def children_file(settings: Settings) -> Path:
    return settings.run_dir / "server.children"


def stop_control_plane(settings: Settings) -> None:
    """Stops the server and, bounded, every process of its family still running: its
    children (recorded by the server) and theirs. The server stops them itself; when it
    does not exit in time it is killed, and those it left (orphans, as after a server that
    was killed) are stopped here. Fails, naming them, if any cannot be stopped."""
    pidfile = settings.run_dir / "server.pid"
    server = None
    if pidfile.exists():
        pid, _, started = pidfile.read_text().partition(" ")
        server = (int(pid), int(started or 0))
    recorded = read_identities(children_file(settings))
    family = [*recorded, *(g for pid, _ in recorded for g in procs.children(pid))]
    if server is not None and procs.alive(*server):
        procs.stop_processes([server], SERVER_STOP_SECONDS)
    # Children started after the first look (the launcher of a dyno start) count too.
    family += [
        g for pid, started in family if procs.alive(pid, started) for g in procs.children(pid)
    ]
    left = procs.stop_processes(family, CHILD_STOP_SECONDS)
    if server is not None and procs.alive(*server):
        left.insert(0, server[0])
    if left:
        raise PaasError(
            f"cannot stop the platform's processes {', '.join(map(str, left))}: its dynos "
            "keep running; end those processes (kill -9) and run `paas server --stop` again"
        )
    children_file(settings).unlink(missing_ok=True)


def read_identities(path: Path) -> list[procs.Identity]:
    """The (pid, start time) pairs of a children file; none when it is missing or torn."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    pairs = (
        [p for p in data if isinstance(p, list) and len(p) == 2] if isinstance(data, list) else []
    )
    return [(p[0], p[1]) for p in pairs if all(isinstance(n, int) for n in p)]


def stop_everything(settings: Settings) -> None:
    """Stops the server and its processes, then every dyno and HAProxy, leaving no process
    behind, and none of its dynos' state: routes.json no longer lists them, and each
    container dyno's network namespace, veth pair, address claim and unreachable route are
    gone, and so is the home's own chain of add-on openings. The host-wide bridge, NAT rule
    and firewall chains stay: every PAAS_HOME on the host shares them, and a platform still
    running (perhaps with no container dyno at this instant) would start its next dynos
    without a firewall. The add-on servers stop last (their data and records stay)."""
    stop_control_plane(settings)
    runtime = ProcessRuntime(settings.dynos_dir, {}) if settings.dynos_dir.exists() else None
    stopped = [] if runtime is None else stop_dynos(settings, runtime)
    withdraw(settings, [s.spec for s in stopped])
    if settings.router_dir.exists():
        from paas_router.haproxy import HAProxy

        HAProxy(run_dir=settings.router_dir).stop()
    if runtime is not None:
        forget_for_good(runtime, stopped)
    addon_firewall.remove(settings)
    # After the dynos: a dyno stopping gracefully may still write to its database.
    from paas.addons.supervisor import stop_servers

    stop_servers(settings)


def forget_for_good(runtime: ProcessRuntime, stopped: list[DynoStatus]) -> None:
    """Forgets stopped dynos once HAProxy is gone: nothing sends to their addresses any
    more, so these need not cool (paas.isolation.network.retire)."""
    for status in stopped:
        runtime.forget(status.spec.id)
        plan = container.plan_from(status.spec.container)
        if plan is not None:
            network.retire(status.spec.id, plan.address)


def stop_dynos(settings: Settings, runtime: ProcessRuntime) -> list[DynoStatus]:
    """Asks every dyno to stop and waits (bounded) for them; returns them all."""
    for status in runtime.list():
        if status.state != "exited":
            runtime.stop(status.spec.id)
    limit = settings.stop_grace_seconds + 5
    procs.wait_until(lambda: all(s.state == "exited" for s in runtime.list()), limit)
    return runtime.list()
