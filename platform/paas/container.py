"""Container dynos: an OCI bundle per dyno, run in the foreground by runc or crun.

The supervisor uses ContainerLauncher where it would start a plain process: it mounts the
image (app layer over the stack, read-only) under a throwaway upper layer, creates the
dyno's network namespace, writes config.json and runs `RUNTIME run`. `cleanup` undoes all of
it — container, mount, veth, netns, upper layer — and is safe to call twice, so a dyno whose
supervisor died is cleaned up by the runtime's `forget` as well.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from paas import cgroups, network, oci
from paas.errors import PaasError

RUNTIMES = ("crun", "runc")
BUILD_CPU_SHARES = 512  # half a dyno's weight: serving comes first


@dataclass(frozen=True)
class ContainerPlan:
    """The container half of a dyno's spec, as stored in spec.json."""

    runtime: str
    state_root: str
    stack_rootfs: str
    layer: str
    address: str
    subnet: str
    memory_mb: int
    uid: int
    gid: int


def plan_from(data: object) -> ContainerPlan | None:
    return ContainerPlan(**data) if isinstance(data, dict) else None


def mount_overlay(lower: str, bundle: Path) -> None:
    """BUNDLE/rootfs: the read-only lower layers under a throwaway BUNDLE/upper."""
    for part in ("rootfs", "upper", "work"):
        (bundle / part).mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={lower},upperdir={bundle / 'upper'},workdir={bundle / 'work'}"
    network.run(["mount", "-t", "overlay", "overlay", "-o", options, str(bundle / "rootfs")])


def cgroups_path(dyno_id: str) -> str:
    return f"paas/{dyno_id}"


class ContainerLauncher:
    def __init__(self, dyno_id: str, directory: Path, plan: ContainerPlan) -> None:
        self.dyno_id = dyno_id
        self.directory = directory
        self.plan = plan
        self.bundle = directory / "bundle"
        self.group = cgroups.for_child(cgroups_path(dyno_id))

    def runtime(self, *args: str) -> list[str]:
        return [self.plan.runtime, "--root", self.plan.state_root, *args]

    def spawn(self, hostname: str, command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        mount_overlay(f"{self.plan.layer}:{self.plan.stack_rootfs}", self.bundle)
        subnet = network.subnet(self.plan.subnet)
        dyno_net = network.create(self.dyno_id, self.plan.address, subnet)
        spec = oci.ContainerSpec(
            hostname=hostname,
            command=command,
            env=env,
            uid=self.plan.uid,
            gid=self.plan.gid,
            memory_mb=self.plan.memory_mb,
            cgroups_path=cgroups_path(self.dyno_id),
            netns_path=dyno_net.netns_path,
            cgroup_version=cgroups.version(),
        )
        (self.bundle / "config.json").write_text(json.dumps(oci.runtime_config(spec)))
        return subprocess.Popen(
            self.runtime("run", "--keep", "--bundle", str(self.bundle), self.dyno_id),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def terminate(self, child: subprocess.Popen[bytes]) -> None:
        """runc and crun pass SIGTERM on to the container's pid 1 (tini), which passes it
        on to the app's process group."""
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)

    def kill(self, _child: subprocess.Popen[bytes]) -> None:
        subprocess.run(
            self.runtime("kill", "--all", self.dyno_id, "KILL"), capture_output=True, timeout=30
        )

    def oom_kills(self) -> int:
        """Readable until cleanup, even after the container ended (`run --keep`)."""
        return 0 if self.group is None else cgroups.oom_kills(self.group)

    def cleanup(self) -> None:
        cleanup(self.dyno_id, self.directory, self.plan)


def cleanup(dyno_id: str, directory: Path, plan: ContainerPlan) -> None:
    runtime = [plan.runtime, "--root", plan.state_root]
    subprocess.run([*runtime, "kill", "--all", dyno_id, "KILL"], capture_output=True, timeout=30)
    subprocess.run([*runtime, "delete", "--force", dyno_id], capture_output=True, timeout=30)
    rootfs = directory / "bundle" / "rootfs"
    if os.path.ismount(rootfs):
        subprocess.run(["umount", "-l", str(rootfs)], capture_output=True, timeout=30)
    network.remove(dyno_id, plan.address)
    shutil.rmtree(directory / "bundle", ignore_errors=True)


def init_pid(dyno_id: str, plan: ContainerPlan) -> int | None:
    """The container's pid 1 as the host sees it, once the runtime reports it."""
    result = subprocess.run(
        [plan.runtime, "--root", plan.state_root, "state", dyno_id],
        capture_output=True,
        text=True,
        timeout=30,
    )
    try:
        pid = json.loads(result.stdout).get("pid") if result.returncode == 0 else None
    except ValueError:
        return None
    return pid if isinstance(pid, int) and pid > 0 else None


def app_layer(slug_tree: Path, uid: int, gid: int) -> Path:
    """The image's app layer beside a slug: `/app` as hard links to the slug's files, in
    directories owned by the dyno user so it may add files (into its own upper layer)."""
    layer = slug_tree.with_name(slug_tree.name + ".layer")
    if layer.is_dir():
        return layer
    staging = Path(tempfile.mkdtemp(dir=slug_tree.parent, suffix=".layer-tmp"))
    network.run(["cp", "-al", str(slug_tree), str(staging / "app")])
    for root, _dirs, _files in os.walk(staging / "app"):
        os.chown(root, uid, gid)
    staging.chmod(0o755)
    try:
        os.replace(staging, layer)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another dyno made it first
    return layer


def probe(runtime: str, stack_rootfs: Path, state_root: Path) -> str | None:
    """Runs `true` in a throwaway container; returns None when it works, else why not."""
    bundle = Path(tempfile.mkdtemp(prefix="paas-probe-"))
    probe_id = f"paas-probe-{os.getpid()}"
    try:
        rootfs = bundle / "rootfs"
        rootfs.mkdir()
        network.run(["mount", "--bind", "-o", "ro", str(stack_rootfs), str(rootfs)])
        spec = oci.ContainerSpec(
            hostname="probe",
            command="true",
            env={"PATH": "/usr/bin:/bin"},
            uid=65534,
            gid=65534,
            memory_mb=64,
            cgroups_path=cgroups_path(probe_id),
            netns_path=None,
            cgroup_version=cgroups.version(),
        )
        config = oci.runtime_config(spec)
        config["root"] = {"path": "rootfs", "readonly": True}
        process = config["process"]
        assert isinstance(process, dict)
        process["cwd"] = "/"
        (bundle / "config.json").write_text(json.dumps(config))
        result = subprocess.run(
            [runtime, "--root", str(state_root), "run", "--bundle", str(bundle), probe_id],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            return (
                result.stderr.strip().splitlines() or ["exit status " + str(result.returncode)]
            )[-1]
        return None
    except (OSError, PaasError, subprocess.TimeoutExpired) as error:
        return str(error)
    finally:
        subprocess.run(
            [runtime, "--root", str(state_root), "delete", "--force", probe_id],
            capture_output=True,
            timeout=30,
        )
        subprocess.run(["umount", "-l", str(bundle / "rootfs")], capture_output=True, timeout=30)
        shutil.rmtree(bundle, ignore_errors=True)


def pick_runtime(stack_rootfs: Path, state_root: Path) -> tuple[str | None, list[str]]:
    """The first of crun and runc that really runs a container here, and why others failed."""
    reasons = []
    for name in RUNTIMES:
        binary = shutil.which(name)
        if binary is None:
            reasons.append(f"{name}: not installed")
            continue
        failure = probe(binary, stack_rootfs, state_root)
        if failure is None:
            return binary, reasons
        reasons.append(f"{name}: {failure}")
    return None, reasons


@dataclass(frozen=True)
class SandboxPlan:
    stack: str
    runtime: str
    state_root: Path
    stack_rootfs: Path
    subnet: str
    memory_mb: int
    uid: int
    gid: int


class BuildSandbox:
    """Buildpack steps in a container of the app's stack: capped memory, half the CPU
    weight of a dyno, network through NAT for package downloads, the workspace, cache and
    tools mounted at their host paths. One network namespace and root for the whole build;
    each step (detect, compile, release) is one container run."""

    def __init__(
        self,
        build_id: str,
        directory: Path,
        plan: SandboxPlan,
        binds: list[Path],
        readonly_binds: list[Path],
    ) -> None:
        self.id = f"build.{build_id}"
        self.directory = directory
        self.plan = plan
        self.binds = tuple(str(b) for b in binds)
        self.readonly_binds = tuple(str(b) for b in readonly_binds)
        self.address = ""
        self.steps = 0
        self.group = cgroups.for_child(cgroups_path(self.id))
        self.last = ""

    def __enter__(self) -> BuildSandbox:
        mount_overlay(str(self.plan.stack_rootfs), self.directory)
        subnet = network.subnet(self.plan.subnet)
        self.address = network.claim_address(subnet, self.id)
        self.net = network.create(self.id, self.address, subnet)
        return self

    def argv(self, step: list[str], env: dict[str, str], cwd: Path) -> list[str]:
        """The command that runs one buildpack step inside the sandbox."""
        self.steps += 1
        spec = oci.ContainerSpec(
            hostname="build",
            command="",
            env=env,
            uid=self.plan.uid,
            gid=self.plan.gid,
            memory_mb=self.plan.memory_mb,
            cgroups_path=cgroups_path(self.id),
            netns_path=self.net.netns_path,
            cpu_shares=BUILD_CPU_SHARES,
            cgroup_version=cgroups.version(),
            args=("/usr/bin/tini", "--", *step),
            cwd=str(cwd),
            binds=self.binds,
            readonly_binds=self.readonly_binds,
        )
        (self.directory / "config.json").write_text(json.dumps(oci.runtime_config(spec)))
        name = f"{self.id}.{self.steps}"
        self.last = name
        return [
            self.plan.runtime,
            "--root",
            str(self.plan.state_root),
            "run",
            "--keep",
            "--bundle",
            str(self.directory),
            name,
        ]

    def finish_step(self) -> bool:
        """Removes the step's container; True when the kernel OOM-killed something in it."""
        oom = self.group is not None and cgroups.oom_kills(self.group) > 0
        subprocess.run(
            [
                self.plan.runtime,
                "--root",
                str(self.plan.state_root),
                "delete",
                "--force",
                self.last,
            ],
            capture_output=True,
            timeout=30,
        )
        return oom

    def __exit__(self, *_exc: object) -> None:
        rootfs = self.directory / "rootfs"
        if os.path.ismount(rootfs):
            subprocess.run(["umount", "-l", str(rootfs)], capture_output=True, timeout=30)
        network.remove(self.id, self.address)
        shutil.rmtree(self.directory, ignore_errors=True)
