"""Stack state without mmdebstrap: the version check between a run tree and its build
variant (dpkg status files), a build's lock, recorded failure and log, and the requests of
`stack:set` waiting for a stack."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from paas.artifacts import stacks
from paas.domain.errors import PaasError

STATUS = """Package: libpq5
Status: install ok installed
Architecture: amd64
Version: 17.5-1

Package: zlib1g
Status: install ok installed
Architecture: amd64
Version: 1:1.3.dfsg-3.1
Description: compression library
 a continuation line: Version: 9

Package: removed-one
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
"""


def tree(base: Path, name: str, status: str) -> Path:
    root = base / name
    (root / "var" / "lib" / "dpkg").mkdir(parents=True)
    (root / "var" / "lib" / "dpkg" / "status").write_text(status)
    return root


def test_installed_versions_read_only_installed_packages(tmp_path: Path) -> None:
    found = stacks.installed_versions(tree(tmp_path, "run", STATUS))
    assert found == {"libpq5:amd64": "17.5-1", "zlib1g:amd64": "1:1.3.dfsg-3.1"}


def test_a_build_tree_with_extra_packages_and_the_same_versions_matches(tmp_path: Path) -> None:
    extra = "\nPackage: gcc\nStatus: install ok installed\nArchitecture: amd64\nVersion: 4:14\n"
    run, build = tree(tmp_path, "run", STATUS), tree(tmp_path, "build", STATUS + extra)
    assert stacks.version_mismatches(run, build) == []


def test_another_version_in_the_build_tree_is_named(tmp_path: Path) -> None:
    run = tree(tmp_path, "run", STATUS)
    build = tree(tmp_path, "build", STATUS.replace("17.5-1", "17.6-1"))
    assert stacks.version_mismatches(run, build) == ["libpq5:amd64 17.5-1 → 17.6-1"]


def test_a_claimed_stack_is_building_and_a_second_claim_is_refused(tmp_path: Path) -> None:
    assert stacks.status("debian-12", tmp_path).state == "not built"
    with stacks.claim("debian-12", tmp_path):
        assert stacks.status("debian-12", tmp_path).state == "building"
        with pytest.raises(PaasError, match="being built by another process"):
            stacks.claim("debian-12-build", tmp_path)  # the variant is built with it
    assert stacks.status("debian-12", tmp_path).state == "not built"


def test_a_failed_build_is_shown_with_its_reason_until_the_next(tmp_path: Path) -> None:
    version = stacks.version_dir("debian-12", tmp_path)
    version.parent.mkdir(parents=True)
    stacks.failure_file(version).write_text("mmdebstrap failed building debian-12\n")
    found = stacks.status("debian-12", tmp_path)
    assert (found.state, found.reason) == ("failed", "mmdebstrap failed building debian-12")
    with stacks.claim("debian-12", tmp_path):
        assert stacks.status("debian-12", tmp_path).state == "building"


def test_the_log_is_read_in_whole_lines_from_an_offset(tmp_path: Path) -> None:
    with stacks.claim("debian-12", tmp_path):  # a claim starts the build's log afresh
        path = stacks.log_file(stacks.version_dir("debian-12", tmp_path))
        path.write_text("one\ntwo\nthr")
        text, offset = stacks.read_log("debian-12", 0, tmp_path)
        assert (text, offset) == ("one\ntwo\n", 8)
        assert stacks.read_log("debian-12", offset, tmp_path) == ("", 8)
        with path.open("a") as log:
            log.write("ee\n")
        assert stacks.read_log("debian-12", offset, tmp_path) == ("three\n", 14)


def test_an_inherited_lock_is_held_for_the_build_and_closed_after(tmp_path: Path) -> None:
    lock = stacks.claim("debian-12", tmp_path)
    fd = os.dup(lock.fileno())
    lock.close()  # the child's copy is what holds it now
    with stacks.build_lock("debian-12", tmp_path, fd):
        assert stacks.building("debian-12", tmp_path)
    assert not stacks.building("debian-12", tmp_path)


def test_requests_wait_per_app_and_are_dropped(tmp_path: Path) -> None:
    stacks.request(tmp_path, "one", "debian-12")
    stacks.request(tmp_path, "two", "debian-12")
    stacks.request(tmp_path, "three", "debian-13")
    assert stacks.pending(tmp_path, "one") == "debian-12"
    assert stacks.requested(tmp_path, "debian-12") == ["one", "two"]
    stacks.drop_request(tmp_path, "one")
    assert stacks.pending(tmp_path, "one") is None
    assert stacks.requested(tmp_path, "debian-12") == ["two"]
