"""The fake API the CLI tests talk to answers every case of the shared contract
(tests/contract/api_cases.py) as the real API does (tests/api runs the same cases)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import api_cases
import pytest
from cli_fake_api import TOKEN, FakeApi, build_app
from flask import Flask
from flask.testing import FlaskClient


@dataclass
class FakeTarget:
    """The api_cases.Target of the fake."""

    fake: FakeApi
    app: Flask
    token: str = TOKEN

    @property
    def client(self) -> FlaskClient:
        return self.app.test_client()

    def release(self, app: str, process_types: Mapping[str, str], status: str) -> None:
        assert app in self.fake.apps
        self.fake.add_release(dict(process_types), status)


@pytest.fixture
def fake_target() -> FakeTarget:
    fake = FakeApi(url="")
    return FakeTarget(fake, build_app(fake))


@pytest.mark.parametrize("case", api_cases.CASES, ids=api_cases.CASE_IDS)
def test_the_fake_api_answers_the_case_as_the_real_one(
    fake_target: FakeTarget, case: api_cases.Case
) -> None:
    api_cases.run(fake_target, case)
