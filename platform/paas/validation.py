"""Pure checks of user input: app names, config keys, quantities, domain names.

Each raises InvalidParams with a message naming the bad value and the rule it broke.
"""

from __future__ import annotations

import re

from paas.errors import InvalidParams

APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,29}$")
CONFIG_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PROCESS_TYPE = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
RESERVED_KEYS = frozenset({"PORT", "DYNO"})
MAX_QUANTITY = 100
MAX_CONFIG_BYTES = 32 * 1024


def app_name(name: str) -> str:
    if not APP_NAME.match(name) or name.endswith("-") or "--" in name:
        raise InvalidParams(
            f"invalid app name {name!r}: use 2-30 lowercase letters, digits and dashes, "
            "starting with a letter"
        )
    return name


def config_key(key: str) -> str:
    if not CONFIG_KEY.match(key) or key.startswith("__"):
        raise InvalidParams(
            f"invalid config key {key!r}: use letters, digits and _, not starting with a digit"
        )
    if key in RESERVED_KEYS or key.startswith("PAAS_"):
        raise InvalidParams(f"config key {key!r} is reserved by the platform: choose another name")
    return key


def config_changes(changes: object) -> dict[str, str | None]:
    """Checks a PATCH body: a JSON object of key → string (set) or null (unset)."""
    if not isinstance(changes, dict) or not changes:
        raise InvalidParams('config vars must be a JSON object such as {"KEY": "value"}')
    checked: dict[str, str | None] = {}
    for key, value in changes.items():
        config_key(key)
        if value is not None and not isinstance(value, str):
            raise InvalidParams(f"config var {key} must be a string or null to unset it")
        checked[key] = value
    return checked


def config_size(config: dict[str, str]) -> None:
    size = sum(len(k) + len(v) for k, v in config.items())
    if size > MAX_CONFIG_BYTES:
        raise InvalidParams(f"config vars total {size} bytes; the limit is {MAX_CONFIG_BYTES}")


def process_type(name: object) -> str:
    if not isinstance(name, str) or not PROCESS_TYPE.match(name):
        raise InvalidParams(
            f"invalid process type {name!r}: use letters, digits, _ and -, up to 63 characters"
        )
    return name


def quantity(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_QUANTITY:
        raise InvalidParams(
            f"invalid quantity {value!r}: give a whole number from 0 to {MAX_QUANTITY}"
        )
    return value


def hostname(name: object) -> str:
    if not isinstance(name, str) or not HOSTNAME.match(name.lower()):
        raise InvalidParams(f"invalid hostname {name!r}: give a DNS name such as www.example.com")
    return name.lower()
