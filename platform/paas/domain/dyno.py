"""A dyno as the runtime knows it: the spec it is started from (written to spec.json) and
the status observed of it (status.json, written by its supervisor).

Pure values, shared by the agent, the runtime, the supervisor and the readiness prober.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DynoSpec:
    id: str
    app: str
    name: str
    type: str
    release: int
    generation: int
    command: str
    app_dir: str
    port: int | None
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None  # an account name: specs written before uids were per app
    uid: int | None = None  # the app's own uid (and gid), when the platform runs as root
    grace_seconds: float = 30.0
    host: str = "127.0.0.1"
    container: dict[str, object] | None = None
    healthcheck: str | None = None  # JSON of paas.domain.healthcheck.HealthCheck, web dynos only
    # A one-off dyno (release.1, run.N: paas.domain.one_off): never routed, restarted or
    # planned. `attach`: its supervisor waits for a client on attach.sock before it starts
    # the command, and streams to it (a terminal of rows x cols when `tty`).
    one_off: bool = False
    attach: bool = False
    tty: bool = False
    rows: int = 0
    cols: int = 0


@dataclass(frozen=True)
class DynoStatus:
    """What the runtime observes: state is starting, up, stopping or exited."""

    spec: DynoSpec
    state: str
    started_at: float | None
    exit_status: int | None
    stop_requested: bool
    pid: int | None


@dataclass(frozen=True)
class DynoStats:
    memory_bytes: int
    cpu_ns: int
