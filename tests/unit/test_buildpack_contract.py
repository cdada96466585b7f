"""The pure parts of the buildpack contract: bin/release's YAML, archive member checks,
archive and app.json sources, and the CLI's buildpack list edits."""

from __future__ import annotations

import pytest

from paas.cli.commands import ArgumentError, edited_buildpacks
from paas.domain import buildpack_archive, buildpack_release, buildpack_source
from paas.domain.buildpack_archive import Member
from paas.domain.buildpack_source import Builtin, Remote
from paas.domain.errors import BuildFailed

MIRROR = (*buildpack_source.DEFAULT_PREFIXES, "http://127.0.0.1:8000/", "file:///srv/bp/")


def test_release_yaml_gives_types_and_config_defaults() -> None:
    text = (
        "---\naddons: []\nconfig_vars:\n  LANG: en_US.UTF-8\n  QUOTED: 'it''s'\n"
        'default_process_types:\n  web: "bin/start --port $PORT"\n  worker: bin/work: now\n'
    )
    info = buildpack_release.parse(text)
    assert info.default_process_types == {
        "web": "bin/start --port $PORT",
        "worker": "bin/work: now",
    }
    assert info.config_vars == {"LANG": "en_US.UTF-8", "QUOTED": "it's"}
    assert buildpack_release.parse("--- {}\n") == buildpack_release.ReleaseInfo()
    assert buildpack_release.parse("default_process_types: {}\n").default_process_types == {}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("default_process_types:\n  ../x: y\n", "invalid process type"),
        ("config_vars:\n  1BAD: y\n", "invalid config var"),
        ("config_vars:\n  A-B: y\n", "invalid config var"),
        ("config_vars: nope\n", "line 1: config_vars must be a mapping"),
        ("config_vars:\n  novalue\n", "line 2: expected `name: value`"),
        ("x" * (buildpack_release.MAX_BYTES + 1), "printed more than 64 KiB"),
    ],
)
def test_bad_release_yaml_says_why(text: str, says: str) -> None:
    with pytest.raises(BuildFailed, match=says):
        buildpack_release.parse(text, "mine")


def file(name: str, size: int = 1) -> Member:
    return Member(name, "file", size)


def link(name: str, target: str, kind: str = "symlink") -> Member:
    return Member(name, kind, 0, target)


@pytest.mark.parametrize(
    "members",
    [
        [Member("./", "dir"), file("./bin/compile"), link("bin/run", "compile")],
        [link("lib/current", "../vendor"), file("vendor/x"), file("lib/current/y")],
        [link("a/b/up", "../.."), file("a/b/up/bin/detect")],
        [file("bin/detect"), link("bin/again", "bin/detect", "hardlink")],
    ],
)
def test_archive_members_inside_the_target_pass(members: list[Member]) -> None:
    buildpack_archive.check(members, "u", 10**6)


@pytest.mark.parametrize(
    ("members", "says"),
    [
        ([file("../x")], "has a `..` or empty path segment"),
        ([file("a//b")], "has a `..` or empty path segment"),
        ([file("/etc/x")], "has an absolute path"),
        ([link("l", "/etc")], "symlink 'l' points outside"),
        ([link("l", "../..")], "symlink 'l' points outside"),
        ([link("a/b/up", "../.."), link("a/b/out", "up/..")], "symlink 'a/b/out' points outside"),
        ([link("d", "d/x"), link("e", "d")], "points outside"),  # a loop never resolves
        ([link("out", ".."), file("x")], "symlink 'out' points outside"),
        ([link("ok", "."), file("ok/../../x")], "has a `..`"),
        ([link("h", "/etc/shadow", "hardlink")], "hard link 'h' points outside"),
        ([Member("null", "device")], "member 'null' is a device"),
        ([Member("pipe", "FIFO")], "member 'pipe' is a FIFO"),
        ([file("a", 600), file("b", 600)], "unpacks to more than"),
    ],
)
def test_archive_members_that_escape_are_refused(members: list[Member], says: str) -> None:
    with pytest.raises(BuildFailed, match=f"buildpack archive u refused: .*{_re(says)}"):
        buildpack_archive.check(members, "u", 1000)


def test_a_member_reached_through_an_outside_link_is_refused() -> None:
    # A link that resolves inside, but a member written through a chain leaving it.
    members = [link("a/up", ".."), link("a/out", "up/.."), file("a/out/x")]
    with pytest.raises(BuildFailed, match="points outside"):
        buildpack_archive.check(members, "u", 1000)


def _re(text: str) -> str:
    return text.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")


@pytest.mark.parametrize(
    ("line", "source"),
    [
        ("http://127.0.0.1:8000/bp.tgz", Remote("http://127.0.0.1:8000/bp.tgz", None, True)),
        ("https://x/bp-1.0.tar.gz?x=1", Remote("https://x/bp-1.0.tar.gz?x=1", None, True)),
        ("file:///srv/bp/a.TGZ", Remote("file:///srv/bp/a.TGZ", None, True)),
        ("https://x/bp.git#v2", Remote("https://x/bp.git", "v2")),
        ("heroku/python", Builtin("python")),
    ],
)
def test_archive_and_git_sources(line: str, source: Remote) -> None:
    assert buildpack_source.parse(line, MIRROR, ["python"]) == source


def test_archive_sources_refused() -> None:
    with pytest.raises(BuildFailed, match="an archive URL takes no #ref"):
        buildpack_source.parse("https://x/bp.tgz#v1", MIRROR, [])
    with pytest.raises(BuildFailed, match="fetched over http\\(s\\) or file only"):
        buildpack_source.parse("ssh://x/bp.tgz", MIRROR, [])
    with pytest.raises(BuildFailed, match="'heroku/nodejs' is not built into this platform: "):
        buildpack_source.parse("heroku/nodejs", MIRROR, ["python"])


def test_app_json_buildpacks() -> None:
    text = '{"name": "x", "buildpacks": [{"url": "heroku/python"}, {"url": "https://x/b"}]}'
    assert buildpack_source.app_json_urls(text) == ["heroku/python", "https://x/b"]
    assert buildpack_source.app_json_urls('{"name": "x"}') == []
    with pytest.raises(BuildFailed, match='"buildpacks" must be a list of'):
        buildpack_source.app_json_urls('{"buildpacks": ["heroku/python"]}')
    with pytest.raises(BuildFailed, match=r"app\.json: not valid JSON \(line 1, column 2"):
        buildpack_source.app_json_urls("{")
    with pytest.raises(BuildFailed, match=r"app\.json: must be a JSON object, got \[\]"):
        buildpack_source.app_json_urls("[]")
    with pytest.raises(BuildFailed, match=r"app\.json lists 11 buildpacks; at most 10"):
        buildpack_source.parse_all(["heroku/python"] * 11, MIRROR, ["python"], "app.json")


def test_cli_list_edits_follow_heroku() -> None:
    assert edited_buildpacks([], "add", "a") == ["a"]
    assert edited_buildpacks(["a"], "add", "b", 1) == ["b", "a"]
    assert edited_buildpacks(["a", "b"], "set", "c") == ["c"]
    assert edited_buildpacks(["a", "b"], "set", "c", 2) == ["a", "c"]
    assert edited_buildpacks(["a", "b"], "set", "c", 3) == ["a", "b", "c"]
    assert edited_buildpacks(["a", "b"], "remove", "a") == ["b"]
    assert edited_buildpacks(["a", "b"], "remove", None, 2) == ["a"]
    for current, action, url, index, says in [
        (["a"], "add", "a", None, "already set"),
        (["a"], "add", "b", 3, "out of range"),
        (["a"], "remove", None, 2, "out of range"),
        (["a"], "remove", "b", None, "is not set on the app"),
    ]:
        with pytest.raises(ArgumentError, match=says):
            edited_buildpacks(current, action, url, index)
