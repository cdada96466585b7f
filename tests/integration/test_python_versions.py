"""Python versions a stack lacks, through real `git push`es, real uv and real files: an app
on debian-13 asking for 3.11 (runtime.txt) gets a managed Python from a local mirror, the
second app asking for it gets the host store's copy with the mirror gone, and a version the
mirror lacks, a mirror the operator does not list and an archive whose sha256 is wrong are
refused, the last adding nothing to the store.

Offline here only the stacks' Pythons exist, so the mirror is made by the test: an archive
in python-build-standalone's install_only layout (python/bin/python3.11, python/lib/...)
of the host's own Debian Python 3.11, and a downloads JSON naming it by GitHub's URL with
its sha256, the mirror setting mapping that URL to file:// (the fetch runs on the host, as
the build user).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform as host
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from platform_harness import Platform, commit, git, wait_for

from paas.artifacts import stacks

HOST_PYTHON = Path("/usr/bin/python3.11")
GITHUB = "https://github.com/astral-sh/python-build-standalone/releases/download"
RELEASE = "20250101"
APP = """\
import http.server, os, platform

class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"Python {platform.python_version()}\\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.HTTPServer(("", int(os.environ["PORT"])), Page).serve_forever()
"""

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="builds run in containers: needs root"),
    pytest.mark.skipif(not HOST_PYTHON.is_file(), reason="needs the host's Python 3.11"),
    pytest.mark.skipif(
        stacks.rootfs("debian-13") is None, reason="needs the debian-13 stack built"
    ),
]


def host_version() -> str:
    found = subprocess.run(
        [str(HOST_PYTHON), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return found.stdout.strip()


def install_only_archive(target: Path) -> None:
    """python/bin/python3.11 and python/lib/python3.11 of the host's Python, as
    python-build-standalone lays them out; links out of the tree (Debian's
    sitecustomize.py -> /etc/...) and the test suite left out, as uv refuses the first."""

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = info.name.split("/")
        if "test" in parts[3:4] or "__pycache__" in parts:
            return None
        if info.issym() and (info.linkname.startswith("/") or ".." in info.linkname):
            return None
        return info

    with tarfile.open(target, "w:gz", compresslevel=1) as archive:
        archive.add(HOST_PYTHON, "python/bin/python3.11")
        for link, to in (("python3", "python3.11"), ("python", "python3")):
            info = tarfile.TarInfo(f"python/bin/{link}")
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, to, 0o777
            archive.addfile(info)
        archive.add("/usr/lib/python3.11", "python/lib/python3.11", filter=keep)


def downloads_json(url: str, version: str, sha256: str) -> str:
    major, minor, patch = version.split(".")
    name = f"cpython-{version}-linux-{host.machine()}-gnu"
    entry = {
        "name": "cpython",
        "arch": {"family": host.machine(), "variant": None},
        "os": "linux",
        "libc": "gnu",
        "major": int(major),
        "minor": int(minor),
        "patch": int(patch),
        "prerelease": "",
        "url": url,
        "sha256": sha256,
        "variant": None,
        "build": "paas-test",
    }
    return json.dumps({name: entry})


@pytest.fixture(scope="module")
def mirror() -> Iterator[Path]:
    """A directory the build user can read: the archive, downloads.json naming it, and
    bad.json naming it as 3.10 with a wrong sha256."""
    root = Path(tempfile.mkdtemp(prefix="paas-python-mirror-"))
    root.chmod(0o755)
    version = host_version()
    # Laid out as python-build-standalone's releases: the JSON names GitHub's URL, and
    # the operator's mirror (uv's --mirror) stands in for its prefix.
    archive = root / RELEASE / f"cpython-{version}-install_only.tar.gz"
    archive.parent.mkdir(mode=0o755)
    install_only_archive(archive)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    url = f"{GITHUB}/{RELEASE}/{archive.name}"
    (root / "downloads.json").write_text(downloads_json(url, version, digest))
    (root / "bad.json").write_text(downloads_json(url, "3.10.99", "0" * 64))
    for path in [*root.glob("*.json"), archive]:
        path.chmod(0o644)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def platform(mirror: Path) -> Iterator[Platform]:
    platform = Platform()
    store = platform.base / "pythons"
    platform.env.update(
        PAAS_PYTHONS_DIR=str(store),
        PAAS_PYTHON_MIRROR=f"file://{mirror}",
        PAAS_PYTHON_DOWNLOADS_JSON=f"file://{mirror}/downloads.json",
        PAAS_PYTHON_SOURCES=f"file://{mirror}/",
    )
    try:
        platform.start()
        yield platform
    finally:
        platform.stop()


def app_repo(platform: Platform, name: str, runtime: str) -> Path:
    repo = platform.base / f"{name}-repo"
    repo.mkdir()
    (repo / "requirements.txt").write_text("# the standard library only\n")
    (repo / "runtime.txt").write_text(f"{runtime}\n")
    (repo / "app.py").write_text(APP)
    (repo / "Procfile").write_text("web: python app.py\n")
    git(repo, "init", "-q", "-b", "main")
    commit(repo, name)
    return repo


def create(platform: Platform, name: str, *config: str) -> None:
    platform.paas("apps:create", name, "--no-remote")
    if config:
        platform.paas("config:set", *config, "-a", name)


def page(platform: Platform, app: str) -> str:
    _, body = wait_for(
        lambda: (lambda got: got if got[0] == 200 else None)(platform.get(app)),
        60,
        f"{app} to answer",
    )
    return body


def rejected_line(push: subprocess.CompletedProcess[str]) -> str:
    assert push.returncode != 0, push.stderr
    lines = [line for line in push.stderr.splitlines() if "Push rejected:" in line]
    assert len(lines) == 1, push.stderr
    return lines[0]


def store_names(platform: Platform) -> list[str]:
    store = platform.base / "pythons"
    return sorted(p.name for p in store.iterdir()) if store.is_dir() else []


def test_managed_python_from_the_mirror_then_from_the_host_store(
    platform: Platform, mirror: Path
) -> None:
    version = host_version()
    create(platform, "py311")
    push = platform.push("py311", app_repo(platform, "py311", "python-3.11"))
    assert push.returncode == 0, push.stderr
    fetching = rf"^remote: -----> Fetching Python 3\.11 from file://{re.escape(str(mirror))}\s*$"
    assert re.search(fetching, push.stderr, re.M), push.stderr
    assert page(platform, "py311") == f"Python {version}\n"
    # Pushed again: the environment made with the slug's own interpreter is reused.
    repo = platform.base / "py311-repo"
    (repo / "README").write_text("again\n")
    commit(repo, "again")
    again = platform.push("py311", repo)
    assert again.returncode == 0, again.stderr
    assert "Dependencies unchanged, reusing the cached environment" in again.stderr
    assert wait_for(lambda: platform.get("py311")[1] == f"Python {version}\n", 30, "v2 to answer")
    name = f"cpython-{version}-linux-{host.machine()}-gnu"
    assert store_names(platform) == [name]
    entry = platform.base / "pythons" / name
    for path in [entry, *entry.rglob("*")]:
        info = path.lstat()
        assert info.st_uid == 0, path  # root's, and read-only to builds (a link has no mode)
        assert path.is_symlink() or not info.st_mode & 0o022, path

    # The second app: the mirror is gone, the store has it.
    hidden = mirror.with_name(mirror.name + ".gone")
    mirror.rename(hidden)
    try:
        create(platform, "py311b")
        again = platform.push("py311b", app_repo(platform, "py311b", "python-3.11.4"))
    finally:
        hidden.rename(mirror)
    assert again.returncode == 0, again.stderr
    assert "Fetching Python" not in again.stderr
    assert f"Python 3.11: {name} from the host's store" in again.stderr
    assert page(platform, "py311b") == f"Python {version}\n"


def test_a_version_the_mirror_lacks_fails_naming_the_mirror_setting(platform: Platform) -> None:
    create(platform, "py312")
    push = platform.push("py312", app_repo(platform, "py312", "python-3.12"))
    assert push.returncode != 0
    assert "Python 3.12 is not on file://" in push.stderr
    assert "Python 3.12 was requested by runtime.txt, but this stack (debian-13) has: 3.13" in (
        push.stderr
    )
    assert "PAAS_PYTHON_MIRROR" in push.stderr
    assert "Python 3.12" not in " ".join(store_names(platform))


def test_a_mirror_the_operator_does_not_list_is_refused(platform: Platform) -> None:
    create(platform, "pyelsewhere", "UV_PYTHON_INSTALL_MIRROR=file:///srv/elsewhere/")
    push = platform.push("pyelsewhere", app_repo(platform, "pyelsewhere", "python-3.10"))
    line = rejected_line(push)
    assert "UV_PYTHON_INSTALL_MIRROR file:///srv/elsewhere/ is not allowed here" in line
    assert "PAAS_PYTHON_SOURCES" in line


def test_an_archive_with_a_wrong_sha256_is_refused_and_changes_nothing(
    platform: Platform, mirror: Path
) -> None:
    before = store_names(platform)
    create(platform, "pybad", f"UV_PYTHON_DOWNLOADS_JSON_URL=file://{mirror}/bad.json")
    push = platform.push("pybad", app_repo(platform, "pybad", "python-3.10"))
    line = rejected_line(push)
    assert "cannot fetch Python 3.10" in line and "Hash mismatch" in line
    assert store_names(platform) == before
