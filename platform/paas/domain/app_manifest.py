"""app.json, Heroku's app manifest: the one parser of the file every reader goes through
(the buildpacks and health check readers take its `document`; the first-deploy setup takes
its `parse`) (pure).

The sections read here are those of Heroku's app setup, applied on an app's first deploy:

- `env`: `{"KEY": "default"}` or `{"KEY": {"description", "value", "required",
  "generator": "secret"}}`. `required` is true unless given; it only matters for a key with
  neither a value nor a generator.
- `formation`: `{"TYPE": {"quantity": N, "size": S}}`, or the list form
  `[{"process": "TYPE", "quantity": N, "size": S}]` (`type` also names the process).
- `addons`: `"SERVICE"`, `"SERVICE:PLAN"` or `{"plan": "SERVICE[:PLAN]", "as": "NAME",
  "options": {}}`.
- `scripts.postdeploy`: a command, or `{"command": ..., "size": S}`.

Other keys (name, description, keywords, stack, environments ...) and unknown fields of
the objects above are ignored, as Heroku ignores them; a known field of the wrong type or
value is an InvalidParams naming its place in the file (`app.json: env.KEY.required ...`)
and the fix.

Invariants: a Manifest exists only when every value in it passed its check (config keys
and values through paas.domain.validation, sizes through paas.domain.sizes, quantities
through validation.quantity); every list is bounded; parsing is linear in the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TypeVar

from paas.domain import sizes, validation
from paas.domain.errors import InvalidParams

T = TypeVar("T")

FILE = "app.json"
MAX_FILE_BYTES = 1024 * 1024
MAX_ENV = 200
MAX_ADDONS = 20
MAX_FORMATION = 100
MAX_COMMAND = 4096
MAX_SHOWN = 60
GENERATORS = ("secret",)
# Heroku's add-on names (heroku-postgresql) and plan names (standard-0, hobby-dev).
SERVICE = re.compile(r"[a-z][a-z0-9-]{0,62}")
PLAN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# An attachment name becomes the config var prefix NAME_URL: Heroku's rule for it.
ATTACHMENT = re.compile(r"[A-Z][A-Z0-9_]{0,62}")


@dataclass(frozen=True)
class EnvVar:
    """One `env` entry. value: the default, or None; secret: `generator: "secret"`."""

    key: str
    value: str | None = None
    required: bool = True
    secret: bool = False
    description: str | None = None


@dataclass(frozen=True)
class Scale:
    """One `formation` entry; None: leave the platform's default (web 1, others 0)."""

    type: str
    quantity: int | None = None
    size: str | None = None


@dataclass(frozen=True)
class Addon:
    """One `addons` entry: the service as written (heroku-postgresql), its plan (None:
    the service's default), the attachment name (None: the service's default) and the
    names of `options` given (not supported here: the setup says they were ignored)."""

    service: str
    plan: str | None = None
    as_name: str | None = None
    options: tuple[str, ...] = ()

    @property
    def shown(self) -> str:
        return self.service + (f":{self.plan}" if self.plan else "")


@dataclass(frozen=True)
class Script:
    command: str
    size: str | None = None


@dataclass(frozen=True)
class Manifest:
    env: tuple[EnvVar, ...] = ()
    formation: tuple[Scale, ...] = ()
    addons: tuple[Addon, ...] = ()
    postdeploy: Script | None = None

    @property
    def empty(self) -> bool:
        """Nothing for an app setup to do."""
        return not (self.env or self.formation or self.addons or self.postdeploy)


def decode(data: bytes) -> str:
    """The file's text (a UTF-8 byte order mark dropped)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidParams(
            f"{FILE}: is not UTF-8 text (byte {error.start}); save it as UTF-8"
        ) from None


def document(text: str) -> dict[str, object]:
    """The file as a JSON object: what every reader of one of its sections starts from."""
    try:
        found = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidParams(
            f"{FILE}: not valid JSON (line {error.lineno}, column {error.colno}: "
            f"{error.msg}); fix it or remove the file"
        ) from None
    except RecursionError:
        raise InvalidParams(f"{FILE}: nested too deeply to be read") from None
    if not isinstance(found, dict):
        raise InvalidParams(f"{FILE}: must be a JSON object, got {show(found)}")
    return found


def parse(text: str) -> Manifest:
    """The app setup sections of an app.json text."""
    found = document(text)
    return Manifest(
        env=env(found.get("env")),
        formation=formation(found.get("formation")),
        addons=addons(found.get("addons")),
        postdeploy=postdeploy(found.get("scripts")),
    )


# -- env ----------------------------------------------------------------------------------


def env(section: object) -> tuple[EnvVar, ...]:
    if section is None:
        return ()
    if not isinstance(section, dict):
        raise InvalidParams(
            f'{FILE}: env must be an object of config vars, like {{"KEY": "value"}}, '
            f"got {show(section)}"
        )
    if len(section) > MAX_ENV:
        raise InvalidParams(f"{FILE}: env has {len(section)} config vars; at most {MAX_ENV}")
    return tuple(env_var(key, entry) for key, entry in section.items())


def env_var(key: str, entry: object) -> EnvVar:
    where = f"{FILE}: env.{shorten(key)}"
    try:
        validation.config_key(key)
    except InvalidParams as error:
        raise InvalidParams(f"{where}: {error.message}") from None
    if isinstance(entry, str):
        return EnvVar(key, value_of(key, entry, where))
    if not isinstance(entry, dict):
        raise InvalidParams(
            f'{where} must be a string or an object such as {{"value": "...", '
            f'"description": "..."}}, got {show(entry)}'
        )
    value = optional(entry, "value", str, 'a string (quote numbers: "5")', where)
    required = optional(entry, "required", bool, "true or false", where)
    description = optional(entry, "description", str, "a string", where)
    generator = optional(entry, "generator", str, "a string", where)
    if generator is not None and generator not in GENERATORS:
        raise InvalidParams(
            f'{where}.generator must be "secret" (the only generator), got {show(generator)}'
        )
    return EnvVar(
        key=key,
        value=None if value is None else value_of(key, value, where),
        required=True if required is None else required,
        secret=generator == "secret",
        description=description,
    )


def value_of(key: str, value: str, where: str) -> str:
    try:
        return validation.config_value(key, value)
    except InvalidParams as error:
        raise InvalidParams(f"{where}: {error.message}") from None


# -- formation ----------------------------------------------------------------------------


def formation(section: object) -> tuple[Scale, ...]:
    if section is None:
        return ()
    if isinstance(section, dict):
        entries = [
            (name, entry, f"{FILE}: formation.{shorten(str(name))}")
            for name, entry in section.items()
        ]
    elif isinstance(section, list):
        entries = [
            (list_type(entry, f"{FILE}: formation[{index}]"), entry, f"{FILE}: formation[{index}]")
            for index, entry in enumerate(section)
        ]
    else:
        raise InvalidParams(
            f'{FILE}: formation must be an object such as {{"web": {{"quantity": 1}}}}, '
            f"got {show(section)}"
        )
    if len(entries) > MAX_FORMATION:
        raise InvalidParams(
            f"{FILE}: formation has {len(entries)} process types; at most {MAX_FORMATION}"
        )
    scales = [scale(name, entry, where) for name, entry, where in entries]
    seen: set[str] = set()
    for item in scales:
        if item.type in seen:
            raise InvalidParams(f"{FILE}: formation names process type {item.type!r} twice")
        seen.add(item.type)
    return tuple(scales)


def list_type(entry: object, where: str) -> str:
    """The process type of an entry of the list form (`process`, or `type`)."""
    if not isinstance(entry, dict):
        raise InvalidParams(
            f'{where} must be an object such as {{"process": "web", "quantity": 1}}, '
            f"got {show(entry)}"
        )
    name = entry.get("process", entry.get("type"))
    if not isinstance(name, str):
        raise InvalidParams(f'{where} needs "process": the process type it scales')
    return name


def scale(name: str, entry: object, where: str) -> Scale:
    if not isinstance(entry, dict):
        raise InvalidParams(
            f'{where} must be an object such as {{"quantity": 1, "size": "standard-1x"}}, '
            f"got {show(entry)}"
        )
    try:
        validation.process_type(name)
    except InvalidParams as error:
        raise InvalidParams(f"{where}: {error.message}") from None
    if name == "release":
        raise InvalidParams(
            f"{where}: the release process runs once per release, before rollout: it cannot "
            "be scaled; remove it"
        )
    quantity = entry.get("quantity")
    if quantity is not None:
        try:
            validation.quantity(quantity)
        except InvalidParams as error:
            raise InvalidParams(f"{where}.quantity: {error.message}") from None
    return Scale(name, quantity, size_of(entry.get("size"), f"{where}.size"))


def size_of(value: object, where: str) -> str | None:
    """A dyno size, Heroku's names in any case (Standard-1X); None when not given."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidParams(f'{where} must be a string such as "standard-1x", got {show(value)}')
    size = value.lower() if value.lower() in sizes.SIZES_MB else value
    try:
        sizes.memory_mb(size)
    except InvalidParams as error:
        raise InvalidParams(f"{where}: {error.message}") from None
    return size


# -- addons -------------------------------------------------------------------------------


def addons(section: object) -> tuple[Addon, ...]:
    if section is None:
        return ()
    if not isinstance(section, list):
        raise InvalidParams(
            f'{FILE}: addons must be a list such as ["heroku-postgresql"], got {show(section)}'
        )
    if len(section) > MAX_ADDONS:
        raise InvalidParams(f"{FILE}: addons lists {len(section)} add-ons; at most {MAX_ADDONS}")
    found = tuple(addon(entry, f"{FILE}: addons[{index}]") for index, entry in enumerate(section))
    names = [a.as_name for a in found if a.as_name is not None]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InvalidParams(
            f'{FILE}: addons attach two add-ons as {twice[0]}: give each its own "as"'
        )
    return found


def addon(entry: object, where: str) -> Addon:
    if isinstance(entry, str):
        return Addon(*service_plan(entry, where))
    if not isinstance(entry, dict):
        raise InvalidParams(
            f'{where} must be a string such as "heroku-postgresql:standard" or an object '
            f'such as {{"plan": "heroku-postgresql", "as": "DATABASE"}}, got {show(entry)}'
        )
    plan = entry.get("plan")
    if not isinstance(plan, str):
        raise InvalidParams(
            f'{where} needs "plan": the add-on to create, such as "heroku-postgresql:standard"'
        )
    service, plan_name = service_plan(plan, f"{where}.plan")
    as_name = optional(entry, "as", str, "a string", where)
    if as_name is not None and not ATTACHMENT.fullmatch(as_name):
        raise InvalidParams(
            f"{where}.as: {show(as_name)} is not an attachment name: use capital letters, "
            "digits and _, starting with a letter (DATABASE gives DATABASE_URL)"
        )
    options = optional(entry, "options", dict, "an object", where)
    return Addon(service, plan_name, as_name, tuple(sorted(str(k) for k in options or {})))


def service_plan(text: str, where: str) -> tuple[str, str | None]:
    service, colon, plan = text.partition(":")
    if not SERVICE.fullmatch(service) or (colon and not PLAN.fullmatch(plan)):
        raise InvalidParams(
            f"{where}: {show(text)} is not an add-on: write SERVICE or SERVICE:PLAN in lower "
            "case, such as heroku-postgresql or heroku-redis:hobby"
        )
    return service, plan if colon else None


# -- scripts ------------------------------------------------------------------------------


def postdeploy(scripts: object) -> Script | None:
    if scripts is None:
        return None
    if not isinstance(scripts, dict):
        raise InvalidParams(
            f'{FILE}: scripts must be an object such as {{"postdeploy": "COMMAND"}}, '
            f"got {show(scripts)}"
        )
    entry = scripts.get("postdeploy")
    where = f"{FILE}: scripts.postdeploy"
    if entry is None:
        return None
    if isinstance(entry, str):
        return Script(command(entry, where))
    if not isinstance(entry, dict):
        raise InvalidParams(
            f'{where} must be a command or an object such as {{"command": "...", '
            f'"size": "standard-1x"}}, got {show(entry)}'
        )
    text = entry.get("command")
    if not isinstance(text, str):
        raise InvalidParams(f'{where} needs "command": the command to run once')
    return Script(command(text, f"{where}.command"), size_of(entry.get("size"), f"{where}.size"))


def command(text: str, where: str) -> str:
    if not text.strip():
        raise InvalidParams(f"{where} is empty: give the command to run, or remove it")
    if len(text) > MAX_COMMAND or "\0" in text:
        raise InvalidParams(
            f"{where}: a command of at most {MAX_COMMAND} characters without NUL bytes; "
            "put a longer one in a script of the app"
        )
    return text


# -- helpers ------------------------------------------------------------------------------


def optional(
    entry: Mapping[str, object], name: str, kind: type[T], expected: str, where: str
) -> T | None:
    value = entry.get(name)
    if value is None:
        return None
    if not isinstance(value, kind):
        raise InvalidParams(f"{where}.{name} must be {expected}, got {show(value)}")
    return value


def shorten(text: str) -> str:
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def show(value: object) -> str:
    return shorten(repr(value))


# -- the first deploy's plan --------------------------------------------------------------


def env_plan(
    manifest: Manifest,
    config: Mapping[str, str],
    secret: Callable[[], str],
    app: str,
    provided: Collection[str] = (),
) -> dict[str, str]:
    """The config vars a first deploy sets: each `env` key the app does not have yet, at
    its value, else a generated secret; a required key with neither (and not set on the
    app) is an InvalidParams naming it and `config:set`, before anything is changed.
    `provided`: the vars the manifest's add-ons will set (DATABASE_URL), left to them."""
    changes: dict[str, str] = {}
    missing: list[EnvVar] = []
    for var in manifest.env:
        if var.key in config or var.key in provided:
            continue  # the app's own value (or its add-on's) wins over the manifest's
        if var.value is not None:
            changes[var.key] = var.value
        elif var.secret:
            changes[var.key] = secret()
        elif var.required:
            missing.append(var)
    if missing:
        raise InvalidParams(missing_message(missing, app))
    return changes


def missing_message(missing: list[EnvVar], app: str) -> str:
    keys = [var.key for var in missing]
    settings = " ".join(f"{key}=…" for key in keys)
    fix = f"`paas config:set {settings} -a {app}` and push again"
    if len(missing) > 1:
        return f"{FILE}: env requires {', '.join(keys)}, which have no value: set them with {fix}"
    description = " ".join((missing[0].description or "").split())  # one line, whatever it was
    about = f" ({shorten(description)})" if description else ""
    return f"{FILE}: env.{keys[0]}{about} is required and has no value: set it with {fix}"


def formation_plan(manifest: Manifest, process_types: Mapping[str, str]) -> tuple[Scale, ...]:
    """The initial scale of a first release: `formation` checked against the process
    types the build found (a type it does not have is an error naming the ones it has)."""
    for item in manifest.formation:
        if item.type not in process_types:
            known = ", ".join(sorted(t for t in process_types if t != "release")) or "none"
            raise InvalidParams(
                f"{FILE}: formation.{item.type}: the app has no process type {item.type!r} "
                f"(its Procfile and buildpack give: {known}); add it to the Procfile or "
                "remove it from formation"
            )
    return manifest.formation
