"""The platform log: what an operator must read, one line each (a cleanup that failed),
and the traceback of a failure nothing else expected (the top of a thread, a hook).

It is the standard error of the platform's processes (the server's children, so the
server's own log), except in the pre-receive hook, whose standard error reaches the
pusher: there it is the descriptor the API passed as PAAS_PLATFORM_LOG_FD, and a hook run
by hand, without one, says nothing here. Invariant: writing to it never raises.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback

HOOK_FD = "PAAS_PLATFORM_LOG_FD"


def write(text: str) -> None:
    fd = os.environ.get(HOOK_FD)
    with contextlib.suppress(ValueError, OSError):  # the log is gone: nowhere left to say it
        if fd is None:
            sys.stderr.write(text)
            sys.stderr.flush()
        else:
            os.write(int(fd), text.encode(errors="replace"))


def line(text: str) -> None:
    """One line (a multi-line message is folded onto it)."""
    write(" / ".join(text.strip().splitlines()) + "\n")


def exception(headline: str) -> None:
    """`headline` then the traceback of the exception being handled."""
    write(f"{headline.rstrip()}\n{traceback.format_exc()}")
