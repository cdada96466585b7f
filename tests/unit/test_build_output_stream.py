"""A build's live output file (paas.state.build_output): what the hook writes, what a
follower of its output_stream_url reads."""

from __future__ import annotations

import threading
from pathlib import Path

from paas.state import build_output


def test_a_follower_reads_what_comes_while_the_build_runs(tmp_path: Path) -> None:
    writer = build_output.Writer(tmp_path, "b1")
    writer.write("-----> one\n")
    running = threading.Event()
    running.set()
    chunks = build_output.follow(tmp_path, "b1", running.is_set, lambda: "kept", 30)
    assert next(chunks) == b"-----> one\n"  # before the build wrote anything more
    writer.write("-----> two\n")
    running.clear()  # the build ended: the rest is read, then the stream ends
    assert b"".join(chunks) == b"-----> two\n"
    writer.close()
    assert not build_output.path(tmp_path, "b1").exists()


def test_without_the_file_the_record_is_the_output(tmp_path: Path) -> None:
    chunks = build_output.follow(tmp_path, "gone", lambda: False, lambda: "whole output\n", 30)
    assert b"".join(chunks) == b"whole output\n"


def test_the_file_stays_bounded(tmp_path: Path) -> None:
    writer = build_output.Writer(tmp_path, "big")
    line = "x" * 1023 + "\n"
    for _ in range(build_output.MAX_BYTES // len(line) + 10):
        writer.write(line)
    size = build_output.path(tmp_path, "big").stat().st_size
    assert size <= build_output.MAX_BYTES + len(build_output.CUT)
    assert build_output.path(tmp_path, "big").read_text().endswith(build_output.CUT)
    writer.close()
