"""python_runtime: the Python an app asks for, the mirrors it may use, and whether another
stack's interpreter has the libraries it needs (pure)."""

from __future__ import annotations

import pytest

from paas.domain import python_runtime, settings
from paas.domain.errors import BuildFailed, InvalidParams
from paas.domain.python_runtime import Sources

ALLOWED = ("file:///srv/python/", "https://mirror.example/pbs/")
OPERATOR = Sources("https://operator.example/pbs", "")


@pytest.mark.parametrize(
    ("files", "minor"),
    [
        ({}, None),
        ({"runtime.txt": b"python-3.11\n"}, "3.11"),
        ({"runtime.txt": b"python-3.11.4"}, "3.11"),
        ({"runtime.txt": b"# pinned\n\n  python-3.12.1  \n"}, "3.12"),
        ({".python-version": b"3.10\n"}, "3.10"),
        ({".python-version": b"3.10.2\n", "runtime.txt": b"python-3.12\n"}, "3.10"),
        ({".python-version": None, "runtime.txt": b"python-3.9\n"}, "3.9"),
        # What the buildpack must explain is left to it.
        ({"runtime.txt": b"3.11\n"}, None),
        ({".python-version": b"latest\n"}, None),
        ({".python-version": b"\n", "runtime.txt": b"python-3.12\n"}, None),
        ({"runtime.txt": b"python-2.7.18\n"}, None),
    ],
)
def test_requested(files: dict[str, bytes | None], minor: str | None) -> None:
    assert python_runtime.requested(files) == minor


@pytest.mark.parametrize(
    ("config", "chosen"),
    [
        ({}, OPERATOR),
        (
            {"UV_PYTHON_INSTALL_MIRROR": "file:///srv/python/2025"},
            Sources("file:///srv/python/2025", ""),
        ),
        (
            {"UV_PYTHON_DOWNLOADS_JSON_URL": "https://mirror.example/pbs/d.json"},
            Sources(OPERATOR.mirror, "https://mirror.example/pbs/d.json"),
        ),
        ({"UV_PYTHON_INSTALL_MIRROR": "  "}, OPERATOR),
    ],
)
def test_sources_take_the_apps_own_where_allowed(config: dict[str, str], chosen: Sources) -> None:
    assert python_runtime.sources(config, OPERATOR, ALLOWED) == chosen


@pytest.mark.parametrize(
    ("url", "allowed", "message"),
    [
        (
            "file:///etc/",
            ALLOWED,
            r"^UV_PYTHON_INSTALL_MIRROR file:///etc/ is not allowed here: it must start with "
            r"one of file:///srv/python/, https://mirror.example/pbs/ \(the operator sets "
            r"PAAS_PYTHON_SOURCES\)$",
        ),
        (
            "file:///srv/python/../../etc",
            ALLOWED,
            r"^UV_PYTHON_INSTALL_MIRROR file:///srv/python/../../etc: \. and \.\. are not",
        ),
        ("file:///srv/python/%2e%2e/x", ALLOWED, r"\. and \.\. are not allowed"),
        ("file:///srv/python/a b", ALLOWED, r"blanks and control characters"),
        ("https://mirror.example/pbs/", (), r"takes no Python mirror from an app's config"),
    ],
)
def test_an_apps_mirror_outside_the_operators_list_is_refused(
    url: str, allowed: tuple[str, ...], message: str
) -> None:
    with pytest.raises(BuildFailed, match=message):
        python_runtime.sources({"UV_PYTHON_INSTALL_MIRROR": url}, OPERATOR, allowed)


def test_parse_sources() -> None:
    assert python_runtime.parse_sources(" file:///srv/p/, https://m.example/ ,") == (
        "file:///srv/p/",
        "https://m.example/",
    )
    with pytest.raises(ValueError, match="is not a URL prefix"):
        python_runtime.parse_sources("/srv/p/")
    with pytest.raises(ValueError, match="may not contain"):
        python_runtime.parse_sources("file:///srv/../p/")


def test_settings_read_the_python_settings() -> None:
    env = {
        "PAAS_HOME": "/tmp/x",
        "PAAS_PYTHON_MIRROR": "file:///srv/pbs",
        "PAAS_PYTHON_SOURCES": "file:///srv/",
        "PAAS_PYTHONS_DIR": "/srv/pythons",
    }
    read = settings.from_env(env)
    assert read.python_mirror == "file:///srv/pbs" and read.python_downloads_json == ""
    assert read.python_sources == ("file:///srv/",)
    assert str(read.pythons_dir) == "/srv/pythons"
    with pytest.raises(InvalidParams, match=r"^PAAS_PYTHON_MIRROR='/srv/pbs' is not a URL"):
        settings.from_env({"PAAS_HOME": "/tmp/x", "PAAS_PYTHON_MIRROR": "/srv/pbs"})
    with pytest.raises(InvalidParams, match=r"^PAAS_PYTHON_SOURCES: '/srv/' is not a URL"):
        settings.from_env({"PAAS_HOME": "/tmp/x", "PAAS_PYTHON_SOURCES": "/srv/"})


@pytest.mark.parametrize(
    ("names", "minor", "chosen"),
    [
        ([], "3.11", None),
        (["cpython-3.11.2-linux-x86_64-gnu"], "3.11", "cpython-3.11.2-linux-x86_64-gnu"),
        (
            [
                "cpython-3.11.9-linux-x86_64-gnu",
                "cpython-3.11.10-linux-x86_64-gnu",
                "cpython-3.12.1-linux-x86_64-gnu",
                "cpython-3.11.11-linux-aarch64-gnu",
                "stack-debian-12-v4-3.11",
            ],
            "3.11",
            "cpython-3.11.10-linux-x86_64-gnu",
        ),
        (["cpython-3.1.5-linux-x86_64-gnu"], "3.11", None),
        (["cpython-3.11.2-linux-x86_64-musl"], "3.11", None),
    ],
)
def test_newest_managed(names: list[str], minor: str, chosen: str | None) -> None:
    assert python_runtime.newest_managed(names, minor, "x86_64") == chosen


LIBC = {"libc.so.6": {"GLIBC_2.2.5", "GLIBC_2.34", "GLIBC_2.36"}}  # bookworm's, in part


@pytest.mark.parametrize(
    ("needed", "provided", "missing"),
    [
        ({"bin/python3.11": {"libc.so.6": {"GLIBC_2.34"}}}, LIBC, {}),
        ({"bin/python3.11": {"libc.so.6": set()}}, LIBC, {}),
        # The loader is PT_INTERP's, found by path, not a library the stack must list.
        ({"bin/python3.11": {"ld-linux-x86-64.so.2": {"GLIBC_2.3"}}}, {}, {}),
        # Built against a newer glibc: the soname is there, the version is not.
        (
            {"bin/python3.13": {"libc.so.6": {"GLIBC_2.34", "GLIBC_2.38"}}},
            LIBC,
            {"bin/python3.13": ["libc.so.6 GLIBC_2.38"]},
        ),
        (
            {
                "bin/python3.11": {"libc.so.6": {"GLIBC_2.2.5"}},
                "lib/python3.11/lib-dynload/nis.so": {"libnsl.so.2": set(), "libc.so.6": set()},
                "lib/python3.11/lib-dynload/_ssl.so": {
                    "libssl.so.3": {"OPENSSL_3.0.0"},
                    "libcrypto.so.3": set(),
                },
            },
            {**LIBC, "libssl.so.3": {"OPENSSL_3.0.0"}},
            {
                "lib/python3.11/lib-dynload/_ssl.so": ["libcrypto.so.3"],
                "lib/python3.11/lib-dynload/nis.so": ["libnsl.so.2"],
            },
        ),
        # A newer soname is another library: libffi.so.7 is not libffi.so.8.
        (
            {"lib-dynload/_ctypes.so": {"libffi.so.7": set()}},
            {"libffi.so.8": set()},
            {"lib-dynload/_ctypes.so": ["libffi.so.7"]},
        ),
        ({}, {}, {}),
    ],
)
def test_missing_libraries(
    needed: dict[str, dict[str, set[str]]],
    provided: dict[str, set[str]],
    missing: dict[str, list[str]],
) -> None:
    assert python_runtime.missing_libraries(needed, provided) == missing


def test_describe_missing_names_each_soname_once() -> None:
    missing = {"a/x.so": ["libnsl.so.2"], "a/y.so": ["libnsl.so.2", "libdb-5.3.so"]}
    assert python_runtime.describe_missing(missing) == (
        "libdb-5.3.so (a/y.so), libnsl.so.2 (a/x.so, a/y.so)"
    )
