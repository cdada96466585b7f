"""buildpack_source: which BUILDPACK_URL / .buildpacks lines name a buildpack."""

from __future__ import annotations

import pytest

from paas.domain import buildpack_source, settings
from paas.domain.buildpack_source import Builtin, Remote
from paas.domain.errors import BuildFailed, InvalidParams

DEFAULT = buildpack_source.DEFAULT_PREFIXES
MIRROR = (*DEFAULT, "file:///srv/buildpacks/", "http://127.0.0.1:8000/")
BUILTINS = ["python"]


@pytest.mark.parametrize(
    ("line", "prefixes", "source"),
    [
        ("heroku/python", DEFAULT, Builtin("python")),
        ("https://github.com/x/bp.git", DEFAULT, Remote("https://github.com/x/bp.git", None)),
        (
            "https://github.com/x/bp.git#v1.2",
            DEFAULT,
            Remote("https://github.com/x/bp.git", "v1.2"),
        ),
        ("git://example.com/bp", DEFAULT, Remote("git://example.com/bp", None)),
        ("ssh://git@example.com/bp.git", DEFAULT, Remote("ssh://git@example.com/bp.git", None)),
        ("file:///srv/buildpacks/go.git", MIRROR, Remote("file:///srv/buildpacks/go.git", None)),
        ("http://127.0.0.1:8000/bp.git", MIRROR, Remote("http://127.0.0.1:8000/bp.git", None)),
    ],
)
def test_allowed_sources(line: str, prefixes: tuple[str, ...], source: object) -> None:
    assert buildpack_source.parse(line, prefixes, BUILTINS) == source


@pytest.mark.parametrize(
    ("line", "prefixes", "says"),
    [
        ("/", DEFAULT, "a local path is never a buildpack source"),
        ("/root/secret-dir", MIRROR, "a local path is never a buildpack source"),
        ("..", DEFAULT, "a local path is never a buildpack source"),
        ("python", DEFAULT, "a local path is never a buildpack source"),
        ("heroku/..", DEFAULT, "is not a built-in buildpack: choose one of heroku/python"),
        ("heroku/../../etc", DEFAULT, "is not a built-in buildpack"),
        ("heroku/nope", DEFAULT, "is not a built-in buildpack"),
        ("heroku/python", ("https://",), "built-in buildpacks are not allowed here"),
        ("git@internal:x.git", DEFAULT, "a local path is never a buildpack source"),
        ("file:///var/lib/paas/repos/other.git", DEFAULT, "is not allowed here"),
        ("file:///srv/buildpacks/../../var/lib/x.git", MIRROR, ". and .. are not allowed"),
        ("file:///srv/buildpacks/%2e%2e/x.git", MIRROR, ". and .. are not allowed"),
        ("file:///srv/buildpacks/./x", MIRROR, ". and .. are not allowed"),
        ("http://127.0.0.1:9000/bp.git", MIRROR, "is not allowed here"),
        ("http://127.0.0.1:8000.evil/bp.git", MIRROR, "is not allowed here"),
        ("ext::sh -c id", DEFAULT, "blanks and control characters"),
        ("https://x/bp.git#-x", DEFAULT, "is not a branch or tag name"),
        ("https://x/bp.git#a..b", DEFAULT, "is not a branch or tag name"),
        ("https://x/b\np", DEFAULT, "blanks and control characters"),
    ],
)
def test_refused_sources_say_why(line: str, prefixes: tuple[str, ...], says: str) -> None:
    with pytest.raises(BuildFailed, match=says.replace(".", r"\.")):
        buildpack_source.parse(line, prefixes, BUILTINS)


def test_a_list_skips_comments_and_is_bounded() -> None:
    text = "# mine\nheroku/python\n\nhttps://x/bp.git\n"
    assert buildpack_source.parse_list(text, DEFAULT, BUILTINS) == [
        Builtin("python"),
        Remote("https://x/bp.git", None),
    ]
    with pytest.raises(BuildFailed, match="at most 10"):
        buildpack_source.parse_list("heroku/python\n" * 11, DEFAULT, BUILTINS)


def test_prefixes_and_the_protocols_they_allow() -> None:
    prefixes = buildpack_source.parse_prefixes(" heroku/, https://, file:///srv/bp/ ")
    assert prefixes == ("heroku/", "https://", "file:///srv/bp/")
    assert buildpack_source.protocols(prefixes) == "file:https"
    assert buildpack_source.protocols(DEFAULT) == "git:https:ssh"
    for bad in ("/srv/buildpacks/", "ext::", "file:///srv/../"):
        with pytest.raises(ValueError):
            buildpack_source.parse_prefixes(bad)


def test_the_setting_is_parsed_once_and_a_bad_one_named() -> None:
    env = {"PAAS_HOME": "/tmp/x", "PAAS_BUILDPACK_SOURCES": "heroku/,file:///srv/bp/"}
    assert settings.from_env(env).buildpack_sources == ("heroku/", "file:///srv/bp/")
    assert settings.from_env({"PAAS_HOME": "/tmp/x"}).buildpack_sources == DEFAULT
    with pytest.raises(InvalidParams, match=r"^PAAS_BUILDPACK_SOURCES: '/srv/bp/' is not"):
        settings.from_env({"PAAS_HOME": "/tmp/x", "PAAS_BUILDPACK_SOURCES": "/srv/bp/"})
