"""Stacks: the Debian base filesystems apps run on (Heroku's heroku-24, here debian-12/13).

A stack is built once per host with mmdebstrap into a cache outside PAAS_HOME that every
PAAS_HOME shares (`/var/cache/paas/stacks`, or PAAS_STACKS_DIR). Layout:
`DIR/NAME/vRECIPE_VERSION/rootfs/` (the run tree dynos run on) and `build-rootfs/` (its
build variant, NAME-build: the run tree plus compilers and headers, the same versions of
every package they share), each renamed into place once complete, so a half-built stack is
never used; beside them the build's lock, log and recorded failure (one build per stack
at a time, whichever process and platform runs it). The code uses the version directory
of its own recipe, so it always runs on the packages it lists, and checkouts of different
recipe versions sharing the cache each keep theirs: a new recipe is a new directory, never
a rebuild of an old one.
(`DIR/NAME/current` is what recipe version 1's code read; it is left as it is.)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from paas.domain.errors import InvalidParams, PaasError
from paas.host import procs

RECIPE_VERSION = 5
# nginx-light: the static buildpack's web server (in bookworm and trixie alike).
# libstdc++6: what Node.js binaries (and most native npm/pip modules) link against.
# apt: what installs the build variant's packages into a copy of this tree (chroot).
PACKAGES = (
    "python3",
    "python3-venv",
    "ca-certificates",
    "tini",
    "bash",
    "coreutils",
    "nginx-light",
    "libstdc++6",
    "apt",
)
# The build variant adds these to a copy of the run tree: compilers, the stack Python's
# headers and the -dev packages of the runtime libraries below.
BUILD_PACKAGES = (
    "build-essential",
    "pkg-config",
    "python3-dev",
    "libpq-dev",
    "libssl-dev",
    "libffi-dev",
    "libxml2-dev",
    "libjpeg-dev",
    "zlib1g-dev",
)
BUILD_SUFFIX = "-build"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
HOST_RESOLV_CONF = Path("/etc/resolv.conf")
MMDEBSTRAP_TIMEOUT = 1800
LOG_CHUNK = 64 * 1024
STACK_UMASK = 0o022
APT_TIMEOUT = 1800
UNSHARE = ("unshare", "--mount", "--propagation", "private", "--")


@dataclass(frozen=True)
class StackRecipe:
    name: str
    suite: str
    python: str
    # What native code built on the build variant links against, as the suite names it,
    # in the run stack too (libssl3 became libssl3t64 in trixie's 64-bit time_t move).
    runtime_libraries: tuple[str, ...]


RECIPES = {
    "debian-12": StackRecipe(
        "debian-12",
        "bookworm",
        "3.11",
        ("libpq5", "libssl3", "libffi8", "libxml2", "libjpeg62-turbo", "zlib1g"),
    ),
    "debian-13": StackRecipe(
        "debian-13",
        "trixie",
        "3.13",
        ("libpq5", "libssl3t64", "libffi8", "libxml2", "libjpeg62-turbo", "zlib1g"),
    ),
}
DEFAULT_STACK = "debian-13"  # the newest, as on Heroku
NAMES = sorted([*RECIPES, *(f"{n}{BUILD_SUFFIX}" for n in RECIPES)])
DEFAULT_MIRROR = "http://deb.debian.org/debian"


def effective(stack: str) -> str:
    """The stack an app really uses (apps from before stacks existed get the default)."""
    return stack if stack in RECIPES else DEFAULT_STACK


def stacks_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("PAAS_STACKS_DIR"):
        return Path(env["PAAS_STACKS_DIR"])
    if os.geteuid() == 0:
        return Path("/var/cache/paas/stacks")
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "paas" / "stacks"


def recipe(name: str) -> StackRecipe:
    if name not in RECIPES:
        raise InvalidParams(f"unknown stack {name!r}: choose one of {', '.join(sorted(RECIPES))}")
    return RECIPES[name]


def rootfs(name: str, directory: Path | None = None) -> Path | None:
    """The built run rootfs of this recipe version of a stack, or None when it is not built."""
    tree = version_dir(name, directory) / "rootfs"
    return tree if (tree / "usr" / "bin").is_dir() else None


def build_rootfs(name: str, directory: Path | None = None) -> Path | None:
    """The stack's build variant (the run tree plus compilers and headers), or None."""
    tree = version_dir(name, directory) / "build-rootfs"
    return tree if (tree / "usr" / "bin").is_dir() else None


def version_dir(name: str, directory: Path | None = None) -> Path:
    return (directory or stacks_dir()) / recipe(name).name / f"v{RECIPE_VERSION}"


def python_versions(directory: Path | None = None) -> dict[str, str]:
    """Stack name → its Python major.minor, for the stacks that are built."""
    return {n: r.python for n, r in RECIPES.items() if rootfs(n, directory) is not None}


def base_name(name: str) -> str:
    """`debian-13-build` names the build variant of debian-13: both are built together."""
    return name.removesuffix(BUILD_SUFFIX)


def build(
    name: str,
    mirror: str,
    directory: Path | None = None,
    force: bool = False,
    log: bool = False,
    lock_fd: int | None = None,
) -> Path:
    """Builds the stack's run tree and its build variant unless this recipe's version of
    them is there; returns the run rootfs. One build per stack at a time (a lock in the
    shared directory); a failure is recorded (`failure_file`) until the next build starts;
    with `log`, the output goes to the stack's build log (`read_log`)."""
    stack = recipe(base_name(name))
    # A stack is read by every app's uid (and apt's own _apt user while it builds): what
    # is made here is world-readable, whatever umask the process came with (the API's 077).
    previous = os.umask(STACK_UMASK)
    try:
        return build_locked(stack, mirror, directory, force, log, lock_fd)
    finally:
        os.umask(previous)


def build_locked(
    stack: StackRecipe,
    mirror: str,
    directory: Path | None,
    force: bool,
    log: bool,
    lock_fd: int | None,
) -> Path:
    target = version_dir(stack.name, directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(stack.name, directory, lock_fd):
        if log:  # only once the lock is held: a second builder never writes into it
            start_log(stack.name, directory)
        failure_file(target).unlink(missing_ok=True)
        try:
            run_tree = build_run(stack, mirror, target, force)
            if build_rootfs(stack.name, directory) is None or force:
                build_variant(stack, target, run_tree.parent / "apt-lists")
        except BaseException as error:
            message = error.message if isinstance(error, PaasError) else repr(error)
            failure_file(target).write_text(message + "\n")
            raise
        finally:
            shutil.rmtree(target / "apt-lists", ignore_errors=True)
    print(f"-----> Stack {stack.name} v{RECIPE_VERSION} ready at {target} (run and build)")
    return run_tree


def build_run(stack: StackRecipe, mirror: str, target: Path, force: bool) -> Path:
    """The run tree, built with mmdebstrap unless it is there. Its apt package lists are
    kept beside it (`apt-lists`) for the build variant, so both resolve the same versions."""
    existing = target / "rootfs"
    if (existing / "usr" / "bin").is_dir() and not force:
        return existing
    staging = Path(tempfile.mkdtemp(prefix=f".{stack.name}-", dir=target.parent))
    try:
        tarball = staging / "rootfs.tar"
        print(f"-----> Building stack {stack.name} (Debian {stack.suite}) with mmdebstrap")
        # Not procs.run: mmdebstrap's progress goes to the operator's terminal (or the
        # on-demand build's log) as it comes, with the operator's environment (proxies).
        result = subprocess.run(
            [
                "mmdebstrap",
                "--variant=essential",
                "--mode=root",
                f"--include={','.join(PACKAGES + stack.runtime_libraries)}",
                f"--customize-hook=copy-out /var/lib/apt/lists {staging}",
                stack.suite,
                str(tarball),
                mirror,
            ],
            timeout=MMDEBSTRAP_TIMEOUT,
        )
        if result.returncode != 0:
            raise PaasError(
                f"mmdebstrap failed building {stack.name} (exit {result.returncode}): check "
                f"that {mirror} is reachable (or set PAAS_DEBIAN_MIRROR)"
            )
        tree = staging / "rootfs"
        tree.mkdir()
        procs.run(["tar", "-xf", str(tarball), "-C", str(tree)], timeout=600)
        tarball.unlink()
        carry_host_certificates(tree)
        tree.chmod(0o755)
        staging.chmod(0o755)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
        os.replace(target / "lists", target / "apt-lists")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target / "rootfs"


def build_variant(stack: StackRecipe, target: Path, lists: Path) -> Path:
    """The build variant: a copy of the finished run tree with BUILD_PACKAGES installed in
    it by its own apt (a chroot, in a mount namespace of its own so /proc and /dev leave
    with it), from the run build's package lists when they are there, so every package
    the two share has the same version (checked after)."""
    print(f"-----> Building {stack.name}{BUILD_SUFFIX}: {stack.name} plus compilers and headers")
    staging = Path(tempfile.mkdtemp(prefix=f".{stack.name}{BUILD_SUFFIX}-", dir=target))
    tree = staging / "rootfs"
    try:
        procs.run(["cp", "-a", "--reflink=auto", str(target / "rootfs"), str(tree)], timeout=600)
        have_lists = lists.is_dir() and any(lists.glob("*_Packages"))
        if have_lists:
            procs.run(["cp", "-a", f"{lists}/.", str(tree / "var/lib/apt/lists")], timeout=600)
        resolv = tree / "etc" / "resolv.conf"
        kept = resolv.read_bytes() if resolv.is_file() and not resolv.is_symlink() else None
        resolv.unlink(missing_ok=True)
        if HOST_RESOLV_CONF.is_file():
            shutil.copyfile(HOST_RESOLV_CONF, resolv)
        install_in_chroot(tree, stack, update=not have_lists)
        resolv.unlink(missing_ok=True)
        if kept is not None:
            resolv.write_bytes(kept)
        mismatched = version_mismatches(target / "rootfs", tree)
        if mismatched:
            raise PaasError(
                f"the build variant of {stack.name} got other versions than its run stack "
                f"({', '.join(mismatched[:5])}): the mirror changed since the run stack was "
                f"built; rebuild both with `paas stacks:build {stack.name} --force`"
            )
        tree.chmod(0o755)
        done = target / "build-rootfs"
        if done.exists():
            shutil.rmtree(done)
        os.replace(tree, done)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return done


def install_in_chroot(tree: Path, stack: StackRecipe, update: bool) -> None:
    script = (
        ("apt-get update -q && " if update else "")
        + "apt-get install -y -q --no-install-recommends "
        + " ".join(BUILD_PACKAGES)
        + " && apt-get clean && rm -rf /var/lib/apt/lists/*"
    )
    mounts = (
        'mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" && exec chroot "$1" sh -c "$2"'
    )
    env = {
        **{k: v for k, v in os.environ.items() if k.lower().endswith("_proxy")},
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "DEBIAN_FRONTEND": "noninteractive",
        "LC_ALL": "C.UTF-8",
    }
    # Streamed as mmdebstrap's is (see build_run).
    result = subprocess.run(
        [*UNSHARE, "sh", "-c", mounts, "sh", str(tree), script],
        env=env,
        timeout=APT_TIMEOUT,
    )
    if result.returncode != 0:
        raise PaasError(
            f"apt-get failed installing the build packages of {stack.name}{BUILD_SUFFIX} "
            f"(exit {result.returncode}): check that the stack's mirror is reachable and "
            f"retry with `paas stacks:build {stack.name}`"
        )


def installed_versions(tree: Path) -> dict[str, str]:
    """Package → version of what dpkg says is installed in a tree (its status file)."""
    found: dict[str, str] = {}
    status = (tree / "var" / "lib" / "dpkg" / "status").read_text(errors="replace")
    for paragraph in status.split("\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in paragraph.splitlines()
            if ": " in line and line[0] != " "
        )
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            arch = fields.get("Architecture", "")
            found[f"{fields['Package']}:{arch}"] = fields.get("Version", "")
    return found


def version_mismatches(run_tree: Path, build_tree: Path) -> list[str]:
    """The run tree's packages whose version differs (or that are gone) in the build tree."""
    built = installed_versions(build_tree)
    return [
        f"{package} {version} → {built.get(package, 'missing')}"
        for package, version in sorted(installed_versions(run_tree).items())
        if built.get(package) != version
    ]


def claim(name: str, directory: Path | None = None) -> IO[str]:
    """The stack's build lock, taken (an open file whose flock is held): a process that
    starts a build passes it on to the builder (`build(lock_fd=…)`), so the stack shows
    as building from that moment. It goes with the last process holding it, so a crashed
    build never leaves the stack looking busy."""
    target = version_dir(base_name(name), directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_file(target), "a")  # noqa: SIM115 (its holder closes it)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise PaasError(
            f"stack {target.parent.name} is being built by another process already: wait "
            f"for it (`paas stacks` shows it)"
        ) from None
    log_file(target).write_bytes(b"")  # this build's log starts here
    return handle


@contextlib.contextmanager
def build_lock(name: str, directory: Path | None, lock_fd: int | None) -> Iterator[None]:
    """Held for a whole build: the inherited lock `lock_fd`, else one claimed here."""
    if lock_fd is not None:
        try:
            yield
        finally:
            os.close(lock_fd)
        return
    with claim(name, directory):
        yield


def lock_file(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


def failure_file(target: Path) -> Path:
    return target.parent / f"{target.name}.failed"


def log_file(target: Path) -> Path:
    return target.parent / f"{target.name}.log"


def building(name: str, directory: Path | None = None) -> bool:
    """Whether some process holds the stack's build lock now."""
    target = version_dir(base_name(name), directory)
    if not lock_file(target).exists():
        return False
    with open(lock_file(target), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


@dataclass(frozen=True)
class StackStatus:
    name: str
    state: str  # built, building, failed or not built
    reason: str = ""  # why the last build failed

    def json(self) -> dict[str, object]:
        recipe_ = RECIPES[self.name]
        return {
            "name": self.name,
            "suite": recipe_.suite,
            "python": recipe_.python,
            "state": self.state,
            "reason": self.reason,
            "default": self.name == DEFAULT_STACK,
        }


def status(name: str, directory: Path | None = None) -> StackStatus:
    """built once both variants are there; building while a process holds its lock;
    failed (with why) when the last build failed; else not built."""
    target = version_dir(name, directory)
    if building(name, directory):
        return StackStatus(name, "building")
    if rootfs(name, directory) is not None and build_rootfs(name, directory) is not None:
        return StackStatus(name, "built")
    failed = failure_file(target)
    if failed.is_file():
        return StackStatus(name, "failed", failed.read_text().strip())
    return StackStatus(name, "not built")


def carry_host_certificates(tree: Path) -> None:
    """The host's CA bundle, custom corporate CAs included, replaces the stack's."""
    target = tree / "etc" / "ssl" / "certs" / "ca-certificates.crt"
    if HOST_CA_BUNDLE.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HOST_CA_BUNDLE, target)


# What `paas stack:set` asked for while the stack was not built yet: the app moves to it
# when the build succeeds (the API on the build's end, else the next push), and stays on
# its stack when it fails. One file per app in the platform's run directory.
def request_file(run_dir: Path, app: str) -> Path:
    return run_dir / "stack-requests" / app


def request(run_dir: Path, app: str, stack: str) -> None:
    path = request_file(run_dir, app)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(stack)


def pending(run_dir: Path, app: str) -> str | None:
    path = request_file(run_dir, app)
    stack = path.read_text().strip() if path.is_file() else ""
    return stack if stack in RECIPES else None


def requested(run_dir: Path, stack: str) -> list[str]:
    """The apps waiting for `stack`."""
    folder = run_dir / "stack-requests"
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    return [name for name in names if pending(run_dir, name) == stack]


def drop_request(run_dir: Path, app: str) -> None:
    request_file(run_dir, app).unlink(missing_ok=True)


def read_log(name: str, offset: int, directory: Path | None = None) -> tuple[str, int]:
    """The build log of the stack from `offset` on (at most LOG_CHUNK bytes), and where it
    ends; complete lines only, so a reader never shows half a line."""
    path = log_file(version_dir(base_name(name), directory))
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read(LOG_CHUNK)
    except FileNotFoundError:
        return "", offset
    end = data.rfind(b"\n") + 1
    return data[:end].decode(errors="replace"), offset + end


def start_log(name: str, directory: Path | None = None) -> None:
    """The build's output (this process's and its children's) goes to the stack's build
    log from here on, for `paas stack:set` and pushes to follow."""
    path = log_file(version_dir(base_name(name), directory))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
