"""Which requirements.txt the shared dependency cache takes, and its keys (pure)."""

from __future__ import annotations

import pytest

from paas.domain import requirements

HOST = [("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")]


@pytest.mark.parametrize(
    "text",
    [
        "flask\ngunicorn\n",
        "Flask==3.1.0\ngunicorn>=22,<24  # the server\n",
        "# pinned\nrequests[socks,security]~=2.32\n\n",
        "importlib-metadata; python_version < '3.10'\n",
        'uvloop>=0.19 ; sys_platform == "linux" and platform_machine != "arm64"\n',
        "zope.interface===7.0\n",
    ],
)
def test_index_packages_are_shareable(text: str) -> None:
    assert requirements.shareable(text.encode())


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "-r other.txt\nflask\n",
        "--index-url https://example.invalid/simple\nflask\n",
        "--extra-index-url https://example.invalid/simple\nflask\n",
        "-e .\n",
        "./vendor/pkg.whl\n",
        "/srv/wheels/pkg.whl\n",
        "pkg @ https://example.invalid/pkg-1.0.tar.gz\n",
        "pkg @ file:///srv/pkg\n",
        "git+https://example.invalid/pkg.git\n",
        "flask==3.0 \\\n    --hash=sha256:" + "0" * 64 + "\n",
        "flask --no-binary flask\n",
    ],
)
def test_options_paths_and_urls_are_not_shareable(text: str) -> None:
    assert not requirements.shareable(text.encode())


def test_oversized_or_undecodable_files_are_not_shareable() -> None:
    assert not requirements.shareable(b"flask\n" * (requirements.MAX_BYTES // 6 + 1))
    assert not requirements.shareable(b"fl\xffask\n")


def test_an_index_of_its_own_is_any_index_config_var() -> None:
    assert requirements.own_index({"PIP_EXTRA_INDEX_URL": "https://example.invalid/simple"})
    assert requirements.own_index({"UV_INDEX": "x"})
    assert not requirements.own_index({"GREETING": "hi", "SECRET_KEY": "k"})


def test_the_key_changes_with_everything_that_decides_an_entry() -> None:
    base = requirements.key(b"flask\n", "debian-13", "/stacks/v1", "1\n", HOST)
    assert base == requirements.key(b"flask\n", "debian-13", "/stacks/v1", "1", HOST)
    others = {
        requirements.key(b"flask\n\n", "debian-13", "/stacks/v1", "1", HOST),
        requirements.key(b"flask\n", "debian-12", "/stacks/v1", "1", HOST),
        requirements.key(b"flask\n", "debian-13", "/stacks/v2", "1", HOST),
        requirements.key(b"flask\n", "debian-13", "/stacks/v1", "2", HOST),
        requirements.key(b"flask\n", "debian-13", "/stacks/v1", "1", []),
        requirements.key(b"flask\n", "debian-13", "/stacks/v1", "1", [("UV_INDEX", "x")]),
    }
    assert base not in others and len(others) == 6
