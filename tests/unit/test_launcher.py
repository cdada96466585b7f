"""The supervisor launcher's loop, with a stand-in for the supervisor: each directory is
supervised once, in a child that never comes back into the loop."""

from __future__ import annotations

import io
import os
from pathlib import Path

from paas.dynos import launcher


def test_each_directory_is_supervised_once_by_a_child_that_never_returns(
    tmp_path: Path,
) -> None:
    def supervise(directory: Path) -> int:
        (directory / f"supervised-by-{os.getpid()}").touch()
        if directory.name == "b":
            raise SystemExit(3)  # as the supervisor does on a missing spec.json
        return 0

    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    requests = io.StringIO(f"{tmp_path / 'a'}\n\n{tmp_path / 'b'}\n{tmp_path / 'c'}\n")
    launcher.serve(requests, supervise)
    # serve() returned here, in the test's own process, once: no child came back into it.
    for name in ("a", "b", "c"):
        marks = list((tmp_path / name).iterdir())
        assert len(marks) == 1
        assert marks[0].name != f"supervised-by-{os.getpid()}"
