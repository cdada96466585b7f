"""Where a new dyno goes: its port, its address on the dyno bridge, its container plan and
the spec it is started from.

Invariant: a spec leaves here complete and checked — its id is a valid dyno id (it names
the dyno's directory and its HAProxy server), its port is free on this host and not given
to another dyno of this tick, and a container dyno has claimed its own address, opened in
the dyno firewall to its app's add-ons. An app whose stack is not built gets no dyno at
all, never a plain process in place of a container.
"""

from __future__ import annotations

import secrets
import socket
from dataclasses import asdict, replace
from pathlib import Path

from paas.artifacts import runtimes, stacks
from paas.artifacts.slugs import SlugStore
from paas.domain import addressing, validation
from paas.domain.dyno import DynoSpec
from paas.domain.errors import PaasError
from paas.domain.models import AppState, Release
from paas.domain.one_off import OneOff
from paas.domain.settings import Settings
from paas.domain.sizes import DEFAULT_SIZE, memory_mb
from paas.dynos.capability import Isolation
from paas.isolation import addon_firewall, container, network, users
from paas.isolation.container import ContainerPlan
from paas.state.store import Store


class Placement:
    def __init__(
        self, settings: Settings, store: Store, isolation: Isolation, slugs: SlugStore
    ) -> None:
        self.settings = settings
        self.store = store
        self.isolation = isolation
        self.slugs = slugs

    def spec(
        self,
        state: AppState,
        release: Release,
        name: str,
        used_ports: set[int],
        one_off: OneOff | None = None,
    ) -> DynoSpec:
        """The spec of a new dyno `name` (web.1) of `release`, or of the one-off dyno
        `one_off` (release.1, run.N: its own command, extra env, size and attachment);
        takes its port into `used_ports`."""
        app = state.app
        port = free_port(used_ports)
        used_ports.add(port)
        if one_off is not None:
            name = one_off.name
        kind = name.split(".", 1)[0]
        account = users.app_account(self.store, app)
        spec = DynoSpec(
            id=validation.dyno_id(f"{app.name}.{name}.v{release.version}.{secrets.token_hex(4)}"),
            app=app.name,
            name=name,
            type=kind,
            release=release.version,
            generation=state.generation(name),
            command=one_off.command if one_off else release.process_types[kind],
            app_dir=str(self.slugs.unpacked(release.artifact)),
            port=port,
            env={**release.config, **(one_off.env if one_off else {})},
            uid=account.uid if account else None,
            grace_seconds=self.settings.stop_grace_seconds,
            healthcheck=release.healthcheck if kind == "web" and not one_off else None,
        )
        if one_off is not None:
            spec = replace(
                spec,
                one_off=True,
                attach=one_off.attach,
                tty=one_off.tty,
                rows=one_off.rows,
                cols=one_off.cols,
            )
        size = one_off.size_of(state.sizes) if one_off else state.sizes.get(kind, DEFAULT_SIZE)
        plan = self.container_plan(state, spec, account, size)
        if plan is not None:
            spec = replace(spec, app_dir="/app", host=plan.address, container=asdict(plan))
            self.open_addons(state, spec, plan.address)
        return spec

    def open_addons(self, state: AppState, spec: DynoSpec, address: str) -> None:
        """The dyno firewall's openings to the app's add-ons, before the dyno's process
        can start (its release phase may connect at once)."""

        def grants() -> list[addon_firewall.Grant]:
            # Read under the firewall lock: a detach committed meanwhile revokes after us.
            endpoints = self.store.addon_endpoints(state.app)
            return addon_firewall.grants_for(address, state.app.id, endpoints)

        try:
            addon_firewall.grant(self.settings.home, address, grants)
        except PaasError:
            network.remove(spec.id, address)  # no dyno will: give the address back
            raise

    def container_plan(
        self, state: AppState, spec: DynoSpec, account: users.Account | None, size: str
    ) -> ContainerPlan | None:
        """How this dyno runs in a container, or None to run it as a plain process."""
        if not self.isolation.containers or account is None or self.isolation.runtime is None:
            return None
        stack = stacks.effective(state.app.stack)
        stack_rootfs = stacks.rootfs(stack)
        if stack_rootfs is None:  # never fall back to a plain process for one app
            raise PaasError(
                f"{state.app.name}: stack {stack} is not built on this host; its dynos run only "
                f"in containers of it: run `paas stacks:build {stack}`"
            )
        # The shared runtimes its slug names, and only those (PaasError when one is gone).
        named = runtimes.slug_runtimes(Path(spec.app_dir))
        entries = runtimes.store_of(self.settings.home).paths(named) if named else []
        subnet = addressing.subnet(self.isolation.subnet)
        return ContainerPlan(
            runtime=self.isolation.runtime,
            state_root=str(self.settings.run_dir / "oci"),
            stack_rootfs=str(stack_rootfs),
            layer=str(container.app_layer(Path(spec.app_dir), account.uid, account.gid)),
            address=network.claim_address(subnet, spec.id),
            subnet=str(subnet),
            memory_mb=memory_mb(size),
            uid=account.uid,
            gid=account.gid,
            disk_mb=self.settings.dyno_disk_mb,
            runtimes=runtimes.mounts(dict(zip(named, entries, strict=True))),
        )


def free_port(used: set[int]) -> int:
    """A port the kernel just had free on 127.0.0.1, and not one already handed out."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in used:
            return port
