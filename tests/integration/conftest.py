from collections.abc import Iterator

import pytest
from platform_harness import Platform, running


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    with running() as platform:
        yield platform
