"""Container benchmark: dyno start-to-answering time, container vs plain process (and the
ratio), memory overhead per idle dyno, and stack build time — min/median/max.

Usage (as root, with a built stack): .venv/bin/python bench/containers.py [RUNS] [STACK_RUNS]
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from platform_harness import wait_for

from paas.artifacts import stacks
from paas.domain import addressing
from paas.domain.dyno import DynoSpec
from paas.domain.settings import Settings
from paas.dynos.runtime import ProcessRuntime
from paas.isolation import container, network
from paas.isolation.container import ContainerPlan
from paas.isolation.users import ensure_user
from paas.reconcile.agent import supervisor_environment

COMMAND = "exec python3 -m http.server $PORT"


def summary(name: str, samples: list[float], unit: str = "s") -> str:
    return (
        f"{name:<34} min {min(samples):8.3f}{unit}  median {statistics.median(samples):8.3f}"
        f"{unit}  max {max(samples):8.3f}{unit}  (n={len(samples)})"
    )


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Bench:
    def __init__(self, base: Path) -> None:
        self.settings = Settings(home=base / "home")
        (self.settings.run_dir / "oci").mkdir(parents=True)
        ensure_user(self.settings.dyno_user)
        self.account = pwd.getpwnam(self.settings.dyno_user)
        self.runtime = ProcessRuntime(
            self.settings.dynos_dir, supervisor_environment(self.settings)
        )
        self.subnet = addressing.subnet(self.settings.dyno_subnet)
        network.ensure_host(self.subnet)
        slug = self.settings.home / "slug"
        slug.mkdir()
        slug.chmod(0o755)
        self.slug = slug
        self.layer = container.app_layer(slug, self.account.pw_uid, self.account.pw_gid)
        rootfs = stacks.rootfs(stacks.DEFAULT_STACK)
        assert rootfs is not None, "build the stack first: paas stacks:build debian-12"
        self.rootfs = rootfs
        oci, failures = container.pick_runtime(rootfs, self.settings.run_dir / "oci")
        assert oci is not None, failures
        self.oci = oci

    def spec(self, in_container: bool, port: int) -> DynoSpec:
        dyno_id = f"bench.web.1.v1.{os.urandom(4).hex()}"
        spec = DynoSpec(
            id=dyno_id,
            app="bench",
            name="web.1",
            type="web",
            release=1,
            generation=0,
            command=COMMAND,
            app_dir=str(self.slug),
            port=port,
            env={},
            user=self.settings.dyno_user,
            grace_seconds=2.0,
        )
        if not in_container:
            return spec
        plan = ContainerPlan(
            runtime=self.oci,
            state_root=str(self.settings.run_dir / "oci"),
            stack_rootfs=str(self.rootfs),
            layer=str(self.layer),
            address=network.claim_address(self.subnet, dyno_id),
            subnet=str(self.subnet),
            memory_mb=512,
            uid=self.account.pw_uid,
            gid=self.account.pw_gid,
        )
        return DynoSpec(
            **{**asdict(spec), "app_dir": "/app", "host": plan.address, "container": asdict(plan)}
        )

    def start_to_answer(self, in_container: bool) -> tuple[float, int]:
        port = 20000 + int.from_bytes(os.urandom(2), "big") % 20000
        spec = self.spec(in_container, port)
        started = time.monotonic()
        self.runtime.start(spec)
        wait_for(lambda: answers(spec.host, port), 30, "the dyno to answer")
        elapsed = time.monotonic() - started
        stats = self.runtime.stats(spec.id)
        memory = stats.memory_bytes if stats else 0
        self.runtime.stop(spec.id)
        wait_for(lambda: all(s.state == "exited" for s in self.runtime.list()), 30, "stop")
        self.runtime.forget(spec.id)
        return elapsed, memory


def main(runs: int, stack_runs: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="paas-bench-", dir="/tmp"))
    base.chmod(0o711)
    bench = None
    try:
        bench = Bench(base)
        plain = [bench.start_to_answer(False) for _ in range(runs)]
        boxed = [bench.start_to_answer(True) for _ in range(runs)]
        build_times = []
        for _ in range(stack_runs):
            started = time.monotonic()
            stacks.build(
                stacks.DEFAULT_STACK,
                "http://deb.debian.org/debian",
                directory=base / "stacks",
                force=True,
            )
            build_times.append(time.monotonic() - started)
    finally:
        if bench is not None:
            bench.runtime.close()
        shutil.rmtree(base, ignore_errors=True)
    plain_times = [t for t, _ in plain]
    boxed_times = [t for t, _ in boxed]
    print(summary("start to answering, plain process", plain_times))
    print(summary("start to answering, container", boxed_times))
    ratio = statistics.median(boxed_times) / statistics.median(plain_times)
    print(f"{'container / plain (medians)':<34} {ratio:.2f}x")
    print(summary("idle dyno memory, plain (RSS)", [m / 2**20 for _, m in plain], "M"))
    print(summary("idle dyno memory, container (cgroup)", [m / 2**20 for _, m in boxed], "M"))
    if build_times:
        print(summary("stack build (debian-12)", build_times))


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(args[0] if args else 10, args[1] if len(args) > 1 else 10)
