"""Pure checks of user input: app names, config keys and values, process types, dyno
names, quantities, release versions, hostnames and custom domains.

One check per kind of name, used by every component that takes that kind of name in (the
API, the store, the agent); the rules the router also applies (app names, hostnames) are
``paas_router.names`` itself, so the API never accepts what the router refuses. Every
pattern is matched with ``fullmatch`` (``$`` would also match before a final newline).
Each check raises InvalidParams with one line naming the bad value and the rule it broke.
"""

from __future__ import annotations

import re

from paas.domain.errors import InvalidParams
from paas_router import names

CONFIG_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PROCESS_TYPE = re.compile(r"[A-Za-z0-9_-]{1,63}")
# A dyno's id, as the agent makes it: APP.TYPE.N.vVERSION.HEX (a path component too, and a
# run dyno's hostname: N of up to 8 digits keeps APP(30).run.N.v(10).HEX(8) within 64).
DYNO_ID = re.compile(r"[a-z0-9-]+\.[A-Za-z0-9_-]{1,63}\.[0-9]{1,8}\.v[0-9]{1,10}\.[0-9a-f]{1,32}")
RESERVED_KEYS = frozenset({"PORT", "DYNO"})
MAX_QUANTITY = 100
MAX_CONFIG_BYTES = 32 * 1024
MAX_CONFIG_KEY = 256
MAX_VERSION = 2**31 - 1


def app_name(name: object) -> str:
    problem = names.app_name_problem(name)
    if problem is not None:
        raise InvalidParams(problem)
    assert isinstance(name, str)
    return name


def config_key(key: object) -> str:
    if (
        not isinstance(key, str)
        or len(key) > MAX_CONFIG_KEY
        or not CONFIG_KEY.fullmatch(key)
        or key.startswith("__")
    ):
        raise InvalidParams(
            f"invalid config key {key!r}: use letters, digits and _, not starting with a digit "
            f"or __, up to {MAX_CONFIG_KEY} characters"
        )
    if key in RESERVED_KEYS or key.startswith("PAAS_"):
        raise InvalidParams(f"config key {key!r} is reserved by the platform: choose another name")
    return key


def config_value(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidParams(f"config var {key} must be a string or null to unset it")
    if "\0" in value:
        # An environment variable cannot hold a NUL: the dyno could never start.
        raise InvalidParams(f"config var {key} contains a NUL byte, which no environment can hold")
    return value


def config_changes(changes: object) -> dict[str, str | None]:
    """Checks a PATCH body: a JSON object of key → string (set) or null (unset)."""
    if not isinstance(changes, dict) or not changes:
        raise InvalidParams('config vars must be a JSON object such as {"KEY": "value"}')
    checked: dict[str, str | None] = {}
    for key, value in changes.items():
        config_key(key)
        checked[key] = None if value is None else config_value(key, value)
    return checked


def config_size(config: dict[str, str]) -> None:
    size = sum(len(k) + len(v) for k, v in config.items())
    if size > MAX_CONFIG_BYTES:
        raise InvalidParams(f"config vars total {size} bytes; the limit is {MAX_CONFIG_BYTES}")


def process_type(name: object) -> str:
    if not isinstance(name, str) or not PROCESS_TYPE.fullmatch(name):
        raise InvalidParams(
            f"invalid process type {name!r}: use letters, digits, _ and -, up to 63 characters"
        )
    return name


def dyno_id(value: str) -> str:
    """A dyno id the agent made: it names a directory and an HAProxy server."""
    if not DYNO_ID.fullmatch(value):
        raise InvalidParams(f"invalid dyno id {value!r}: expected APP.TYPE.N.vVERSION.HEX")
    return value


def quantity(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_QUANTITY:
        raise InvalidParams(
            f"invalid quantity {value!r}: give a whole number from 0 to {MAX_QUANTITY}"
        )
    return value


def release_version(value: object) -> int:
    """A release version as given: 3, "3" or "v3" (within SQLite's integers)."""
    if isinstance(value, str) and value.removeprefix("v").isascii():
        digits = value.removeprefix("v")
        if digits.isdigit() and len(digits) <= 10:
            value = int(digits)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VERSION:
        raise InvalidParams(f"invalid release {value!r}: give a version number such as 3 or v3")
    return value


def hostname(name: object) -> str:
    """A hostname as given (any case); returned lowercase, as the router matches it."""
    # ASCII first: str.lower() maps a few other characters to ASCII letters (KELVIN SIGN).
    lowered = name.lower() if isinstance(name, str) and name.isascii() else name
    problem = names.hostname_problem(lowered)
    if problem is not None:
        raise InvalidParams(f"{problem}: give a DNS name such as www.example.com")
    assert isinstance(lowered, str)
    return lowered


def custom_domain(name: object, paas_domain: str) -> str:
    """A domain an app may add: a hostname of two labels or more that is not under
    PAAS_DOMAIN, where every app's own hostname APP.PAAS_DOMAIN lives."""
    host = hostname(name)
    if "." not in host:
        raise InvalidParams(
            f"invalid domain {host!r}: give a full DNS name such as www.example.com"
        )
    if names.is_under(host, paas_domain):
        raise InvalidParams(
            f"domain {host} is under {paas_domain}, where the platform names apps "
            "(APP." + paas_domain + "): add a domain of your own"
        )
    return host


def default_hostname(app: str, paas_domain: str) -> str:
    """The hostname every app answers at."""
    return f"{app}.{paas_domain}".lower()
