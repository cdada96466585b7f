"""paas.artifacts.runtimes: the declaration a build writes, the slug's manifest, and the
store's rules for making and removing entries (on a real temporary directory)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from paas.artifacts import runtimes
from paas.domain.errors import BuildFailed, PaasError

SHA = "a" * 64
NAME = f"nodejs-24.11.1-{SHA}"


def offer(archive: str = "/cache/x.whl", sha256: str = SHA) -> dict[str, str]:
    return {"kind": "nodejs", "version": "24.11.1", "sha256": sha256, "archive": archive}


def test_a_declaration_names_runtimes_and_offers() -> None:
    data = f'{{"runtimes": ["{NAME}", "{NAME}"], "offers": []}}'.encode()
    assert runtimes.parse_declaration(data) == runtimes.Declaration((NAME,), ())
    parsed = runtimes.parse_declaration(json.dumps({"offers": [offer()]}).encode())
    assert parsed.offers == (runtimes.Offer("nodejs", "24.11.1", SHA, "/cache/x.whl"),)
    assert parsed.offers[0].name == NAME


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"runtimes": "nodejs"}',
        '{"runtimes": ["../etc"]}',
        '{"runtimes": ["nodejs-1-short"]}',
        '{"offers": [{"kind": "nodejs"}]}',
        '{"offers": [{"kind": "Node/js", "version": "1", "sha256": "' + SHA + '", "archive": ""}]}',
    ],
)
def test_a_bad_declaration_is_refused_naming_the_file(text: str) -> None:
    with pytest.raises(BuildFailed, match=r"\.paas/runtimes\.json .*docs/buildpacks\.md"):
        runtimes.parse_declaration(text.encode())


def test_the_manifest_keeps_only_the_names() -> None:
    data = runtimes.manifest([NAME])
    assert runtimes.named_in(data) == [NAME]
    assert b"offers" not in data and b"archive" not in data
    assert runtimes.named_in(b"garbage") == []


def test_a_missing_entry_is_a_clear_error(tmp_path: Path) -> None:
    store = runtimes.RuntimeStore(tmp_path / "runtimes")
    with pytest.raises(PaasError, match=r"removed by hand.*push the app again"):
        store.paths([NAME])


def test_an_archive_whose_bytes_are_not_its_sha256_makes_no_entry(tmp_path: Path) -> None:
    store = runtimes.RuntimeStore(tmp_path / "runtimes")
    archive = tmp_path / "node.whl"
    archive.write_bytes(b"not the wheel")
    declared = runtimes.Offer("nodejs", "24.11.1", SHA, str(archive))
    with pytest.raises(BuildFailed, match="is not the one its sha256 names"):
        store.add(declared, archive, ["true"], (os.getuid(), os.getgid()))
    assert list(store.directory.iterdir()) == []  # no entry, no staging left


def test_a_link_is_no_archive(tmp_path: Path) -> None:
    target = tmp_path / "node.whl"
    target.write_bytes(b"x")
    (tmp_path / "link.whl").symlink_to(target)
    with pytest.raises(BuildFailed, match="cannot read the runtime archive"):
        runtimes.copy_hashed(tmp_path / "link.whl", tmp_path / "copy")
    assert runtimes.copy_hashed(target, tmp_path / "copy") == hashlib.sha256(b"x").hexdigest()


def test_collect_keeps_named_and_recently_used_entries(tmp_path: Path) -> None:
    store = runtimes.RuntimeStore(tmp_path / "runtimes")
    kept, unused, recent = (f"nodejs-{v}-{SHA}" for v in ("1.0.0", "2.0.0", "3.0.0"))
    for name in (kept, unused, recent):
        (store.path(name) / "bin").mkdir(parents=True)
    long_ago = time.time() - 2 * runtimes.UNUSED_SECONDS
    for name in (kept, unused):
        os.utime(store.path(name), (long_ago, long_ago))
    now = time.time() + 1
    removed = store.collect([kept], spare_since=now, stale=now - 3600, now=now)
    assert removed == [store.path(unused)]
    assert store.names() == [kept, recent]
    # A push in flight pins every entry: none changed since it began goes.
    store.collect([], spare_since=time.time() - 60, stale=0, now=now)
    assert store.names() == [kept, recent]
