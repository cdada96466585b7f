"""The Node.js buildpack's semver ranges (buildpacks/nodejs/lib/semver.py): a table of
ranges and the versions each must and must not admit, as npm's node-semver reads them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "buildpacks" / "nodejs" / "lib" / "semver.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("node_semver", SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


semver = load()

# range, versions in it, versions outside it
CASES = [
    ("20.x", ["20.0.0", "20.18.0"], ["19.9.9", "21.0.0", "22.1.0"]),
    ("20", ["20.0.0", "20.99.1"], ["21.0.0"]),
    ("*", ["0.0.0", "24.1.0"], []),
    ("", ["1.2.3"], []),
    ("x", ["22.0.0"], []),
    ("22.1", ["22.1.0", "22.1.9"], ["22.2.0", "22.0.9"]),
    ("22.1.x", ["22.1.5"], ["22.2.0"]),
    ("22.11.0", ["22.11.0"], ["22.11.1", "22.10.9"]),
    ("=22.11.0", ["22.11.0"], ["22.11.1"]),
    ("v22.11.0", ["22.11.0"], ["22.12.0"]),
    ("^20.11", ["20.11.0", "20.99.0"], ["20.10.9", "21.0.0"]),
    ("^20.11.1", ["20.11.1", "20.12.0"], ["20.11.0", "21.0.0"]),
    ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
    ("^0.0.3", ["0.0.3"], ["0.0.4"]),
    ("^0.0", ["0.0.9"], ["0.1.0"]),
    ("^1.x", ["1.0.0", "1.9.0"], ["2.0.0"]),
    ("~22.1.2", ["22.1.2", "22.1.9"], ["22.2.0", "22.1.1"]),
    ("~22.1", ["22.1.0", "22.1.9"], ["22.2.0"]),
    ("~22", ["22.0.0", "22.9.0"], ["23.0.0"]),
    (">=20", ["20.0.0", "24.1.0"], ["19.9.9"]),
    (">= 20", ["20.0.0"], ["19.0.0"]),
    (">20", ["21.0.0"], ["20.99.0"]),
    (">20.1", ["20.2.0"], ["20.1.9"]),
    (">20.1.2", ["20.1.3"], ["20.1.2"]),
    ("<22", ["21.9.9"], ["22.0.0"]),
    ("<=22", ["22.99.0"], ["23.0.0"]),
    ("<=22.1.0", ["22.1.0"], ["22.1.1"]),
    (">=20 <23", ["20.0.0", "22.9.9"], ["23.0.0", "19.0.0"]),
    (">=20.0.0 <21.0.0 || >=24", ["20.5.0", "24.0.0"], ["22.0.0"]),
    ("20 || 24", ["20.1.0", "24.9.0"], ["22.0.0"]),
    ("^20 || ^22", ["22.0.0"], ["24.0.0"]),
    ("20 - 22", ["20.0.0", "22.99.0"], ["23.0.0", "19.9.0"]),
    ("20.1.2 - 22.3.4", ["20.1.2", "22.3.4"], ["22.3.5", "20.1.1"]),
    ("20.1 - 22.3", ["20.1.0", "22.3.9"], ["22.4.0"]),
    (">=22.0.0-rc.1", ["22.0.0"], ["21.0.0"]),
]


@pytest.mark.parametrize(("text", "inside", "outside"), CASES)
def test_range_admits_exactly_its_versions(
    text: str, inside: list[str], outside: list[str]
) -> None:
    for shown in inside:
        assert semver.satisfies(semver.parse_version(shown), text), (text, shown)
    for shown in outside:
        assert not semver.satisfies(semver.parse_version(shown), text), (text, shown)


AVAILABLE = ["20.18.0", "22.11.0", "22.20.0", "24.11.1", "24.19.0"]


@pytest.mark.parametrize(
    ("text", "chosen"),
    [("20.x", "20.18.0"), ("22", "22.20.0"), ("^22.11 <22.12", "22.11.0"), (">=20", "24.19.0")],
)
def test_the_newest_satisfying_version_is_chosen(text: str, chosen: str) -> None:
    versions = [semver.parse_version(v) for v in AVAILABLE]
    assert semver.show(semver.newest_satisfying(versions, text)) == chosen


def test_no_version_in_range_is_none() -> None:
    versions = [semver.parse_version(v) for v in AVAILABLE]
    assert semver.newest_satisfying(versions, "^19") is None


def test_default_is_the_newest_even_major() -> None:
    versions = [semver.parse_version(v) for v in [*AVAILABLE, "25.1.0"]]
    assert semver.show(semver.newest_lts(versions)) == "24.19.0"


@pytest.mark.parametrize("text", ["banana", "lts/*", ">=", "1.2.3.4", "20 - ", "^a.b"])
def test_a_bad_range_is_refused(text: str) -> None:
    with pytest.raises(semver.RangeError):
        semver.newest_satisfying([], text)


def test_only_final_releases_parse_as_versions() -> None:
    assert semver.parse_version("22.10.0rc0") is None
    assert semver.parse_version("v24.1.0") == (24, 1, 0)
