"""A Python for an app whose stack lacks the one it asks for, found before the build's
first compile step: in the host-wide store (paas.artifacts.pythons), else fetched with uv's
managed downloads from the mirror the operator allows, else another built stack's
interpreter whose libraries the app's stack has. None leaves the choice to the Python
buildpack, which then fails saying what it could use.

Invariants: the request is read through pushed_tree (a link is never followed); a fetch
runs on the host (not in the build container: a 127.0.0.1 or file:// mirror is the host's,
and the container has a network namespace of its own) as the build user, with an empty
HOME, none of the hook's git environment, no uv config file and a time cap, into a
staging directory of the build's; root then copies it into the store following no link.
A failed fetch (a hash mismatch, an unreadable archive) stops the build and adds nothing
to the store. The build only ever reads the store's entry.
"""

from __future__ import annotations

import platform
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from paas.artifacts import pythons, stacks
from paas.artifacts.pythons import PythonStore
from paas.domain import python_runtime
from paas.domain.errors import BuildFailed, PaasError
from paas.domain.settings import Settings
from paas.isolation.users import Account
from paas.push import buildpack_fetch, pushed_tree
from paas.push.steps import run_capped

FETCH_TIMEOUT = 300
NOT_ON_MIRROR = "No download found for request"


@dataclass
class PythonProvider:
    """For one build: `give` chowns to the build user, `within` cuts a timeout to the
    push's deadline, `timed_out` says which limit a fetch hit."""

    settings: Settings
    account: Account | None
    passed: dict[str, str]  # the host's proxy and CA settings a fetch keeps
    say: Callable[[str], None]
    give: Callable[..., None]
    within: Callable[[float], float]
    timed_out: Callable[[str, float], BuildFailed]
    fetched: int = 0  # how many managed Pythons this build fetched

    @property
    def store(self) -> PythonStore:
        return PythonStore(self.settings.pythons_dir)

    def provide(
        self, app_dir: Path, config: Mapping[str, str], stack_rootfs: Path, workspace: Path
    ) -> Path | None:
        """The store entry's python/ directory the build should copy into its slug, or
        None (the stack has the Python asked for, none is asked for, or none fits)."""
        minor = requested(app_dir)
        if minor is None or any(
            (stack_rootfs / bin / f"python{minor}").exists() for bin in ("usr/bin", "usr/local/bin")
        ):
            return None
        operator = python_runtime.Sources(
            self.settings.python_mirror, self.settings.python_downloads_json
        )
        sources = python_runtime.sources(config, operator, self.settings.python_sources)
        arch = platform.machine()
        home = self.store.managed(minor, arch)
        if home is not None:
            self.say(f"-----> Python {minor}: {home.parent.name} from the host's store")
            return home
        if sources.any:
            home = self.fetch(minor, sources, workspace)
            if home is not None:
                return home
        return self.from_other_stack(minor, stack_rootfs)

    def fetch(self, minor: str, sources: python_runtime.Sources, workspace: Path) -> Path | None:
        """`uv python install` as the build user into the workspace, then into the store;
        None when the mirror has no such Python."""
        self.say(f"-----> Fetching Python {minor} from {sources.shown}")
        self.fetched += 1
        base = workspace / "python-fetch"
        for part in ("home", "cache", "install"):
            (base / part).mkdir(parents=True)
        self.give(base)
        argv = [str(self.settings.tools_dir / "uv"), "python", "install", "--no-config"]
        argv += ["--no-bin", "--no-registry", "--install-dir", str(base / "install")]
        if sources.mirror:
            argv += ["--mirror", sources.mirror]
        if sources.downloads_json:
            argv += ["--python-downloads-json-url", sources.downloads_json]
        env = {
            **self.passed,
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(base / "home"),
            "LANG": "C.UTF-8",
            "UV_CACHE_DIR": str(base / "cache"),
            "UV_NO_PROGRESS": "1",
            "UV_PYTHON_INSTALL_DIR": str(base / "install"),
        }
        timeout = self.within(FETCH_TIMEOUT)
        code, tail, expired = run_capped([*argv, minor], env, base, timeout, self.account)
        if expired:
            raise self.timed_out(f"fetching Python {minor}", FETCH_TIMEOUT)
        if code != 0:
            if NOT_ON_MIRROR in tail:
                self.say(f"       Python {minor} is not on {sources.shown}")
                return None
            raise BuildFailed(f"cannot fetch Python {minor} from {sources.shown}: {why(tail)}")
        installed = [
            p
            for p in (base / "install").iterdir()
            if not p.is_symlink() and python_runtime.MANAGED.fullmatch(p.name)
        ]
        if len(installed) != 1 or not (installed[0] / "bin" / f"python{minor}").is_file():
            raise BuildFailed(f"cannot fetch Python {minor}: uv installed no python{minor}")
        staging = self.store.staging()
        try:
            buildpack_fetch.copy_plain(installed[0], staging / "python")
            entry = self.store.seal(staging, installed[0].name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(base, ignore_errors=True)
        self.say(f"       Python {minor}: {entry.name}, kept in the host's store")
        return entry / "python"

    def from_other_stack(self, minor: str, stack_rootfs: Path) -> Path | None:
        """The interpreter of another built stack with `minor`, when the ELF files of it
        and its lib-dynload modules need only libraries the app's stack has."""
        for name, recipe in stacks.RECIPES.items():
            rootfs = stacks.rootfs(name)
            if recipe.python != minor or rootfs is None or rootfs == stack_rootfs:
                continue
            entry = pythons.stack_entry_name(name, stacks.RECIPE_VERSION, minor)
            home = self.store.home(entry, minor)  # copied before: its own files are read
            tree = home if home is not None else rootfs / "usr"
            try:
                needed = pythons.needed_by(tree, minor)
                sonames = {s for file in needed.values() for s in file}
                provided = pythons.provided(stack_rootfs, home, sonames)
            except (OSError, ValueError) as error:
                self.say(f"       Python {minor} of stack {name} not used: {error}")
                continue
            missing = python_runtime.missing_libraries(needed, provided)
            if missing:
                self.say(
                    f"       Python {minor} of stack {name} not used: it needs "
                    f"{python_runtime.describe_missing(missing)}, not on this stack"
                )
                continue
            if home is None:
                try:
                    home = self.store.copy_from_stack(rootfs, minor, entry) / "python"
                except PaasError as error:
                    self.say(f"       Python {minor} of stack {name} not used: {error.message}")
                    continue
            self.say(f"-----> Python {minor}: the interpreter of stack {name}")
            return home
        return None


def requested(app_dir: Path) -> str | None:
    """The major.minor the pushed tree asks for; None also for a file pushed_tree refuses
    (a link, a FIFO): the buildpack then reads it as it does today and says what is wrong."""
    files: dict[str, bytes | None] = {}
    for name in python_runtime.REQUEST_FILES:
        try:
            files[name] = pushed_tree.read_bytes(app_dir, name, python_runtime.MAX_REQUEST_BYTES)
        except BuildFailed:
            return None
    return python_runtime.requested(files)


def why(tail: str) -> str:
    """uv's reason on one line: its `error:` and `cause:` lines."""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    kept = [line for line in lines if line.startswith(("error:", "cause:"))] or lines[-1:]
    return " / ".join(kept)[:400] or "uv failed with no output"
