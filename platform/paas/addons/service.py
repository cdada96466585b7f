"""What every backing service offers the add-on resources: its plans, and provisioning
and deprovisioning of one add-on's resource. Pure values and one Protocol; the servers
implement it.

Invariant: `provision` returns only once the resource answers at the URL it returns;
`deprovision` leaves nothing of the add-on behind (database, role, process, data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Plan:
    name: str  # "hobby", "standard"
    memory_mb: int  # PostgreSQL: its share of work_mem; Redis: maxmemory
    connections: int  # at most this many clients at once
    summary: str  # one line for `addons:info`


class Service(Protocol):
    name: str  # "postgresql", "redis"
    aliases: tuple[str, ...]  # other names a user may give: "heroku-postgresql", "postgres"
    default_attachment: str  # the config var prefix: "DATABASE" -> DATABASE_URL
    plans: dict[str, Plan]
    default_plan: str

    def provision(self, addon_id: str, plan: Plan) -> str:
        """Creates the add-on's resource (idempotent for one id) and returns its URL, which
        holds a generated secret; blocks, bounded, until the resource answers there."""
        ...

    def deprovision(self, addon_id: str) -> None:
        """Removes everything of the add-on; an id that has nothing is not an error."""
        ...

    def endpoint(self, addon_id: str) -> tuple[str, int]:
        """The address and TCP port dynos connect to, for the dyno firewall."""
        ...
