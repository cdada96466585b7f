"""What the builder keeps of its output and reads from bin/release (pure parts)."""

from __future__ import annotations

import io

import pytest

from paas.domain import buildpack_release
from paas.domain.errors import BuildFailed
from paas.push.hook import Tee


def test_the_build_record_keeps_a_bounded_tail() -> None:
    out = io.StringIO()
    tee = Tee(out, kept=10)
    for part in ("0123456789", "abc", "x" * 25, "END"):
        tee.write(part)
    assert tee.text() == "x" * 7 + "END"
    assert len(out.getvalue()) == 41  # the pusher still sees everything


def test_release_types_pass_the_procfile_check() -> None:
    yaml = "---\ndefault_process_types:\n  web: gunicorn app\n  worker: 'python w.py'\n"
    types = buildpack_release.parse(yaml).default_process_types
    assert types == {"web": "gunicorn app", "worker": "python w.py"}


@pytest.mark.parametrize("name", ["../evil", "a/b", "two words", "x" * 64, "wéb"])
def test_bad_release_types_fail_the_build(name: str) -> None:
    yaml = f"default_process_types:\n  {name}: sleep 1\n"
    with pytest.raises(BuildFailed, match="bin/release of the mine buildpack declares an invalid"):
        buildpack_release.parse(yaml, "mine")
