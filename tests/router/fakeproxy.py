"""A hand-written stand-in for paas_router.haproxy.HAProxy, for the router loop's decisions.

It keeps the files "on disk", whether HAProxy is running, and one worker: the backends,
servers and host map of the last config applied, changed by a small runtime API that
gives HAProxy 2.6's own answers (as measured against the real one). Tests set a server's
``sessions``, make commands fail, or reject configs.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from paas_router.errors import RouterError


@dataclass
class FakeServer:
    address: str
    state: str = "ready"  # ready, drain or maint
    health: bool = True
    sessions: int = 0


@dataclass
class FakeHAProxy:
    files: tuple[str, str] | None = None
    alive: bool = False
    reject: str | None = None  # apply() raises RouterError(reject), as `haproxy -c` would
    unwritable: bool = False  # install() raises OSError, as a full disk would
    fail: str | None = None  # a runtime command starting with this gets an error answer
    applied: list[tuple[str, str]] = field(default_factory=list)
    installs: list[tuple[str, str]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    backends: set[str] = field(default_factory=set)
    servers: dict[tuple[str, str], FakeServer] = field(default_factory=dict)
    hosts: dict[str, str] = field(default_factory=dict)

    # -- the Proxy protocol ----------------------------------------------------------------

    def running(self) -> bool:
        return self.alive

    def installed(self) -> tuple[str, str] | None:
        return self.files

    def apply(self, text: str, hosts_map_text: str) -> None:
        if self.reject:
            raise RouterError(self.reject)
        self.applied.append((text, hosts_map_text))
        self.files = (text, hosts_map_text)
        self.alive = True
        self._load(text, hosts_map_text)

    def install(self, text: str, hosts_map_text: str) -> None:
        if self.unwritable:
            raise OSError(28, "No space left on device")
        self.installs.append((text, hosts_map_text))
        self.files = (text, hosts_map_text)

    def runtime_command(self, command: str) -> str:
        self.commands.append(command)
        if self.fail and command.startswith(self.fail):
            return "Unexpected error.\n"
        words = command.split()
        match words:
            case ["add", "server", target, address, *_]:
                return self._add_server(target, address)
            case ["enable", "health", target]:
                return self._with_server(target, lambda s: setattr(s, "health", True))
            case ["enable", "server", target]:
                return self._with_server(target, lambda s: setattr(s, "state", "ready"))
            case ["set", "server", target, "state", state]:
                return self._with_server(target, lambda s: setattr(s, "state", state))
            case ["del", "server", target]:
                return self._del_server(target)
            case ["show", "stat", "-1", "4", "-1"]:
                rows = "".join(f"{b},{n},0,0,{s.sessions}\n" for (b, n), s in self.servers.items())
                return "# pxname,svname,qcur,qmax,scur\n" + rows + "\n"
            case ["add", "map", "hosts.map", host, backend]:
                self.hosts[host] = backend
                return "\n"
            case ["set", "map", "hosts.map", host, backend]:
                if host not in self.hosts:
                    return "entry not found.\n\n"
                self.hosts[host] = backend
                return "\n"
            case ["del", "map", "hosts.map", host]:
                if self.hosts.pop(host, None) is None:
                    return "Key not found.\n\n"
                return "\n"
        return "Unknown command.\n"

    # -- what a test looks at ----------------------------------------------------------------

    def reloads(self) -> int:
        return len(self.applied)

    def ready(self, backend: str) -> set[str]:
        """Names of the servers of ``backend`` that take new requests."""
        return {n for (b, n), s in self.servers.items() if b == backend and s.state == "ready"}

    def server(self, backend: str, name: str) -> FakeServer:
        return self.servers[(backend, name)]

    # -- inside --------------------------------------------------------------------------------

    def _load(self, text: str, hosts_map_text: str) -> None:
        """A new worker: exactly what the config lists."""
        self.backends, self.servers, backend = set(), {}, ""
        for line in text.splitlines():
            words = line.split()
            if words[:1] == ["backend"]:
                backend = words[1]
                self.backends.add(backend)
            elif words[:1] == ["server"]:
                self.servers[(backend, words[1])] = FakeServer(words[2])
        self.hosts = dict(
            line.split() for line in hosts_map_text.splitlines() if not line.startswith("#")
        )

    def _add_server(self, target: str, address: str) -> str:
        backend, name = target.split("/")
        if backend not in self.backends:
            return f"No such backend '{backend}'.\n"
        if (backend, name) in self.servers:
            return "Already exists a server with the same name in backend.\n"
        self.servers[(backend, name)] = FakeServer(address, state="maint", health=False)
        return "New server registered.\n"

    def _with_server(self, target: str, change: Callable[[FakeServer], None]) -> str:
        backend, name = target.split("/")
        server = self.servers.get((backend, name))
        if server is None:
            return "No such server.\n\n"
        change(server)
        return "\n"

    def _del_server(self, target: str) -> str:
        backend, name = target.split("/")
        server = self.servers.get((backend, name))
        if server is None:
            return "No such server.\n"
        if server.state != "maint":
            return "Only servers in maintenance mode can be deleted.\n"
        if server.sessions:
            return "Server still has connections attached to it, cannot remove it.\n"
        del self.servers[(backend, name)]
        return "Server deleted.\n"
