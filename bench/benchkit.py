"""What the scale and router benchmarks share beyond the integration harness: a platform
that is stopped whatever ends the run, the sample app deployed on it at web=1, and reads
of what the agent and the router wrote under PAAS_HOME.

Invariant: every platform `running_platform` starts is stopped through the harness (by
pid and `paas server --stop`) on a normal end, an exception, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from deploy import push
from platform_harness import Platform, wait_for

from paas.host.jsonfile import read_json


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # Unwind like Ctrl-C does, so the `finally` below stops the platform.
    raise SystemExit(128 + signum)


@contextmanager
def running_platform(**settings: str) -> Iterator[Platform]:
    """A started platform, stopped on the way out however the block ends."""
    platform = Platform(**settings)
    previous_term = signal.signal(signal.SIGTERM, _terminate)
    try:
        platform.start()
        yield platform
    finally:
        # A second Ctrl-C must not cut the cleanup short. Ignored signals stay ignored
        # across exec, so `paas server --stop` finishes too.
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            platform.stop()
        finally:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous_term)


def deploy_sample(platform: Platform, app: str) -> None:
    """Create `app`, push examples/flask-hello to it, and wait until it serves (web=1)."""
    platform.paas("apps:create", app, "--no-remote")
    push(platform, app, platform.new_repo(f"{app}-repo"))
    wait_for(lambda: platform.get_json(app), 120, f"{app} to serve through the router")


def routed_servers(platform: Platform, app: str) -> list[dict[str, Any]]:
    """The servers routes.json (what the agent publishes to the router) lists for `app`."""
    apps = (read_json(platform.home / "router" / "routes.json") or {}).get("apps")
    for entry in apps if isinstance(apps, list) else []:
        if entry.get("app") == app:
            return list(entry.get("servers", []))
    return []


def routes_applied(platform: Platform) -> bool:
    """True once the router says HAProxy serves the generation routes.json holds."""
    published = read_json(platform.home / "router" / "routes.json") or {}
    applied = read_json(platform.home / "router" / "applied.json") or {}
    return bool(published) and applied.get("generation") == published.get("generation")


def setting(platform: Platform, app: str) -> str:
    """One line on what ran the figures: how dynos run (container or process) and the CPUs."""
    specs = [
        read_json(directory / "spec.json") or {}
        for directory in (platform.home / "dynos").iterdir()
    ]
    kinds = sorted(
        {
            "containers" if spec.get("container") else "plain processes"
            for spec in specs
            if spec.get("app") == app
        }
    )
    return f"dynos run as {' and '.join(kinds) or 'nothing yet'}; {os.cpu_count()} CPUs"
