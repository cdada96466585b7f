"""The real API answers every case of the shared contract (tests/contract/api_cases.py),
the same cases the CLI tests' fake API must answer alike."""

from __future__ import annotations

import api_cases
import pytest
from real_api import RealApi


@pytest.mark.parametrize("case", api_cases.CASES, ids=api_cases.CASE_IDS)
def test_the_real_api_answers_the_case(real_api: RealApi, case: api_cases.Case) -> None:
    api_cases.run(real_api, case)
