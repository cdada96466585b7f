"""pushed_tree: files of a pushed tree are read as regular files inside it, or refused."""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from paas.domain.errors import BuildFailed
from paas.push import pushed_tree


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    (root / "Procfile").write_text("web: serve\n")
    (root / "conf").mkdir()
    (root / "conf" / "x").write_text("x")
    (tmp_path / "secret").write_text("root:secret-hash:0\n")
    return root


def refusal(root: Path, name: str, limit: int = 1024) -> str:
    with pytest.raises(BuildFailed) as caught:
        pushed_tree.read_bytes(root, name, limit)
    assert "secret-hash" not in caught.value.message
    return caught.value.message


def test_reads_regular_files_and_misses(tree: Path) -> None:
    assert pushed_tree.read_bytes(tree, "Procfile", 1024) == b"web: serve\n"
    assert pushed_tree.read_bytes(tree, "conf/x", 1024) == b"x"
    assert pushed_tree.read_bytes(tree, "absent", 1024) is None
    assert pushed_tree.read_bytes(tree, "nodir/x", 1024) is None
    assert pushed_tree.read_bytes(tree.parent / "no-tree", "Procfile", 1024) is None


def test_links_are_never_followed(tree: Path) -> None:
    (tree / "link").symlink_to(tree.parent / "secret")
    (tree / "inner").symlink_to("Procfile")  # even inside the tree
    (tree / "dirlink").symlink_to(tree.parent)
    assert refusal(tree, "link") == "link: is a symbolic link; commit it as a regular file"
    assert refusal(tree, "inner") == "inner: is a symbolic link; commit it as a regular file"
    assert "not a directory of the app" in refusal(tree, "dirlink/secret")


@pytest.mark.parametrize("name", ["../secret", "/etc/passwd", "conf/../Procfile", "./Procfile"])
def test_paths_out_of_or_around_the_tree_are_refused(tree: Path, name: str) -> None:
    assert "not a path inside the app" in refusal(tree, name)


def test_special_files_are_refused_without_blocking(tree: Path) -> None:
    os.mkfifo(tree / "fifo")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tree / "sock"))
        done = threading.Event()

        def read_fifo() -> None:
            refusal(tree, "fifo")
            done.set()

        reader = threading.Thread(target=read_fifo, daemon=True)
        reader.start()
        assert done.wait(5), "reading a FIFO blocked"
        assert refusal(tree, "fifo") == "fifo: is a named pipe; commit it as a regular file"
        assert refusal(tree, "sock") == "sock: is a socket; commit it as a regular file"
    assert refusal(tree, "conf") == "conf: is a directory; commit it as a regular file"


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_devices_are_refused_and_never_opened(tree: Path) -> None:
    os.mknod(tree / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    assert refusal(tree, "null") == "null: is a device; commit it as a regular file"


def test_files_over_the_limit_are_refused(tree: Path) -> None:
    (tree / "big").write_bytes(b"x" * 2049)
    assert pushed_tree.read_bytes(tree, "big", 2049) == b"x" * 2049
    assert refusal(tree, "big", 2048) == "big: is larger than 2 KiB; keep it short"
