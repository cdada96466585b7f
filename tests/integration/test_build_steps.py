"""Buildpack steps run by the builder with real processes: silent hangs are stopped."""

import io
import time
from pathlib import Path

import pytest

from paas.domain.errors import BuildFailed
from paas.domain.settings import Settings
from paas.push.builder import Builder, BuildRequest


def test_a_silent_hung_step_is_stopped_at_its_timeout(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    builder = Builder(Settings(home=tmp_path / "home"), None, io.StringIO())
    request = BuildRequest("demo", "id", "0" * 40, {}, tmp_path, {})
    started = time.monotonic()
    with pytest.raises(BuildFailed, match="took longer than 1s and was stopped"):
        builder.run_step(["sleep", "60"], request, tmp_path, timeout=1.0)
    assert time.monotonic() - started < 10


def test_step_output_and_exit_status_come_back(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    out = io.StringIO()
    builder = Builder(Settings(home=tmp_path / "home"), None, out)
    request = BuildRequest("demo", "id", "0" * 40, {}, tmp_path, {})
    code, text = builder.run_step(["sh", "-c", "echo hi; exit 3"], request, tmp_path, 10.0)
    assert (code, text, out.getvalue()) == (3, "hi\n", "hi\n")
