"""Stacks: the Debian base filesystems apps run on (Heroku's heroku-24, here debian-12/13).

A stack is built once per host with mmdebstrap into a cache outside PAAS_HOME that every
PAAS_HOME shares (`/var/cache/paas/stacks`, or PAAS_STACKS_DIR). Layout:
`DIR/NAME/vRECIPE_VERSION/rootfs/`, renamed into place once a build is complete, so a
half-built stack is never used. The code uses the version directory of its own recipe, so
it always runs on the packages it lists, and checkouts of different recipe versions sharing
the cache each keep theirs: a new recipe is a new directory, never a rebuild of an old one.
(`DIR/NAME/current` is what recipe version 1's code read; it is left as it is.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from paas.domain.errors import InvalidParams, PaasError
from paas.host import procs

RECIPE_VERSION = 4
# nginx-light: the static buildpack's web server (in bookworm and trixie alike).
# libstdc++6: what Node.js binaries (and most native npm/pip modules) link against.
PACKAGES = (
    "python3",
    "python3-venv",
    "ca-certificates",
    "tini",
    "bash",
    "coreutils",
    "nginx-light",
    "libstdc++6",
)
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass(frozen=True)
class StackRecipe:
    name: str
    suite: str
    python: str


RECIPES = {
    "debian-12": StackRecipe("debian-12", "bookworm", "3.11"),
    "debian-13": StackRecipe("debian-13", "trixie", "3.13"),
}
DEFAULT_STACK = "debian-13"  # the newest, as on Heroku


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
    """The built rootfs of this recipe version of a stack, or None when it is not built."""
    tree = version_dir(name, directory) / "rootfs"
    return tree if (tree / "usr" / "bin").is_dir() else None


def version_dir(name: str, directory: Path | None = None) -> Path:
    return (directory or stacks_dir()) / recipe(name).name / f"v{RECIPE_VERSION}"


def python_versions(directory: Path | None = None) -> dict[str, str]:
    """Stack name → its Python major.minor, for the stacks that are built."""
    return {n: r.python for n, r in RECIPES.items() if rootfs(n, directory) is not None}


def build(name: str, mirror: str, directory: Path | None = None, force: bool = False) -> Path:
    """Builds the stack unless its recipe's version is already there; returns its rootfs."""
    stack = recipe(name)
    target = version_dir(name, directory)
    base = target.parent
    existing = rootfs(name, directory)
    if existing is not None and not force:
        return existing
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{stack.name}-", dir=base))
    try:
        tarball = staging / "rootfs.tar"
        print(f"-----> Building stack {stack.name} (Debian {stack.suite}) with mmdebstrap")
        # Not procs.run: mmdebstrap's progress goes to the operator's terminal as it comes
        # (up to 30 minutes), with the operator's environment (proxies, mirror settings).
        result = subprocess.run(
            [
                "mmdebstrap",
                "--variant=essential",
                "--mode=root",
                f"--include={','.join(PACKAGES)}",
                stack.suite,
                str(tarball),
                mirror,
            ],
            timeout=1800,
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
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(f"-----> Stack {stack.name} v{RECIPE_VERSION} ready at {target}")
    return target / "rootfs"


def carry_host_certificates(tree: Path) -> None:
    """The host's CA bundle, custom corporate CAs included, replaces the stack's."""
    target = tree / "etc" / "ssl" / "certs" / "ca-certificates.crt"
    if HOST_CA_BUNDLE.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HOST_CA_BUNDLE, target)
