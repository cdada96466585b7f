"""Container dynos: an OCI bundle per dyno, started detached by runc or crun.

The supervisor uses ContainerLauncher where it would start a plain process: it mounts the
image (app layer over the stack, read-only) under a throwaway upper layer, creates the
dyno's network namespace, writes config.json and runs `RUNTIME run --detach`. The runtime
exits once the container runs (no Go process stays per dyno); the supervisor, a child
subreaper, inherits the container's pid 1 (tini) as its own child, waits for it and signals
it, and the container's output reaches the supervisor's pipe directly (pass-through stdio).
`cleanup` undoes all of it — container and the runtime's state of it, mounts, veth, netns,
upper layer — and is safe to call twice, so a dyno whose supervisor died is cleaned up by
the runtime's `forget` as well.

Invariants: a bundle is root's alone (0700; config.json holds every config var); the upper
layer lives on a size-capped filesystem of its own (a sparse ext4 image, loop-mounted), so
a dyno or build that fills it gets ENOSPC while the disk holding PAAS_HOME keeps its room;
the lower layers are never writable by a dyno's uid on the host.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from paas.domain import addressing
from paas.domain.errors import CommandFailed, PaasError
from paas.host import cleanup, platform_log, procs
from paas.isolation import cgroups, network, oci

RUNTIMES = ("crun", "runc")
BUILD_CPU_SHARES = 512  # half a dyno's weight: serving comes first
MACHINE = platform.machine()  # which seccomp architectures the filter names
# A throwaway filesystem: no journal (nothing survives a crash anyway), no blocks reserved
# for root (the dyno is not root), inode tables written lazily (mkfs takes ~5 ms for 1 GB).
MKFS = ["mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal"]
MKFS += ["-E", "lazy_itable_init=1,nodiscard"]
# What umount and the runtimes say of what is already undone: the state cleanup wants.
NOT_MOUNTED = ("not mounted",)
NO_CONTAINER = ("does not exist", "not running", "No such file or directory", "No such process")
START_SECONDS = 60.0  # bound of `RUNTIME run --detach`: it returns once the container runs
CONSOLE_SECONDS = 5.0  # bound of the wait for a terminal the runtime already sent
PID_FILE = "container.pid"  # in the dyno's directory: the container's pid 1 on the host


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
    disk_mb: int = 0  # the cap of the writable layer; 0 (dynos started before caps): none
    # (host path, container path) of each shared runtime the release names, read-only
    runtimes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Stdio:
    """An attached one-off dyno's stdio: the fds the runtime passes to the container as its
    0, 1 and 2 (the runtime's own errors go to `stderr` too), or, with `console_socket`,
    the socket the runtime sends the master of the container's terminal to (of `window`:
    rows, columns), while 0, 1 and 2 then carry only the runtime's own output."""

    stdin: int
    stdout: int
    stderr: int
    console_socket: str | None = None
    window: tuple[int, int] | None = None


def plan_from(data: object) -> ContainerPlan | None:
    return ContainerPlan(**data) if isinstance(data, dict) else None


def private_dir(path: Path) -> None:
    """A directory only root may enter (made if missing, tightened if not)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def mount_disk(directory: Path, image: Path, size_mb: int) -> None:
    """DIRECTORY: a new, empty ext4 filesystem of `size_mb`, in a sparse file IMAGE (it
    takes host disk only as it is written)."""
    directory.mkdir(parents=True, exist_ok=True)
    make_image(image, size_mb)
    procs.run(["mount", "-o", "loop,nosuid,nodev", str(image), str(directory)])


def mount_kept_disk(directory: Path, image: Path, size_mb: int) -> None:
    """DIRECTORY: the filesystem kept in IMAGE from one mount to the next (an app's build
    cache), made on first use; an unfinished image (a crash while it was made) is made anew."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.path.ismount(directory):
        return
    if not image.exists():
        staging = image.with_suffix(".new")
        make_image(staging, size_mb)
        os.replace(staging, image)
    procs.run(["mount", "-o", "loop,nosuid,nodev", str(image), str(directory)])


def make_image(image: Path, size_mb: int) -> None:
    with image.open("wb") as f:
        f.truncate(size_mb * 1024 * 1024)
    image.chmod(0o600)
    if shutil.which("mkfs.ext4") is None:
        raise PaasError("mkfs.ext4 is not installed: install e2fsprogs (apt-get install e2fsprogs)")
    procs.run([*MKFS, str(image)])


def unmount(path: Path, warn: cleanup.Warn = platform_log.line) -> None:
    if os.path.ismount(path):
        cleanup.command(["umount", "-l", str(path)], warn, gone=NOT_MOUNTED)


def remove_disk(directory: Path, image: Path, warn: cleanup.Warn = platform_log.line) -> None:
    """Undoes mount_disk (or removes a plain directory). The files go while the filesystem
    is still mounted, when nothing else is mounted below it: their dirty pages are dropped
    instead of being written back to the image by the unmount (0.25 s for 150 MB here).
    What cannot be removed is said to `warn`; the collector removes it later."""
    if os.path.ismount(directory) and len(mounts_under(directory)) == 1:
        for child in directory.iterdir():
            if child.is_dir() and not child.is_symlink():
                cleanup.remove_tree(child, warn)
            else:
                cleanup.remove_file(child, warn)
    unmount(directory, warn)
    cleanup.remove_tree(directory, warn)
    cleanup.remove_file(image, warn)


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below `path` (as /proc/self/mountinfo spells them)."""
    prefix = str(path.resolve())
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(Path(point))
    return found


def mount_overlay(lower: str, bundle: Path, disk_mb: int = 0) -> None:
    """BUNDLE/rootfs: the read-only lower layers under a throwaway upper layer, which is on
    a `disk_mb` filesystem of its own (BUNDLE/disk) unless disk_mb is 0."""
    private_dir(bundle)
    (bundle / "rootfs").mkdir(exist_ok=True)
    scratch = bundle
    if disk_mb:
        scratch = bundle / "disk"
        mount_disk(scratch, bundle / "disk.img", disk_mb)
    for part in ("upper", "work"):
        (scratch / part).mkdir(exist_ok=True)
        (scratch / part).chmod(0o755)  # the upper dir is the container's `/`: not umask's
    options = f"lowerdir={lower},upperdir={scratch / 'upper'},workdir={scratch / 'work'}"
    procs.run(["mount", "-t", "overlay", "overlay", "-o", options, str(bundle / "rootfs")])


def unmount_overlay(bundle: Path, warn: cleanup.Warn = platform_log.line) -> None:
    """Undoes mount_overlay (the overlay first: it holds the disk below it)."""
    unmount(bundle / "rootfs", warn)
    unmount(bundle / "disk", warn)


def write_private(path: Path, text: str) -> None:
    """A file only root may read, whatever the umask: config.json holds config vars."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def cgroups_path(dyno_id: str) -> str:
    return f"paas/{dyno_id}"


class ContainerLauncher:
    def __init__(
        self,
        dyno_id: str,
        directory: Path,
        plan: ContainerPlan,
        warn: cleanup.Warn = platform_log.line,
    ) -> None:
        """`warn`: where a failure of the dyno's cleanup is said (its supervisor's: the
        app's log)."""
        self.dyno_id = dyno_id
        self.directory = directory
        self.plan = plan
        self.warn = warn
        self.bundle = directory / "bundle"
        self.group = cgroups.for_child(cgroups_path(dyno_id))

    def runtime(self, *args: str) -> list[str]:
        return [self.plan.runtime, "--root", self.plan.state_root, *args]

    def spawn(
        self, hostname: str, command: str, env: dict[str, str], stdio: Stdio | None = None
    ) -> ContainerInit:
        for source, _ in self.plan.runtimes:
            if not os.path.isdir(source):  # said, not a runtime's bare ENOENT
                raise PaasError(
                    f"the runtime {source} this release runs on is gone from this host "
                    "(removed by hand?): push the app again to make it again"
                )
        mount_overlay(f"{self.plan.layer}:{self.plan.stack_rootfs}", self.bundle, self.plan.disk_mb)
        subnet = addressing.subnet(self.plan.subnet)
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
            machine=MACHINE,
            readonly_mounts=tuple((s, d) for s, d in self.plan.runtimes),
            terminal=stdio is not None and stdio.console_socket is not None,
            console_size=stdio.window if stdio else None,
        )
        write_private(self.bundle / "config.json", json.dumps(oci.runtime_config(spec)))
        return self.start(stdio)

    def start(self, stdio: Stdio | None = None) -> ContainerInit:
        """Runs the container detached. Its output and the runtime's own go to one pipe,
        whose write end only the container keeps once the runtime has exited; a runtime
        that fails is a dyno that exited with the runtime's status, its reason in the pipe
        (and so in the app's log), as when the runtime ran in the foreground."""
        pid_file = self.directory / PID_FILE
        pid_file.unlink(missing_ok=True)  # never taken for this start's
        argv = self.runtime("run", "--detach", "--pid-file", str(pid_file))
        if stdio is not None and stdio.console_socket is not None:
            argv += ["--console-socket", stdio.console_socket]
        argv += ["--bundle", str(self.bundle), self.dyno_id]
        if stdio is not None:
            return self.attached(argv, pid_file, stdio)
        output, write_end = os.pipe()
        try:
            runtime = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=write_end,
                stderr=write_end,
                start_new_session=True,
                umask=0o022,  # the runtime makes mount points with it, inside the container
            )
        except OSError:
            os.close(output)
            raise
        finally:
            os.close(write_end)
        return self.started(runtime, pid_file, output)

    def attached(self, argv: list[str], pid_file: Path, stdio: Stdio) -> ContainerInit:
        """`start` of an attached one-off: the container gets `stdio`; its init's `output`
        is -1 (the supervisor reads the fds it kept), its `console` the terminal's master."""
        console = stdio.console_socket
        listener = None if console is None else listen_private(Path(console))
        try:
            runtime = subprocess.Popen(
                argv,
                stdin=stdio.stdin,
                stdout=stdio.stdout,
                stderr=stdio.stderr,
                start_new_session=True,
                umask=0o022,
            )
            init = self.started(runtime, pid_file, -1)
            if listener is not None and init.exit_status is None:
                init.console = receive_console(listener)
        finally:
            if listener is not None:
                listener.close()
                Path(str(console)).unlink(missing_ok=True)
        return init

    def started(
        self, runtime: subprocess.Popen[bytes], pid_file: Path, output: int
    ) -> ContainerInit:
        code = procs.wait_exit(runtime, START_SECONDS)
        if code is None:
            procs.signal_group(runtime.pid, signal.SIGKILL)
            runtime.wait()
            if output >= 0:
                os.close(output)
            raise PaasError(
                f"{self.plan.runtime} did not start container {self.dyno_id} within "
                f"{START_SECONDS:g}s"
            )
        if code != 0:
            return ContainerInit(runtime.pid, None, output, procs.shell_status(code))
        try:
            return adopt(pid_file, output)
        except PaasError:
            if output >= 0:
                os.close(output)
            raise

    def terminate(self, child: procs.Child) -> None:
        """SIGTERM to the container's pid 1 (tini), which passes it on to the app's process
        group; sent directly, as the runtime would: an unreaped child's pid cannot be
        another process's."""
        if child.poll() is None:
            os.kill(child.pid, signal.SIGTERM)

    def kill(self, _child: procs.Child) -> None:
        cleanup.command(
            self.runtime("kill", "--all", self.dyno_id, "KILL"), self.warn, NO_CONTAINER
        )

    def oom_kills(self) -> int:
        """Readable until cleanup, even after the container ended (a detached container
        and its cgroup stay until `delete`)."""
        return 0 if self.group is None else cgroups.oom_kills(self.group)

    def cleanup(self) -> None:
        remove(self.dyno_id, self.directory, self.plan, self.warn)


class ContainerInit:
    """A started container as its supervisor holds it: the host pid of the container's
    pid 1 and its start time (None if it had ended by then), the read end of the pipe its
    output goes to, and its exit status once known."""

    def __init__(
        self, pid: int, started: int | None, output: int, exit_status: int | None = None
    ) -> None:
        self.pid = pid
        self.started = started
        self.output = output
        self.exit_status = exit_status
        self.console: int | None = None  # the master of its terminal, when it has one

    def poll(self) -> int | None:
        """The exit status (128 + N for a death by signal N), reaping it; None while it
        runs."""
        if self.exit_status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exit_status = procs.shell_status(os.waitstatus_to_exitcode(status))
        return self.exit_status


MAX_SOCKET_PATH = 107  # bytes of an AF_UNIX path (sun_path, less its NUL)


def listen_private(path: Path) -> socket.socket:
    """A unix socket at `path` only root connects to: made 0600 as it is bound (a plain
    process dyno's directory is 0711: a socket left to the umask for a moment would be
    anyone's who knows its path). Used by the console socket a runtime connects to
    (`--console-socket`) and by an attached dyno's (paas.dynos.session)."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise PaasError(
            f"the socket path {path} is over the {MAX_SOCKET_PATH} bytes a unix socket's "
            "may have: give PAAS_HOME a shorter path"
        )
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)  # a supervisor has one thread: the umask is its alone
    try:
        listener.bind(str(path))
    finally:
        os.umask(previous)
    os.chmod(path, 0o600)
    listener.listen(1)
    return listener


def receive_console(listener: socket.socket) -> int:
    """The master of the container's terminal, sent (SCM_RIGHTS) by the runtime before it
    exited: its connection waits in the backlog by now."""
    listener.settimeout(CONSOLE_SECONDS)
    try:
        connection, _ = listener.accept()
        with connection:
            _, fds, _, _ = socket.recv_fds(connection, 4096, 1)
    except OSError as error:
        raise PaasError(f"the OCI runtime sent no terminal for the dyno: {error}") from None
    if not fds:
        raise PaasError("the OCI runtime sent no terminal for the dyno")
    return fds[0]


def adopt(pid_file: Path, output: int) -> ContainerInit:
    """The container whose pid 1 the runtime wrote to `pid_file` before it exited with 0.
    That process is this one's child by then (the runtime's exit re-parented it to this
    subreaper) and, as a child, cannot go unseen: if it already ended, it waits as a zombie
    and is reaped here."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError) as error:
        raise PaasError(f"the OCI runtime wrote no container pid to {pid_file}: {error}") from None
    init = ContainerInit(pid, procs.start_time(pid), output)  # before it can be reaped
    try:
        init.poll()
    except ChildProcessError:
        raise PaasError(
            f"the container's pid 1 ({pid}) is not a child of its supervisor: the supervisor "
            "must be a child subreaper (procs.become_subreaper) before it starts containers"
        ) from None
    return init


def remove(
    dyno_id: str, directory: Path, plan: ContainerPlan, warn: cleanup.Warn = platform_log.line
) -> None:
    """Undoes everything of a container dyno (safe to call twice); what cannot be undone
    is said to `warn`, and the rest is undone all the same."""
    runtime = [plan.runtime, "--root", plan.state_root]
    cleanup.command([*runtime, "kill", "--all", dyno_id, "KILL"], warn, NO_CONTAINER)
    cleanup.command([*runtime, "delete", "--force", dyno_id], warn, NO_CONTAINER)
    unmount_overlay(directory / "bundle", warn)
    network.remove(dyno_id, plan.address, warn)
    cleanup.remove_tree(directory / "bundle", warn)


def init_pid(dyno_id: str, plan: ContainerPlan) -> int | None:
    """The container's pid 1 as the host sees it, once the runtime reports it (None
    while it does not: not created yet, or gone)."""
    try:
        state = procs.run([plan.runtime, "--root", plan.state_root, "state", dyno_id])
        pid = json.loads(state).get("pid")
    except (CommandFailed, ValueError):
        return None
    return pid if isinstance(pid, int) and pid > 0 else None


def app_layer(slug_tree: Path, uid: int, gid: int) -> Path:
    """An app's layer of a slug, beside it: LAYER/app is `/app`, hard links to the slug's
    root-owned, read-only files in directories owned by the app's uid, so its dynos may add
    and replace files (in their own upper layers). LAYER itself is root's alone (0700): no
    process on the host but root reaches the directories, so no dyno, build or escaped
    process can change the layer that the app's next dynos start from."""
    layer = slug_tree.with_name(f"{slug_tree.name}.layer-{uid}")
    if layer.is_dir():
        return layer
    staging = Path(tempfile.mkdtemp(dir=slug_tree.parent, suffix=".layer-tmp"))
    procs.run(["cp", "-al", str(slug_tree), str(staging / "app")])
    for root, _dirs, _files in os.walk(staging / "app"):
        os.chown(root, uid, gid)
    staging.chmod(0o700)
    try:
        os.replace(staging, layer)
    except OSError:
        cleanup.remove_tree(staging)  # another dyno made it first
    return layer


def probe(runtime: str, stack_rootfs: Path, state_root: Path) -> str | None:
    """Runs `true` in a throwaway container; returns None when it works, else why not."""
    bundle = Path(tempfile.mkdtemp(prefix="paas-probe-"))
    probe_id = f"paas-probe-{os.getpid()}"
    try:
        rootfs = bundle / "rootfs"
        rootfs.mkdir()
        procs.run(["mount", "--bind", "-o", "ro", str(stack_rootfs), str(rootfs)])
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
            machine=MACHINE,
        )
        config = oci.runtime_config(spec)
        config["root"] = {"path": "rootfs", "readonly": True}
        process = config["process"]
        assert isinstance(process, dict)
        process["cwd"] = "/"
        (bundle / "config.json").write_text(json.dumps(config))
        try:
            procs.run(
                [runtime, "--root", str(state_root), "run", "--bundle", str(bundle), probe_id],
                timeout=60,
            )
        except CommandFailed as failure:  # the runtime's last line says why
            return (failure.stderr.strip().splitlines() or [failure.message])[-1]
        return None
    except (OSError, PaasError) as error:
        return str(error)
    finally:
        cleanup.command([runtime, "--root", str(state_root), "delete", "--force", probe_id])
        # Not unmount(): a bind mount on the stack's own filesystem is no mount point to
        # os.path.ismount, and the tree removal must never walk into the stack.
        cleanup.command(["umount", "-l", str(bundle / "rootfs")], gone=NOT_MOUNTED)
        cleanup.remove_tree(bundle)


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
    tools mounted at their host paths (the tools read-only). One network namespace and root
    for the whole build (its upper layer in `directory`, on the build's capped filesystem);
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
        self.readonly_mounts: tuple[tuple[str, str], ...] = ()  # (host, container) paths
        self.address = ""
        self.steps = 0
        self.group = cgroups.for_child(cgroups_path(self.id))
        self.last = ""

    def __enter__(self) -> BuildSandbox:
        mount_overlay(str(self.plan.stack_rootfs), self.directory)
        subnet = addressing.subnet(self.plan.subnet)
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
            machine=MACHINE,
            args=("/usr/bin/tini", "--", *step),
            cwd=str(cwd),
            binds=self.binds,
            readonly_binds=self.readonly_binds,
            readonly_mounts=self.readonly_mounts,
        )
        write_private(self.directory / "config.json", json.dumps(oci.runtime_config(spec)))
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
        runtime = [self.plan.runtime, "--root", str(self.plan.state_root)]
        cleanup.command([*runtime, "delete", "--force", self.last])
        return oom

    def __exit__(self, *_exc: object) -> None:
        unmount_overlay(self.directory)
        network.remove(self.id, self.address)
        cleanup.remove_tree(self.directory)
