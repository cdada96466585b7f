"""The collector's pure rules: which releases' artifacts stay, which slug entries go."""

from __future__ import annotations

from pathlib import Path

from paas.artifacts.collector import doomed_slug_entries, kept_releases, pinned_slugs, slug_digest
from paas.domain.models import Release

A, B, C = "a" * 64, "b" * 64, "c" * 64


def release(version: int, status: str = "succeeded") -> Release:
    return Release(str(version), "app", version, "", f"sha256:{version}", {}, {}, "", None, status)


def versions(found: list[Release]) -> list[int]:
    return [r.version for r in found]


def test_the_last_good_releases_the_current_and_those_dynos_run_are_kept() -> None:
    found = [release(1), release(2), release(3, "failed"), release(4), release(5), release(6)]
    assert versions(kept_releases(found, found[-1], set(), 2)) == [5, 6]
    assert versions(kept_releases(found, found[-1], {1}, 2)) == [1, 5, 6]
    # Failed releases are no target; the current one stays even beyond the count.
    found.append(release(7, "failed"))
    assert versions(kept_releases(found, found[4], set(), 1)) == [5, 6]
    assert versions(kept_releases(found, found[1], set(), 1)) == [2, 6]


def test_slug_entries_belong_to_their_digest_and_staging_names_to_none() -> None:
    assert slug_digest(A) == A
    assert slug_digest(f"{A}.tar") == slug_digest(f"{A}.layer") == A
    assert slug_digest("tmpx1y2.tar.tmp") is None
    assert slug_digest(A + "0") is None


def test_a_slug_goes_whole_and_only_when_unkept_and_old() -> None:
    entries = [
        (A, 10.0),
        (f"{A}.tar", 10.0),
        (B, 10.0),
        (f"{B}.tar", 99.0),  # renewed by a push in flight: B stays whole
        (C, 10.0),
        ("tmp1.unpack", 10.0),
        ("tmp2.unpack", 60.0),
    ]
    doomed = doomed_slug_entries(entries, frozenset({C}), spare_since=50.0, stale=20.0)
    assert doomed == [A, f"{A}.tar", "tmp1.unpack"]


def test_dyno_paths_pin_slugs_under_the_slugs_directory_only() -> None:
    slugs = Path("/var/lib/paas/slugs")
    paths = [f"{slugs}/{A}", f"{slugs}/{B}.layer", f"/var/lib/paas/dynos/x/app/{C}"]
    assert pinned_slugs(slugs, paths) == {A, B}
