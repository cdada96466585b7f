"""The collector: what deploys leave in PAAS_HOME stays within a stated bound.

Retention, per app: the releases kept are the last PAAS_IMAGES_KEPT that did not fail
(the rollback targets), the current release, and the release of every dyno directory that
exists. Their slugs (tar, unpacked tree, app layer), image blobs and the shared runtimes
their slugs name (paas.artifacts.runtimes) stay; every other slug and blob goes, and so
does every other runtime no build used or made for a day. Also removed: `builds` rows
beyond the last PAAS_IMAGES_KEPT per app, the build cache of an app that no longer
exists, build workspaces no running push owns, staging files and spec-less dyno
directories older than STAGING_SECONDS. Every git repo gets `git gc --auto`.

Invariant: nothing a dyno, the current release, a kept release or a push in flight needs
is removed. A push in flight (its build row pending and its app's push lock held) pins
everything changed since it began, and so does this run for what appears while it runs:
an entry is judged by its ctime, which no one can set back.

It runs after each deploy (from the hook), when an app is destroyed, and at server start.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from paas.artifacts import runtimes
from paas.artifacts.images import ImageStore
from paas.domain.errors import CommandFailed, PaasError
from paas.domain.models import App, Release
from paas.domain.settings import Settings
from paas.host import cleanup, platform_log, procs
from paas.host.jsonfile import read_json
from paas.isolation import container
from paas.state.store import Store

STAGING_SECONDS = 3600.0  # longer than any tar or unpack step (600 s) may run
CTIME_SLACK = 0.1  # a file's ctime comes from the kernel's coarse clock, a tick behind
GC_TIMEOUT = 600.0
DIGEST_NAME = re.compile(r"[0-9a-f]{64}")
NEVER_KEPT = ("failed", "superseded")  # never served, or never rolled out: no target


@dataclass(frozen=True)
class Dyno:
    """What a dyno directory pins: its app's release, and the slug paths it runs from."""

    directory: Path
    app: str | None
    release: int | None
    paths: tuple[str, ...]
    runtimes: tuple[str, ...] = ()  # the shared runtimes it has mounted


@dataclass(frozen=True)
class Retention:
    slugs: frozenset[str]  # slug digests without "sha256:"
    images: dict[str, str]  # APP-vN -> image index digest
    runtimes: frozenset[str] = frozenset()  # shared runtime names


# --- pure rules ------------------------------------------------------------------------
def kept_releases(
    releases: list[Release], current: Release | None, in_use: set[int], count: int
) -> list[Release]:
    """The releases whose artifacts stay: the last `count` rollback targets, the current
    one and those dynos run."""
    good = [r for r in releases if r.status not in NEVER_KEPT]
    pinned = {r.version for r in good[-count:]} | in_use
    if current is not None:
        pinned.add(current.version)
    return [r for r in releases if r.version in pinned]


def slug_digest(name: str) -> str | None:
    """The slug an entry of the slugs directory belongs to (`HEX`, `HEX.tar`, `HEX.layer`),
    None for staging files (mkstemp names)."""
    head, dot, _ = name.partition(".")
    return head if DIGEST_NAME.fullmatch(head) and (dot or name == head) else None


def doomed_slug_entries(
    entries: Iterable[tuple[str, float]], keep: frozenset[str], spare_since: float, stale: float
) -> list[str]:
    """Names to remove from the slugs directory, given (name, ctime) pairs. A slug goes
    whole (tar, tree, layer together) and only if none of its entries changed lately."""
    entries = list(entries)
    newest: dict[str, float] = {}
    for name, changed in entries:
        digest = slug_digest(name)
        if digest is not None:
            newest[digest] = max(newest.get(digest, 0.0), changed)
    doomed = []
    for name, changed in entries:
        digest = slug_digest(name)
        if digest is None:
            if changed < stale:
                doomed.append(name)
        elif digest not in keep and newest[digest] < spare_since:
            doomed.append(name)
    return doomed


def pinned_slugs(slugs_dir: Path, paths: Iterable[str]) -> set[str]:
    """Slug digests named by paths under the slugs directory (a dyno's app dir, layer)."""
    found = set()
    for raw in paths:
        path = Path(raw)
        if path.parent == slugs_dir and (digest := slug_digest(path.name)):
            found.add(digest)
    return found


def spare_since(started: float, pushes: Iterable[float]) -> float:
    """Entries changed at or after this time are kept whatever else holds."""
    return min([started, *pushes]) - CTIME_SLACK


# --- observing -------------------------------------------------------------------------
def observe_dynos(dynos_dir: Path) -> list[Dyno]:
    found = []
    for directory in sorted(dynos_dir.iterdir()) if dynos_dir.is_dir() else []:
        spec = read_json(directory / "spec.json")
        if spec is None:
            found.append(Dyno(directory, None, None, ()))
            continue
        plan = spec.get("container")
        layer = plan.get("layer") if isinstance(plan, dict) else None
        paths = tuple(p for p in (spec.get("app_dir"), layer) if isinstance(p, str))
        app, release = spec.get("app"), spec.get("release")
        found.append(
            Dyno(
                directory,
                app if isinstance(app, str) else None,
                release if isinstance(release, int) else None,
                paths,
                mounted_runtimes(plan),
            )
        )
    return found


def mounted_runtimes(plan: object) -> tuple[str, ...]:
    """The runtime names of a dyno's container plan (its mounts' host paths)."""
    mounts = plan.get("runtimes") if isinstance(plan, dict) else None
    if not isinstance(mounts, list):
        return ()
    return tuple(
        Path(m[0]).name for m in mounts if isinstance(m, list) and m and isinstance(m[0], str)
    )


def slug_runtimes(slugs_dir: Path, digest: str) -> list[str]:
    """The runtimes a stored slug names: from its tree, else from its tar."""
    tree = slugs_dir / digest
    if tree.is_dir():
        return runtimes.slug_runtimes(tree)
    tar = slugs_dir / f"{digest}.tar"
    if not tar.is_file():
        return []
    try:
        data = procs.run(["tar", "-xOf", str(tar), f"./{runtimes.MANIFEST}"], timeout=60)
    except CommandFailed:  # no manifest in it: it names none
        return []
    return runtimes.named_in(data[: runtimes.MANIFEST_BYTES])


def retention(settings: Settings, store: Store, dynos: list[Dyno]) -> Retention:
    slugs = pinned_slugs(settings.slugs_dir, (p for d in dynos for p in d.paths))
    images: dict[str, str] = {}
    for app in store.apps():
        in_use = {d.release for d in dynos if d.app == app.name and d.release is not None}
        kept = kept_releases(
            store.releases(app), store.current_release(app), in_use, settings.images_kept
        )
        slugs.update(r.artifact.removeprefix("sha256:") for r in kept)
        images.update({f"{app.name}-v{r.version}": r.image for r in kept if r.image})
    named = {n for d in dynos for n in d.runtimes}
    for digest in slugs:
        named.update(slug_runtimes(settings.slugs_dir, digest))
    return Retention(frozenset(slugs), images, frozenset(named))


def pushes_in_flight(settings: Settings, store: Store) -> list[float]:
    """When each running push's build began: its build row is pending and its app's push
    lock (gitservice.push_lock: REPOS/APP.lock) is held. A pending row whose lock is free
    was left by a crash and pins nothing."""
    found = []
    for app, created_at in store.pending_builds():
        if _lock_held(settings.repos_dir / f"{app}.lock"):
            found.append(datetime.fromisoformat(created_at).timestamp())
    return found


def _lock_held(path: Path) -> bool:
    try:
        with path.open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(lock, fcntl.LOCK_UN)
    except OSError:
        return False
    return False


# --- acting ----------------------------------------------------------------------------
def collect(settings: Settings, store: Store) -> list[Path]:
    """One collection over every app; returns what was removed."""
    started = time.time()
    since = spare_since(started, pushes_in_flight(settings, store))
    stale = started - STAGING_SECONDS
    dynos = observe_dynos(settings.dynos_dir)
    keep = retention(settings, store, dynos)
    removed = []
    if settings.slugs_dir.is_dir():
        entries = [(p.name, _ctime(p)) for p in settings.slugs_dir.iterdir()]
        for name in doomed_slug_entries(entries, keep.slugs, since, stale):
            removed += _remove(settings.slugs_dir / name)
    stored: list[str] = []
    if (settings.home / "runtimes").is_dir():
        shared = runtimes.store_of(settings.home)
        removed += shared.collect(keep.runtimes, since, stale)
        stored = shared.names()
    if settings.images_dir.is_dir():
        images = ImageStore(settings.images_dir)
        layers = images.runtime_layers(stored)  # the next image of a stored runtime has it
        gone = images.collect(keep.images.values(), since, stale, layers)
        removed += [images.blobs / d.removeprefix("sha256:") for d in gone]
        images.write_index(keep.images)
    apps = store.apps()
    removed += _remove_all(_gone_caches(settings, apps))
    removed += _remove_all(p for p in _children(settings.builds_dir) if _ctime(p) < since)
    removed += _remove_all(
        d.directory for d in dynos if d.app is None and _ctime(d.directory) < stale
    )
    for app in apps:
        store.trim_builds(app, settings.images_kept)
    return removed


def after_deploy(settings: Settings, store: Store, app: App) -> None:
    """The hook's call once a release is written: collect, then compact the app's repo.
    A failure here is reported and does not fail the deploy (the next run retries)."""
    try:
        collect(settings, store)
        gc_repo(settings.repos_dir / f"{app.name}.git")
    except (OSError, PaasError, ValueError) as error:
        platform_log.line(f"paas: collector: {error}")  # the hook's stderr is the pusher's


def at_start(settings: Settings) -> None:
    """At server start: collect, compact every repo; a failure is reported, not fatal."""
    try:
        removed = collect(settings, Store(settings.db_path))
        for repo in sorted(settings.repos_dir.glob("*.git")):
            gc_repo(repo)
    except (OSError, PaasError, ValueError) as error:
        platform_log.line(f"paas: collector: {error}")
        return
    if removed:
        print(f"paas: collector removed {len(removed)} unneeded entries", flush=True)


def forget_app(settings: Settings, store: Store, app: App) -> None:
    """After an app is deleted: its build cache, then whatever only it used."""
    _remove(settings.cache_dir / app.id)
    (settings.cache_dir / f"{app.id}.img").unlink(missing_ok=True)
    collect(settings, store)


def gc_repo(repo: Path) -> None:
    """`git gc --auto` on a bare repo, outside any hook's git environment (a quarantine
    must not be compacted); git detaches when there is real work."""
    if not repo.is_dir():
        return
    try:
        procs.run(
            ["git", "--git-dir", str(repo), "gc", "--auto", "--quiet"],
            env={**procs.host_env(), "HOME": str(repo)},
            timeout=GC_TIMEOUT,
        )
    except CommandFailed as failure:  # the repo stays as it was: the next run retries
        platform_log.line(f"paas: collector: {failure.message}")


def _gone_caches(settings: Settings, apps: list[App]) -> list[Path]:
    ids = {a.id for a in apps}
    # APP_ID (the cache, or its mount point) and APP_ID.img (its filesystem) go together.
    return [p for p in _children(settings.cache_dir) if p.name.partition(".")[0] not in ids]


def _children(directory: Path) -> list[Path]:
    return sorted(directory.iterdir()) if directory.is_dir() else []


def _ctime(path: Path) -> float:
    try:
        return path.lstat().st_ctime
    except FileNotFoundError:
        return time.time()  # gone meanwhile: nothing to do, treat as fresh


def _remove_all(paths: Iterable[Path]) -> list[Path]:
    return [removed for path in paths for removed in _remove(path)]


def _remove(path: Path) -> list[Path]:
    """Removes a file or tree, never through a mount point: a crashed build's or dyno's
    mounts are lazily unmounted first, and a tree still holding one is left alone."""
    if path.is_symlink() or not path.is_dir():
        with contextlib.suppress(FileNotFoundError):  # gone meanwhile: nothing to remove
            path.unlink()
            return [path]
        return []
    for mount in sorted(container.mounts_under(path), key=lambda m: -len(m.parts)):
        cleanup.command(["umount", "-l", str(mount)], gone=container.NOT_MOUNTED)
    if container.mounts_under(path):
        return []
    return [path] if cleanup.remove_tree(path) else []
