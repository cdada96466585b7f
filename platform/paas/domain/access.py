"""Who may do what to an app: Heroku Teams' four app permissions and the caller of a request.

Each permission implies the ones before it: view (read everything but config values) <
deploy (push, rollback, see config) < operate (scale, restart, stop, run) < manage (config
vars, domains, add-ons, access, destroy). An app's owner and the platform's admin hold
manage. Invariant: a caller holds one permission level per app or none; none means the app
does not exist for that caller (the API answers 404, not 403, so names do not leak).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from paas.domain.errors import InvalidParams


class Permission(enum.IntEnum):
    VIEW = 0
    DEPLOY = 1
    OPERATE = 2
    MANAGE = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    def implied(self) -> list[str]:
        """This permission's name and those it implies, lowest first (Heroku lists them)."""
        return [p.label for p in Permission if p <= self]


def parse_permission(value: object) -> Permission:
    """One permission by name (`deploy`), or the highest of a comma list (`view,deploy`)."""
    names = value if isinstance(value, list) else str(value or "").split(",")
    found = [_one(str(n).strip().lower()) for n in names if str(n).strip()]
    if not found:
        raise InvalidParams("permissions must name one of view, deploy, operate, manage")
    return max(found)


def _one(name: str) -> Permission:
    try:
        return Permission[name.upper()]
    except KeyError:
        raise InvalidParams(
            f"unknown permission {name!r}: choose view, deploy, operate or manage"
        ) from None


@dataclass(frozen=True)
class Principal:
    """Who sent a request: a user of the platform, or the operator (admin token)."""

    user_id: str | None  # None: the operator
    email: str
    admin: bool = False


OPERATOR = Principal(None, "admin", admin=True)


_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


def email(value: object) -> str:
    """A user's email as given (compared without case); checked, never guessed at."""
    text = value.strip() if isinstance(value, str) else ""
    if len(text) > 254 or not _EMAIL.fullmatch(text):
        raise InvalidParams(f"{value!r} is not an email address: give one like ada@example.com")
    return text
