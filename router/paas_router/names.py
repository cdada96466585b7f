"""The rules for names that both the control plane and the router see: app names and
hostnames.

Pure, and the one definition of each rule: ``paas.domain.validation`` (API, store, agent) and
``paas_router.model`` (the router) both call these functions, so a name the API accepts is
a name the router routes. The router must not import the control plane, so the rules live
here and the control plane imports them. Invariant: every check is a ``fullmatch`` of the
whole string (``$`` would also match before a final newline), and a check returns the one
line that says what is wrong, or None when the name is good.
"""

import re

APP_NAME_RULE = (
    "use 2..30 characters of a-z, 0-9 and '-', starting with a letter, "
    "not ending in '-' and without '--'"
)
_APP_NAME = re.compile(r"[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]")
_APP_NAME_MAX = 30

# One DNS label: letters, digits and inner hyphens, at most 63 characters.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_HOSTNAME_MAX = 253
HOSTNAME_RULE = (
    "not a lowercase DNS name (dot-separated labels of a-z, 0-9 and inner '-', "
    f"each up to 63 characters, {_HOSTNAME_MAX} in all)"
)


def app_name_problem(name: object) -> str | None:
    """Why ``name`` is not an app name, or None. An app name is a DNS label, so
    ``APP.$PAAS_DOMAIN`` is always a hostname."""
    if not isinstance(name, str) or len(name) > _APP_NAME_MAX or _APP_NAME.fullmatch(name) is None:
        return f"invalid app name {name!r}: {APP_NAME_RULE}"
    return None


def hostname_problem(host: object) -> str | None:
    """Why ``host`` is not a lowercase DNS name, or None."""
    if not isinstance(host, str) or len(host) > _HOSTNAME_MAX or _HOSTNAME.fullmatch(host) is None:
        return f"invalid hostname {host!r}: {HOSTNAME_RULE}"
    return None


def is_under(host: str, domain: str) -> bool:
    """Whether ``host`` is ``domain`` or a name below it (case-insensitive)."""
    host, domain = host.lower(), domain.lower()
    return host == domain or host.endswith("." + domain)
