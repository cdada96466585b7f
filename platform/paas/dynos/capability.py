"""Whether dynos run in containers here, decided once at server start and recorded.

Containers need root, a built stack and an OCI runtime that really runs a container on this
host (crun first, then runc). Anything missing is said once, and dynos then run as plain
processes so the platform still works anywhere.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from paas.artifacts import stacks
from paas.domain import addressing
from paas.domain.errors import PaasError
from paas.domain.settings import Settings
from paas.isolation import container, network


@dataclass(frozen=True)
class Isolation:
    runtime: str | None
    reason: str
    subnet: str

    @property
    def containers(self) -> bool:
        return self.runtime is not None


def detect(settings: Settings) -> Isolation:
    subnet = addressing.subnet(settings.dyno_subnet)
    if not settings.containers:
        return Isolation(None, "containers are turned off (PAAS_CONTAINERS=off)", str(subnet))
    if os.geteuid() != 0:
        return Isolation(None, "the platform does not run as root", str(subnet))
    rootfs = stacks.rootfs(stacks.DEFAULT_STACK)
    if rootfs is None:
        return Isolation(
            None,
            f"stack {stacks.DEFAULT_STACK} is not built (run `paas stacks:build "
            f"{stacks.DEFAULT_STACK}`)",
            str(subnet),
        )
    state_root = settings.run_dir / "oci"
    state_root.mkdir(mode=0o700, exist_ok=True)
    runtime, failures = container.pick_runtime(rootfs, state_root)
    if runtime is None:
        return Isolation(None, "no OCI runtime works here: " + "; ".join(failures), str(subnet))
    try:
        network.ensure_host(subnet, settings.dyno_egress_allow)
    except PaasError as error:
        return Isolation(None, f"dyno networking failed: {error.message}", str(subnet))
    return Isolation(runtime, f"dynos run in containers with {runtime}", str(subnet))


def save(settings: Settings, isolation: Isolation) -> None:
    (settings.run_dir / "isolation.json").write_text(json.dumps(asdict(isolation)))


def load(settings: Settings) -> Isolation:
    try:
        data = json.loads((settings.run_dir / "isolation.json").read_text())
        return Isolation(data["runtime"], data["reason"], data["subnet"])
    except (OSError, ValueError, KeyError):
        return Isolation(None, "isolation not detected yet", settings.dyno_subnet)
