"""The health check of a web dyno: what an app asks for, as data (the probe itself is
paas.reconcile.probe, the reading of the app's files paas.push.app_files).

An app asks for an HTTP check of its starting web dynos the two ways Dokku reads one:

1. `app.json` at the app root, key `healthchecks.web`: a list of checks with the field
   names of Dokku's docker-container-healthchecker (type, path, content, timeout, attempts,
   wait, initialDelay, httpHeaders, ...). Only `startup` checks gate a deploy (Dokku's
   docker-local scheduler runs no other type); a check without `type` counts as one, as
   the healthchecker's documentation calls startup the default.
2. `CHECKS` at the app root, the older format Dokku now converts to the first: `WAIT=`,
   `TIMEOUT=` and `ATTEMPTS=` lines, `#` comments, and a check line
   `/path [expected content]` (or `//host/path`, `http://host/path`: the host becomes the
   Host header).

Precedence: when app.json has a `healthchecks.web` key, it alone decides and CHECKS is not
read, even if app.json's list gates nothing. (Dokku does the reverse: it converts CHECKS and
overwrites `healthchecks.web` with it. We prefer the format Dokku documents to the one it
deprecates.)

One HTTP check per app: a second one is an error, not silently dropped. No check means
"ready when the port accepts a connection" (paas.reconcile.readiness).

Invariants: a HealthCheck is valid whenever it exists (checked on construction, so also on
from_json); parsing turns every bad input into one InvalidParams line naming the file, the
field and the fix.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import TypeVar

from paas.domain import app_manifest
from paas.domain.errors import InvalidParams

T = TypeVar("T")

APP_JSON = app_manifest.FILE
CHECKS = "CHECKS"

# Dokku's defaults: those of docker-container-healthchecker, which also runs converted
# CHECKS files (an unset WAIT/TIMEOUT/ATTEMPTS there falls through to them).
DEFAULT_PATH = "/"
DEFAULT_TIMEOUT = 5
DEFAULT_ATTEMPTS = 3
DEFAULT_WAIT = 5
DEFAULT_INITIAL_DELAY = 0

MAX_BODY_BYTES = 64 * 1024  # the part of a body searched for the expected content
MAX_FILE_BYTES = app_manifest.MAX_FILE_BYTES
MAX_PATH_CHARS = 2048
MAX_CONTENT_CHARS = 1024
MAX_HEADERS = 20
USER_AGENT = "paas-healthcheck"


@dataclasses.dataclass(frozen=True)
class Number:
    """A numeric setting: its name in app.json and in CHECKS, and its bounds."""

    app_json: str
    checks: str | None
    low: int
    high: int
    seconds: bool = True

    def expected(self) -> str:
        unit = " (seconds)" if self.seconds else ""
        return f"an integer from {self.low} to {self.high}{unit}"


NUMBERS = {
    "timeout": Number("timeout", "TIMEOUT", 1, 60),
    "attempts": Number("attempts", "ATTEMPTS", 1, 100, seconds=False),
    "wait": Number("wait", "WAIT", 0, 60),
    "initial_delay": Number("initialDelay", None, 0, 300),
}

CHECK_TYPES = ("startup", "readiness", "liveness")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
DIGITS = re.compile(r"[0-9]{1,9}")
SETTING = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)")
TRAILING_COMMENT = re.compile(r"\s#")


@dataclasses.dataclass(frozen=True)
class HealthCheck:
    """One HTTP GET a starting web dyno must answer before it gets traffic.

    path: the request target (may carry a query). content: a substring the first
    MAX_BODY_BYTES of the body must contain, or None. timeout: seconds one probe may take.
    attempts and wait: Dokku's tries and the seconds between them; with initial_delay (the
    seconds after start before the first probe) they only set deadline_seconds. headers:
    extra request headers; a Host among them wins over passes()'s host_header.
    """

    path: str = DEFAULT_PATH
    content: str | None = None
    timeout: int = DEFAULT_TIMEOUT
    attempts: int = DEFAULT_ATTEMPTS
    wait: int = DEFAULT_WAIT
    initial_delay: int = DEFAULT_INITIAL_DELAY
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        problem = _invalid(self)
        if problem is not None:
            raise ValueError(f"invalid HealthCheck: {problem}")

    def to_json(self) -> str:
        fields = dataclasses.asdict(self)
        fields["headers"] = [list(header) for header in self.headers]
        return json.dumps(fields, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> HealthCheck:
        """The inverse of to_json; ValueError (never a user error) if the text is not one."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"a HealthCheck is a JSON object, got {_show(data)}")
        headers = data.get("headers", [])
        if not isinstance(headers, list) or not all(
            isinstance(h, list) and len(h) == 2 and all(isinstance(p, str) for p in h)
            for h in headers
        ):
            raise ValueError(
                f"HealthCheck headers must be [name, value] pairs, got {_show(headers)}"
            )
        try:
            return cls(
                path=data["path"],
                content=data["content"],
                timeout=data["timeout"],
                attempts=data["attempts"],
                wait=data["wait"],
                initial_delay=data["initial_delay"],
                headers=tuple((name, value) for name, value in headers),
            )
        except KeyError as missing:
            raise ValueError(f"a HealthCheck needs {missing}") from None


def choose(app_json: str | None, checks: str | None) -> HealthCheck | None:
    """The check asked for by an app's app.json text, else its CHECKS text (None: a file
    the app does not have), or None for the default check."""
    if app_json is not None:
        web = _web_checks(app_json)
        if web is not None:
            return _from_web_checks(web)
    return None if checks is None else from_checks_file(checks)


def has_web_checks(app_json: str) -> bool:
    """Whether an app.json text has a `healthchecks.web` key (then CHECKS is not read)."""
    return _web_checks(app_json) is not None


def from_app_json(text: str) -> HealthCheck | None:
    """The check an app.json asks for, or None (no `healthchecks.web`, or nothing gating)."""
    web = _web_checks(text)
    return None if web is None else _from_web_checks(web)


def from_checks_file(text: str) -> HealthCheck | None:
    """The check a CHECKS file asks for, or None if it has no check line.

    Dokku's converter semantics: settings apply wherever they stand (the last one wins),
    WAIT is the pause between attempts (before Dokku 0.31 it also preceded the first), a
    `#` at the start of a line or after a blank starts a comment, and the content is the
    rest of the line after the target, blanks around it dropped.
    """
    settings: dict[str, int] = {}
    found: tuple[int, str, str | None] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("#"):
            continue
        comment = TRAILING_COMMENT.search(line)
        if comment:
            line = line[: comment.start()].rstrip()
        if not line:
            continue
        where = f"{CHECKS} line {number}"
        setting = SETTING.fullmatch(line)
        if setting:
            name, value = setting[1], setting[2].strip()
            field = next((f for f, n in NUMBERS.items() if n.checks == name), None)
            if field is None:
                raise InvalidParams(
                    f"{where}: unknown setting {name!r}; use WAIT=, TIMEOUT= or ATTEMPTS="
                )
            number_spec = NUMBERS[field]
            if not DIGITS.fullmatch(value) or not number_spec.low <= int(value) <= number_spec.high:
                raise InvalidParams(
                    f"{where}: {name} must be {number_spec.expected()}, got {_show(value)}"
                )
            settings[field] = int(value)
            continue
        target, *rest = line.split(None, 1)
        if found is not None:
            raise InvalidParams(
                f"{where}: a second check ({_show(target)}) after line {found[0]}; only one "
                "check is supported: keep the one that shows the app is ready"
            )
        found = (number, target, rest[0].strip() if rest else None)
    if found is None:
        return None
    number, target, content = found
    where = f"{CHECKS} line {number}"
    path, headers = _split_target(target, where)
    problem = _content_problem(content)
    if problem is not None:
        raise InvalidParams(f"{where}: the expected content {problem}")
    return HealthCheck(
        path=path,
        content=content,
        timeout=settings.get("timeout", DEFAULT_TIMEOUT),
        attempts=settings.get("attempts", DEFAULT_ATTEMPTS),
        wait=settings.get("wait", DEFAULT_WAIT),
        headers=headers,
    )


def deadline_seconds(check: HealthCheck) -> float:
    """How long after its start a dyno may take to pass before its startup check failed.

    Dokku waits initialDelay, then tries up to `attempts` times, each try taking up to
    `timeout`, with `wait` between tries. The last try it would still accept ends at
    initial_delay + attempts * timeout + (attempts - 1) * wait: that worst case is the
    deadline, so a dyno Dokku would have let through is never failed here (a dyno that
    refuses connections fails in Dokku sooner, each refused try taking no time). Polling
    every 0.1-0.2 s instead of every `wait` s only finds a ready dyno sooner.
    """
    return check.initial_delay + check.attempts * check.timeout + (check.attempts - 1) * check.wait


# -- app.json --------------------------------------------------------------------------


def _web_checks(text: str) -> list[object] | None:
    document = app_manifest.document(text)
    if "healthchecks" not in document:
        return None
    checks = document["healthchecks"]
    if not isinstance(checks, dict):
        raise InvalidParams(
            f"{APP_JSON}: healthchecks must be an object of process types to lists of "
            f'checks, like {{"web": [...]}}, got {_show(checks)}'
        )
    if "web" not in checks:
        return None
    web = checks["web"]
    if not isinstance(web, list):
        raise InvalidParams(
            f"{APP_JSON}: healthchecks.web must be a list of checks, got {_show(web)}"
        )
    return web


def _from_web_checks(web: list[object]) -> HealthCheck | None:
    gating: list[tuple[str, HealthCheck]] = []
    for index, entry in enumerate(web):
        where = f"{APP_JSON}: healthchecks.web[{index}]"
        check = _from_entry(entry, where)
        if check is not None:
            gating.append((f"web[{index}]", check))
    if len(gating) > 1:
        names = ", ".join(name for name, _ in gating)
        raise InvalidParams(
            f"{APP_JSON}: healthchecks.web has {len(gating)} startup checks with a path "
            f"({names}); only one is supported: keep the one that shows the app is ready"
        )
    return gating[0][1] if gating else None


def _from_entry(entry: object, where: str) -> HealthCheck | None:
    """The HTTP check an entry asks for if it gates a deploy; None if it does not.

    Every known field is type-checked, gating or not; unknown fields are ignored (Dokku
    does the same). `port` is checked but unused: a dyno is always probed on its $PORT.
    `uptime` and `listening` checks are left to the platform's own start and port checks.
    """
    if not isinstance(entry, dict):
        raise InvalidParams(f"{where} must be an object, got {_show(entry)}")
    kind = _optional(entry, "type", str, "a string", where)
    if kind is not None and kind not in CHECK_TYPES:
        raise InvalidParams(
            f"{where}.type must be one of {', '.join(CHECK_TYPES)}, got {_show(kind)}"
        )
    for name in ("name", "description"):
        _optional(entry, name, str, "a string", where)
    warn = _optional(entry, "warn", bool, "true or false", where)
    listening = _optional(entry, "listening", bool, "true or false", where)
    uptime = _optional(entry, "uptime", int, "an integer (seconds)", where)
    port = _optional(entry, "port", int, "an integer from 1 to 65535", where)
    if port is not None and not 1 <= port <= 65535:
        raise InvalidParams(f"{where}.port must be an integer from 1 to 65535, got {port}")
    command = entry.get("command")
    if command is not None and not (
        isinstance(command, list) and all(isinstance(word, str) for word in command)
    ):
        raise InvalidParams(f"{where}.command must be a list of strings, got {_show(command)}")
    scheme = _optional(entry, "scheme", str, "a string", where)
    if scheme is not None and scheme.lower() not in ("http", "https"):
        raise InvalidParams(f'{where}.scheme must be "http" or "https", got {_show(scheme)}')
    path = _optional(entry, "path", str, "a string", where)
    if path is not None:
        problem = _path_problem(path)
        if problem is not None:
            raise InvalidParams(f"{where}.path {problem}, got {_show(path)}")
    content = _optional(entry, "content", str, "a string", where) or None
    problem = _content_problem(content)
    if problem is not None:
        raise InvalidParams(f"{where}.content {problem}")
    headers = _headers(entry.get("httpHeaders"), f"{where}.httpHeaders")
    numbers = {field: _number(entry, spec, where) for field, spec in NUMBERS.items()}

    if (kind or "startup") != "startup" or warn:
        return None  # not run on a deploy, or its failure only warns
    if command:
        raise InvalidParams(
            f"{where}: command checks are not supported; check an HTTP path instead "
            '(e.g. "path": "/health")'
        )
    if path is None:
        return None  # an uptime or listening check
    if uptime or listening:
        other = "uptime" if uptime else "listening"
        raise InvalidParams(f"{where}: a check has either a path or {other}, not both")
    if scheme is not None and scheme.lower() == "https":
        raise InvalidParams(
            f'{where}.scheme: dynos are probed over plain HTTP behind the router; use "http"'
        )
    return HealthCheck(
        path=path,
        content=content,
        timeout=numbers["timeout"] or DEFAULT_TIMEOUT,
        attempts=numbers["attempts"] or DEFAULT_ATTEMPTS,
        wait=DEFAULT_WAIT if numbers["wait"] is None else numbers["wait"],
        initial_delay=numbers["initial_delay"] or DEFAULT_INITIAL_DELAY,
        headers=headers,
    )


def _optional(
    entry: dict[str, object], key: str, kind: type[T], expected: str, where: str
) -> T | None:
    value = entry.get(key)
    if value is None:
        return None
    # bool is an int in Python, never in JSON.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidParams(f"{where}.{key} must be {expected}, got {_show(value)}")
    return value


def _number(entry: dict[str, object], spec: Number, where: str) -> int | None:
    value = entry.get(spec.app_json)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not spec.low <= value <= spec.high:
        raise InvalidParams(
            f"{where}.{spec.app_json} must be {spec.expected()}, got {_show(value)}"
        )
    return value


def _headers(value: object, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidParams(
            f'{where} must be a list of {{"name": ..., "value": ...}}, got {_show(value)}'
        )
    if len(value) > MAX_HEADERS:
        raise InvalidParams(f"{where} has {len(value)} headers; at most {MAX_HEADERS} are allowed")
    headers = []
    for index, header in enumerate(value):
        name = header.get("name") if isinstance(header, dict) else None
        text = header.get("value") if isinstance(header, dict) else None
        if not isinstance(name, str) or not isinstance(text, str):
            raise InvalidParams(
                f'{where}[{index}] must be {{"name": "...", "value": "..."}}, got {_show(header)}'
            )
        problem = _header_problem(name, text)
        if problem is not None:
            raise InvalidParams(f"{where}[{index}] {problem}")
        headers.append((name, text))
    return tuple(headers)


# -- CHECKS ----------------------------------------------------------------------------


def _split_target(target: str, where: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """`/path`, `//host/path` or `http://host/path` into the path and a Host header."""
    rest = target
    if rest.lower().startswith("https:"):
        raise InvalidParams(
            f"{where}: dynos are probed over plain HTTP behind the router; "
            f"write {_show(rest[len('https:') :])} instead of {_show(rest)}"
        )
    if rest.lower().startswith("http:"):
        rest = rest[len("http:") :]
        if not rest.startswith("//"):
            raise InvalidParams(f"{where}: {_show(target)} is not http://HOST/PATH")
    headers: tuple[tuple[str, str], ...] = ()
    if rest.startswith("//"):
        host, slash, path = rest[2:].partition("/")
        if not HOST.fullmatch(host):
            raise InvalidParams(f"{where}: {_show(host)} is not a host name, in {_show(target)}")
        headers = (("Host", host),)
        rest = slash + path or DEFAULT_PATH
    problem = _path_problem(rest)
    if problem is not None:
        raise InvalidParams(
            f"{where}: a check is `/PATH [EXPECTED CONTENT]`; the path {problem}, "
            f"got {_show(target)}"
        )
    return rest, headers


# -- validation ------------------------------------------------------------------------


def _invalid(check: HealthCheck) -> str | None:
    problem = _path_problem(check.path)
    if problem is not None:
        return f"path {problem}"
    problem = _content_problem(check.content)
    if problem is not None:
        return f"content {problem}"
    for field, spec in NUMBERS.items():
        value = getattr(check, field)
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{field} must be {spec.expected()}, got {_show(value)}"
        if not spec.low <= value <= spec.high:
            return f"{field} must be {spec.expected()}, got {value}"
    for name, value in check.headers:
        problem = _header_problem(name, value)
        if problem is not None:
            return problem
    return None


def _path_problem(path: str) -> str | None:
    if not path.startswith("/"):
        return 'must start with "/"'
    if len(path) > MAX_PATH_CHARS:
        return f"must be at most {MAX_PATH_CHARS} characters"
    if not path.isascii() or any(c.isspace() or not c.isprintable() for c in path):
        return "must be printable ASCII without blanks (percent-encode the others)"
    return None


def _content_problem(content: str | None) -> str | None:
    if content is None:
        return None
    if len(content) > MAX_CONTENT_CHARS:
        return f"must be at most {MAX_CONTENT_CHARS} characters, got {len(content)}"
    if not content.isprintable():
        return "must be printable text on one line"
    return None


def _header_problem(name: str, value: str) -> str | None:
    if not HEADER_NAME.fullmatch(name):
        return f"has an invalid header name {_show(name)}"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return f"header {name} must be Latin-1 text, got {_show(value)}"
    if any(c in value for c in "\r\n\0") or value != value.strip():
        return f"header {name} must be one line without surrounding blanks, got {_show(value)}"
    return None


def _show(value: object) -> str:
    """A value for a one-line message: repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
