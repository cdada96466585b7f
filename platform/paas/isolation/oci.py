"""The OCI runtime config (`config.json`) of a dyno container (pure).

What it grants: PID, mount, UTS, IPC and network namespaces; a non-root user (one uid per
app); no capabilities beyond binding low ports; masked /proc paths; cgroup limits for memory
(no swap beyond it), CPU shares and pids; tini as pid 1 so SIGTERM reaches the app and
zombies are reaped. Every container, dyno or build, gets the same seccomp filter: system
calls that open kernel surface an app never needs (new user namespaces, keyrings, BPF,
perf, mounts, ptrace, module and kexec loading, io_uring…) fail with EPERM.
"""

from __future__ import annotations

from dataclasses import dataclass

from paas.domain.errors import PaasError

PROFILE_SCRIPT = 'for f in /app/.profile.d/*.sh; do [ -f "$f" ] && . "$f"; done\n'
CAPABILITIES = ["CAP_NET_BIND_SERVICE"]
PIDS_LIMIT = 512
MASKED = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

# The seccomp filter: allow by default, refuse these with EPERM. Each either needs a
# capability a dyno does not have (so refusing costs nothing) or opens kernel surface that
# has held privilege escalations and that no web app needs.
DENIED_SYSCALLS = [
    # namespaces: setns and user namespaces (the door to "root" over new namespaces)
    "setns",
    # keyrings (shared by every container of the kernel)
    "add_key",
    "keyctl",
    "request_key",
    # BPF, perf and userfaultfd: kernel attack surface and side channels
    "bpf",
    "perf_event_open",
    "userfaultfd",
    # mounts, old and new API
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    # tracing and reading other processes
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    # handles that bypass path permissions
    "open_by_handle_at",
    "name_to_handle_at",
    # kernel modules, kexec, reboot, swap, accounting, clocks, quotas, raw I/O ports
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "quotactl",
    "iopl",
    "ioperm",
    "syslog",
    "vhangup",
    "lookup_dcookie",
    "uselib",
    "nfsservctl",
    # io_uring: a second system call interface the filter cannot see into
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
]
CLONE_NEWUSER = 0x10000000
EPERM, ENOSYS = 1, 38
# Every ABI a process of that machine can call the kernel with: a filter that named only
# the native one would let 32-bit (or x32) calls of the same syscalls through.
SECCOMP_ARCHITECTURES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
}


@dataclass(frozen=True)
class ContainerSpec:
    hostname: str
    command: str
    env: dict[str, str]
    uid: int
    gid: int
    memory_mb: int
    cgroups_path: str
    netns_path: str | None
    resolv_conf: str = "/etc/resolv.conf"
    cpu_shares: int = 1024
    cgroup_version: int = 1
    args: tuple[str, ...] = ()  # instead of the dyno command under tini and bash
    cwd: str = "/app"
    binds: tuple[str, ...] = ()  # host directories mounted read-write at the same path
    readonly_binds: tuple[str, ...] = ()  # host files or directories mounted read-only
    # (host path, container path): mounted read-only elsewhere (shared runtimes)
    readonly_mounts: tuple[tuple[str, str], ...] = ()
    machine: str = "x86_64"  # `uname -m` of the host: which seccomp architectures apply
    # A terminal (an attached one-off dyno's): the runtime makes a pty inside the container
    # and sends its master over the console socket; its size as (rows, columns).
    terminal: bool = False
    console_size: tuple[int, int] | None = None


def seccomp_profile(machine: str) -> dict[str, object]:
    """The seccomp section of config.json for `machine` (`uname -m`)."""
    if machine not in SECCOMP_ARCHITECTURES:
        raise PaasError(
            f"no seccomp profile for machine {machine!r} (known: "
            f"{', '.join(SECCOMP_ARCHITECTURES)}): containers cannot run here"
        )

    def refused(names: list[str], errno: int = EPERM, **rule: object) -> dict[str, object]:
        return {"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": errno, **rule}

    new_user_ns = {"index": 0, "value": CLONE_NEWUSER, "valueTwo": CLONE_NEWUSER}
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": SECCOMP_ARCHITECTURES[machine],
        "syscalls": [
            refused(DENIED_SYSCALLS),
            # clone and unshare: refused only with CLONE_NEWUSER (flags are argument 0 on
            # x86_64 and aarch64); threads and processes are created as usual.
            *(
                refused([name], args=[{**new_user_ns, "op": "SCMP_CMP_MASKED_EQ"}])
                for name in ("clone", "unshare")
            ),
            # clone3 passes its flags in memory, out of the filter's sight: ENOSYS makes
            # glibc fall back to clone, whose flags the rule above checks.
            refused(["clone3"], errno=ENOSYS),
        ],
    }


def runtime_config(spec: ContainerSpec) -> dict[str, object]:
    memory = spec.memory_mb * 1024 * 1024
    resources: dict[str, object] = {
        "devices": [{"allow": False, "access": "rwm"}],
        "memory": {"limit": memory, "swap": memory},
        "cpu": {"shares": spec.cpu_shares},
        "pids": {"limit": PIDS_LIMIT},
    }
    if spec.cgroup_version == 2:
        # One OOM kill ends every process of the dyno, so it restarts whole (like R15).
        resources["unified"] = {"memory.oom.group": "1"}
    namespaces: list[dict[str, str]] = [
        {"type": "pid"},
        {"type": "ipc"},
        {"type": "uts"},
        {"type": "mount"},
        {"type": "network", "path": spec.netns_path} if spec.netns_path else {"type": "network"},
    ]
    process: dict[str, object] = {
        "terminal": spec.terminal,
        "user": {"uid": spec.uid, "gid": spec.gid, "additionalGids": [spec.gid]},
        "args": list(spec.args)
        or ["/usr/bin/tini", "-g", "--", "/bin/bash", "-c", PROFILE_SCRIPT + spec.command],
        "env": [f"{k}={v}" for k, v in sorted(spec.env.items())],
        "cwd": spec.cwd,
        "capabilities": {
            k: CAPABILITIES for k in ("bounding", "effective", "permitted", "ambient")
        },
        "noNewPrivileges": True,
    }
    if spec.terminal and spec.console_size and all(spec.console_size):
        process["consoleSize"] = {"height": spec.console_size[0], "width": spec.console_size[1]}
    return {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": "rootfs", "readonly": False},
        "hostname": spec.hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
            {
                "destination": "/tmp",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "nodev", "mode=1777", "size=262144k"],
            },
            {
                "destination": "/etc/resolv.conf",
                "type": "bind",
                "source": spec.resolv_conf,
                "options": ["rbind", "ro", "nosuid", "nodev", "noexec"],
            },
            *(
                {
                    "destination": b,
                    "type": "bind",
                    "source": b,
                    "options": ["rbind", "nosuid", "nodev"],
                }
                for b in spec.binds
            ),
            *(
                {
                    "destination": b,
                    "type": "bind",
                    "source": b,
                    "options": ["rbind", "ro", "nosuid", "nodev"],
                }
                for b in spec.readonly_binds
            ),
            *(
                {
                    "destination": destination,
                    "type": "bind",
                    "source": source,
                    "options": ["rbind", "ro", "nosuid", "nodev"],
                }
                for source, destination in spec.readonly_mounts
            ),
        ],
        "linux": {
            "cgroupsPath": spec.cgroups_path,
            "resources": resources,
            "namespaces": namespaces,
            "maskedPaths": MASKED,
            "readonlyPaths": READONLY,
            "seccomp": seccomp_profile(spec.machine),
        },
    }
