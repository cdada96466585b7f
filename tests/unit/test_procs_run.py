"""procs.run: the one way a command's failure becomes the platform's own error."""

from __future__ import annotations

import pytest

from paas.domain.errors import PaasError
from paas.host import procs


def test_a_command_that_succeeds_gives_its_output() -> None:
    assert procs.run(["printf", "ok"]) == b"ok"


def test_a_failing_command_is_a_paas_error_naming_it_and_its_first_stderr_line() -> None:
    with pytest.raises(PaasError, match=r"^sh -c .* failed: first$"):
        procs.run(["sh", "-c", "echo first >&2; echo second >&2; exit 3"])


def test_a_missing_program_or_a_timeout_is_a_paas_error_too() -> None:
    with pytest.raises(PaasError, match="no-such-program failed"):
        procs.run(["no-such-program"])
    with pytest.raises(PaasError, match=r"sleep 5 failed: .*timed out"):
        procs.run(["sleep", "5"], timeout=0.2)
