from collections.abc import Iterator

import pytest
from platform_harness import Platform


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    running = Platform()
    try:
        running.start()
        yield running
    finally:
        running.stop()
