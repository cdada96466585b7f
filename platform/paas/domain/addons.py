"""Add-on resources and attachments as values, and the pure rules about them: how an
add-on is named, which service and plan a user's words mean, which attachment name (the
config var prefix) an attachment gets, and which config a release gets from them.

Invariant: an attachment NAME puts exactly one config var in its app, NAME_URL, whose
value is its add-on's URL; no two attachments of one app share a name. Pure: nothing here
touches a database, a process or the network.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from paas.domain.errors import Conflict, InvalidParams

ADDON_STATES = ("provisioned", "deprovisioning")
# Heroku's: a second database of an app is HEROKU_POSTGRESQL_<COLOR>, not DATABASE.
COLORS = (
    "AMBER", "BLACK", "BLUE", "BRONZE", "COBALT", "CORAL", "CRIMSON", "CYAN", "GOLD", "GRAY",
    "GREEN", "IVORY", "JADE", "LIME", "MAROON", "NAVY", "OLIVE", "ONYX", "ORANGE", "PINK",
    "PURPLE", "RED", "ROSE", "SILVER", "TEAL", "WHITE", "YELLOW",
)  # fmt: skip
ADJECTIVES = (
    "angular", "clear", "cubic", "curved", "deep", "flat", "graceful", "opaque", "regular",
    "round", "shallow", "shaped", "solid", "spherical", "symmetrical", "transparent",
)  # fmt: skip
ADDON_NAME = re.compile(r"[a-z][a-z0-9-]{1,62}")
ATTACHMENT_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,59}")


@dataclass(frozen=True)
class Addon:
    id: str
    name: str  # postgresql-shaped-12345
    service: str  # postgresql, redis
    plan: str  # hobby, standard
    app_id: str  # the owning app
    state: str  # one of ADDON_STATES
    url: str  # what its attachments put in NAME_URL (holds the generated secret)
    address: str  # where dynos connect (the dyno firewall opens it)
    port: int
    created_at: str


@dataclass(frozen=True)
class Attachment:
    id: str
    addon_id: str
    app_id: str
    name: str  # the config var prefix: DATABASE -> DATABASE_URL
    created_at: str

    @property
    def var(self) -> str:
        return var_name(self.name)


def var_name(attachment: str) -> str:
    return f"{attachment}_URL"


def generated_name(service: str, choose: Callable[[int], int] = secrets.randbelow) -> str:
    """Heroku's shape: SERVICE-ADJECTIVE-NNNNN (`postgresql-shaped-12345`)."""
    return f"{service}-{ADJECTIVES[choose(len(ADJECTIVES))]}-{choose(90000) + 10000}"


def addon_name(name: object) -> str:
    if not isinstance(name, str) or not ADDON_NAME.fullmatch(name) or name.endswith("-"):
        raise InvalidParams(
            f"invalid add-on name {name!r}: use 2-63 lowercase letters, digits and dashes, "
            "starting with a letter (e.g. --name orders-db)"
        )
    return name


def attachment_name(name: object) -> str:
    """A config var prefix, upper case (`--as analytics_db` becomes ANALYTICS_DB)."""
    text = name.upper().replace("-", "_") if isinstance(name, str) else name
    if not isinstance(text, str) or not ATTACHMENT_NAME.fullmatch(text) or text.endswith("_URL"):
        raise InvalidParams(
            f"invalid attachment name {name!r}: use letters, digits and underscores, starting "
            "with a letter and not ending in _URL (e.g. --as ANALYTICS_DB)"
        )
    return text


def service_and_plan(
    words: str, plan: str | None, aliases: Mapping[str, str]
) -> tuple[str, str | None]:
    """`postgresql`, `heroku-postgresql:hobby` or `redis` with `--plan P` to (service,
    plan or None for the service's default). `aliases` maps every accepted name to its
    service's own."""
    given, _, named_plan = words.partition(":")
    service = aliases.get(given.strip().lower())
    if service is None:
        known = ", ".join(sorted(set(aliases.values())))
        raise InvalidParams(f"unknown add-on service {given!r}: choose one of {known}")
    if named_plan and plan and named_plan != plan:
        raise InvalidParams(
            f"two plans given ({named_plan!r} in {words!r} and --plan {plan!r}): give one"
        )
    return service, (named_plan or plan or None)


def choose_attachment(
    wanted: str | None,
    default: str,
    fallback_prefix: str,
    taken: Iterable[str],
    user_vars: Iterable[str],
) -> str:
    """The name of a new attachment on an app. An explicit `--as` name must be free (not an
    attachment of the app, nor one of its own config vars); without one, the service's
    default (DATABASE) when free, else Heroku's FALLBACK_<COLOR> (HEROKU_POSTGRESQL_TEAL)."""
    taken, user_vars = set(taken), set(user_vars)

    def free(name: str) -> bool:
        return name not in taken and var_name(name) not in user_vars

    if wanted is not None:
        name = attachment_name(wanted)
        if name in taken:
            raise Conflict(
                f"the app already has an attachment named {name} ({var_name(name)}): choose "
                "another with --as NAME, or detach that one first"
            )
        if var_name(name) in user_vars:
            raise Conflict(
                f"the app has its own config var {var_name(name)}: unset it (paas config:unset "
                f"{var_name(name)}) or attach with --as ANOTHER_NAME"
            )
        return name
    if free(default):
        return default
    for color in COLORS:
        if free(f"{fallback_prefix}_{color}"):
            return f"{fallback_prefix}_{color}"
    raise Conflict(f"no free attachment name left for {default}: give one with --as NAME")


def addon_vars(attachments: Iterable[Attachment], urls: Mapping[str, str]) -> dict[str, str]:
    """The config vars attachments put in their app: NAME_URL -> the add-on's URL
    (`urls` by add-on id)."""
    return {a.var: urls[a.addon_id] for a in attachments}


def rollback_config(
    target: Mapping[str, str], target_addon_keys: Iterable[str], current: Mapping[str, str]
) -> dict[str, str]:
    """A rollback's config: the old release's own vars (what its add-ons set then left
    out) with the add-on vars of now, which win: a rollback never brings back a detached
    add-on's URL nor loses a current one."""
    old_addon_keys = set(target_addon_keys)
    own = {k: v for k, v in target.items() if k not in old_addon_keys}
    return {**own, **current}


def attach_description(name: str, addon: str) -> str:
    return f"Attach {name} (@ref:{addon})"


def detach_description(name: str, addon: str) -> str:
    return f"Detach {name} (@ref:{addon})"
