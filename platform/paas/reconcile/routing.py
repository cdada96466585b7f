"""What the router reports back to the control plane: applied.json in its run directory.

The router writes it once HAProxy serves a route generation: the generation, and the apps
it left out of that generation's table with the reason (a name or hostname it refused).
Read-only here, and forgiving: a missing or unreadable file is generation 0, nothing left
out (the router has not applied anything yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from paas.domain.settings import Settings
from paas.host.jsonfile import read_json
from paas_router import layout


@dataclass(frozen=True)
class Applied:
    generation: int = 0
    rejected: dict[str, str] = field(default_factory=dict)  # app -> why it is not routed


def applied_path(settings: Settings) -> Path:
    return settings.router_dir / layout.APPLIED_FILE


def applied(settings: Settings) -> Applied:
    data = read_json(applied_path(settings)) or {}
    generation = data.get("generation", 0)
    rejected: dict[str, str] = {}
    entries = data.get("rejected")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            app, reason = entry.get("app"), entry.get("reason")
            if isinstance(app, str) and isinstance(reason, str):
                rejected[app] = reason
    return Applied(generation if isinstance(generation, int) else 0, rejected)


def rejection(settings: Settings, app: str) -> str | None:
    """Why the router does not route ``app`` right now, or None when it does."""
    reason = applied(settings).rejected.get(app)
    return None if reason is None else f"the router does not route {app}: {reason}"
