"""Where a push's output goes: the git client's stderr, line by line, as it happens."""

from __future__ import annotations

from typing import Protocol


class Output(Protocol):
    def write(self, text: str, /) -> int: ...
    def flush(self) -> None: ...
