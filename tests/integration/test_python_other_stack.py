"""Another built stack's Python, offered only when the libraries of its ELF files are on the
app's stack, and the real reading of those ELF files (paas.artifacts.pythons).

Only debian-13 is built on this host, so the other stack is a stand-in made by the test:
a stacks directory where debian-13 is the real one and debian-12's rootfs holds the host's
own Debian 12 interpreter (usr/bin/python3.11, usr/lib/python3.11), real files. Its `nis`
module needs libnsl.so.2, which debian-13 lacks: the interpreter is refused while the module
is there, and used, copied into the host's store and served from, once it is gone.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from platform_harness import Platform, commit, git, wait_for

from paas.artifacts import pythons, stacks
from paas.domain import python_runtime

HOST_PYTHON = Path("/usr/bin/python3.11")
DEBIAN_13 = stacks.rootfs("debian-13")
APP = (
    "import http.server, os, platform\n"
    "class Page(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    '        body = f"Python {platform.python_version()}".encode()\n'
    "        self.send_response(200)\n"
    '        self.send_header("Content-Length", str(len(body)))\n'
    "        self.end_headers()\n"
    "        self.wfile.write(body)\n"
    'http.server.HTTPServer(("", int(os.environ["PORT"])), Page).serve_forever()\n'
)

pytestmark = [
    pytest.mark.skipif(not HOST_PYTHON.is_file(), reason="needs the host's Python 3.11"),
    pytest.mark.skipif(DEBIAN_13 is None, reason="needs the debian-13 stack built"),
]


def unmet(tree: Path, minor: str, rootfs: Path) -> dict[str, list[str]]:
    needed = pythons.needed_by(tree, minor)
    sonames = {s for file in needed.values() for s in file}
    return python_runtime.missing_libraries(needed, pythons.provided(rootfs, None, sonames))


def test_elf_needs_of_real_interpreters() -> None:
    assert DEBIAN_13 is not None
    assert "libc.so.6" in pythons.elf_needed(HOST_PYTHON)
    needed = pythons.needed_by(DEBIAN_13 / "usr", "3.13")
    assert len(needed) > 10 and "GLIBC_2.38" in needed["bin/python3.13"]["libc.so.6"]
    assert (
        "GLIBC_2.38"
        in pythons.read_elf(DEBIAN_13 / "usr/lib/x86_64-linux-gnu/libc.so.6").versions_defined
    )
    # A stack's own interpreter has every library it needs on its stack.
    assert unmet(DEBIAN_13 / "usr", "3.13", DEBIAN_13) == {}


def test_the_host_python_lacks_libnsl_on_debian_13() -> None:
    assert DEBIAN_13 is not None
    missing = unmet(Path("/usr"), "3.11", DEBIAN_13)
    assert {s for sonames in missing.values() for s in sonames} == {"libnsl.so.2"}


def test_debian_13s_python_needs_a_newer_glibc_than_the_debian_12_host() -> None:
    """The soname check alone would pass: every library is on Debian 12, older."""
    assert DEBIAN_13 is not None
    host_libc = pythons.provided(Path("/"), None, ["libc.so.6"]).get("libc.so.6", set())
    if "GLIBC_2.38" in host_libc:
        pytest.skip("the host's glibc is as new as debian-13's")
    missing = unmet(DEBIAN_13 / "usr", "3.13", Path("/"))
    assert "libc.so.6 GLIBC_2.38" in missing["bin/python3.13"]
    assert all(" " in lack for lacks in missing.values() for lack in lacks)  # versions only


def test_elf_needed_of_what_is_not_elf(tmp_path: Path) -> None:
    (tmp_path / "script").write_text("#!/bin/sh\n")
    assert pythons.elf_needed(tmp_path / "script") == []
    (tmp_path / "cut").write_bytes(HOST_PYTHON.read_bytes()[:100])
    with pytest.raises(ValueError, match="malformed ELF"):
        pythons.elf_needed(tmp_path / "cut")
    (tmp_path / "link").symlink_to(HOST_PYTHON)
    with pytest.raises(OSError):
        pythons.elf_needed(tmp_path / "link")  # never followed


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    if os.geteuid() != 0:
        pytest.skip("builds run in containers: needs root")
    assert DEBIAN_13 is not None
    platform = Platform()
    fake = platform.base / "stacks"
    (fake / "debian-13").mkdir(parents=True)
    (fake / "debian-13" / f"v{stacks.RECIPE_VERSION}").symlink_to(DEBIAN_13.parent)
    usr = fake / "debian-12" / f"v{stacks.RECIPE_VERSION}" / "rootfs" / "usr"
    (usr / "bin").mkdir(parents=True)
    (usr / "lib").mkdir()
    subprocess.run(["cp", "-a", str(HOST_PYTHON), str(usr / "bin")], check=True, timeout=60)
    subprocess.run(["cp", "-a", "/usr/lib/python3.11", str(usr / "lib")], check=True, timeout=120)
    platform.env.update(PAAS_STACKS_DIR=str(fake), PAAS_PYTHONS_DIR=str(platform.base / "py"))
    try:
        platform.start()
        yield platform
    finally:
        platform.stop()


def app_repo(platform: Platform, name: str) -> Path:
    repo = platform.base / f"{name}-repo"
    repo.mkdir()
    (repo / "requirements.txt").write_text("# the standard library only\n")
    (repo / ".python-version").write_text("3.11\n")
    (repo / "app.py").write_text(APP)
    (repo / "Procfile").write_text("web: python app.py\n")
    git(repo, "init", "-q", "-b", "main")
    commit(repo, name)
    return repo


def test_another_stacks_python_only_when_its_libraries_are_on_the_apps_stack(
    platform: Platform,
) -> None:
    platform.paas("apps:create", "other", "--no-remote")
    repo = app_repo(platform, "other")
    refused = platform.push("other", repo)
    assert refused.returncode != 0
    assert (
        "Python 3.11 of stack debian-12 not used: it needs libnsl.so.2 "
        "(lib/python3.11/lib-dynload/nis.cpython-311-x86_64-linux-gnu.so), not on this stack"
    ) in refused.stderr
    assert "move the app to stack debian-12, which has Python 3.11" in refused.stderr
    assert not (platform.base / "py").exists() or not any((platform.base / "py").iterdir())

    rootfs = stacks.rootfs("debian-12", platform.base / "stacks")
    assert rootfs is not None
    for module in (rootfs / "usr/lib/python3.11/lib-dynload").glob("nis.*.so"):
        module.unlink()
    (repo / "README").write_text("again\n")
    commit(repo, "again")
    used = platform.push("other", repo)
    assert used.returncode == 0, used.stderr
    assert "-----> Python 3.11: the interpreter of stack debian-12" in used.stderr
    entry = platform.base / "py" / f"stack-debian-12-v{stacks.RECIPE_VERSION}-3.11"
    assert (entry / "python" / "bin" / "python3.11").is_file()
    _, body = wait_for(
        lambda: (lambda got: got if got[0] == 200 else None)(platform.get("other")),
        60,
        "the app to answer",
    )
    assert body.startswith("Python 3.11.")
