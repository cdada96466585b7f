"""The shared dependency cache's store: which entry a build is offered, sealing a prime's
output, and pruning (real files in tmp_path, real cp/chmod)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from paas.artifacts import depcache
from paas.artifacts.depcache import DepCache
from paas.domain.errors import BuildFailed

KEY = "a" * 64
OTHER = "b" * 64
FINGERPRINT = "f" * 64


def staged(tmp_path: Path, name: str = "staged", fingerprint: str = FINGERPRINT) -> Path:
    directory = tmp_path / name
    (directory / "venv" / "lib").mkdir(parents=True)
    (directory / "venv" / "lib" / "mod.py").write_text("VALUE = 1\n")
    (directory / "fingerprint").write_text(fingerprint + "\n")
    return directory


@pytest.fixture
def cache(tmp_path: Path) -> DepCache:
    return DepCache(tmp_path / "deps", push_timeout=60.0, max_bytes=1 << 20)


def test_a_sealed_entry_is_offered_and_read_only(cache: DepCache, tmp_path: Path) -> None:
    assert cache.offer("app-1", KEY) is None
    entry = cache.add(KEY, staged(tmp_path), b"flask\n")
    assert cache.offer("app-1", KEY) == entry
    assert cache.offer("app-2", OTHER) is None
    assert (entry / "fingerprint").read_text() == FINGERPRINT + "\n"
    assert (entry / "requirements.txt").read_bytes() == b"flask\n"
    for path in [entry, *entry.rglob("*")]:
        assert path.stat().st_mode & 0o022 == 0, path
        if os.geteuid() == 0:
            assert path.stat().st_uid == 0


def test_a_new_app_gets_a_fresh_entry_and_an_app_keeps_its_own(
    cache: DepCache, tmp_path: Path
) -> None:
    old = cache.add(KEY, staged(tmp_path, "one"), b"flask\n")
    cache.remember("app-1", old)
    later = time.time() + depcache.FRESH_SECONDS + 1
    assert cache.offer("app-2", KEY, now=later) is None  # too old for a newcomer: prime
    assert cache.offer("app-1", KEY, now=later) == old  # the app's own, as its cache would
    new = cache.add(KEY, staged(tmp_path, "two"), b"flask\n")
    assert cache.offer("app-2", KEY) == new
    assert cache.offer("app-1", KEY) == old


@pytest.mark.parametrize("fingerprint", ["", "not-hex", "f" * 63])
def test_a_prime_without_a_valid_fingerprint_is_no_entry(
    cache: DepCache, tmp_path: Path, fingerprint: str
) -> None:
    with pytest.raises(BuildFailed, match="fingerprint"):
        cache.add(KEY, staged(tmp_path, fingerprint=fingerprint), b"flask\n")
    assert cache.listed() == []


def test_an_entry_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    small = DepCache(tmp_path / "deps", push_timeout=60.0, max_bytes=4)
    with pytest.raises(BuildFailed, match="more than"):
        small.add(KEY, staged(tmp_path), b"flask\n")
    assert small.listed() == [] and not any((tmp_path / "deps" / "entries").iterdir())


def test_failures_are_not_retried_for_an_hour(cache: DepCache) -> None:
    assert not cache.failed_recently(KEY)
    cache.record_failure(KEY)
    assert cache.failed_recently(KEY)
    assert not cache.failed_recently(KEY, now=time.time() + depcache.FAILED_RETRY_SECONDS + 1)


def test_prune_keeps_what_a_build_may_still_read(cache: DepCache, tmp_path: Path) -> None:
    kept = cache.add(KEY, staged(tmp_path, "one"), b"flask\n")
    unused = cache.add(OTHER, staged(tmp_path, "two"), b"six\n")
    long_ago = time.time() - depcache.RETAIN_SECONDS - 1
    os.utime(unused, (long_ago, long_ago))
    assert cache.prune() == [unused]
    assert [e.path for e in cache.listed()] == [kept]
    assert cache.prune(now=time.time() + 30) == []  # offered within the push timeout
