"""app.json's app setup sections (paas.domain.app_manifest): every valid form, every
invalid value with its one-line message, and the first deploy's env and formation plans."""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import count

import pytest

from paas.domain import app_manifest
from paas.domain.app_manifest import Addon, EnvVar, Manifest, Scale, Script
from paas.domain.errors import InvalidParams


def parse(document: object) -> Manifest:
    return app_manifest.parse(json.dumps(document))


VALID = [
    ({}, Manifest()),
    ({"name": "x", "stack": "heroku-24", "keywords": ["a"], "environments": {}}, Manifest()),
    (
        {"env": {"A": "1", "B": {"value": "2", "description": "two"}}},
        Manifest(env=(EnvVar("A", "1"), EnvVar("B", "2", description="two"))),
    ),
    (
        {"env": {"S": {"generator": "secret"}, "O": {"required": False}, "R": {}}},
        Manifest(
            env=(EnvVar("S", secret=True), EnvVar("O", required=False), EnvVar("R")),
        ),
    ),
    (
        {"env": {"A": {"value": "x", "unknown": [1], "required": None}}},
        Manifest(env=(EnvVar("A", "x"),)),
    ),
    (
        {"formation": {"web": {"quantity": 2, "size": "Standard-2X"}, "worker": {"quantity": 1}}},
        Manifest(formation=(Scale("web", 2, "standard-2x"), Scale("worker", 1))),
    ),
    (
        {"formation": [{"process": "web", "quantity": 0}, {"type": "clock", "size": "256M"}]},
        Manifest(formation=(Scale("web", 0), Scale("clock", None, "256M"))),
    ),
    (
        {
            "addons": [
                "heroku-postgresql",
                "heroku-redis:hobby",
                {"plan": "heroku-postgresql:standard", "as": "ANALYTICS", "options": {}},
                {"plan": "postgresql", "options": {"version": "16"}},
            ]
        },
        Manifest(
            addons=(
                Addon("heroku-postgresql"),
                Addon("heroku-redis", "hobby"),
                Addon("heroku-postgresql", "standard", "ANALYTICS"),
                Addon("postgresql", options=("version",)),
            )
        ),
    ),
    (
        {"scripts": {"postdeploy": "python manage.py migrate", "test": "x"}},
        Manifest(postdeploy=Script("python manage.py migrate")),
    ),
    (
        {"scripts": {"postdeploy": {"command": "./seed", "size": "performance-m"}}},
        Manifest(postdeploy=Script("./seed", "performance-m")),
    ),
    ({"scripts": {"pr-predestroy": "x"}}, Manifest()),
]


@pytest.mark.parametrize(("document", "expected"), VALID)
def test_valid_manifests(document: object, expected: Manifest) -> None:
    assert parse(document) == expected


INVALID = [
    ("[]", "app.json: must be a JSON object, got []"),
    ("{", "app.json: not valid JSON (line 1, column 2: Expecting property name"),
    ({"env": ["A"]}, 'app.json: env must be an object of config vars, like {"KEY": "value"}'),
    ({"env": {"1A": "x"}}, "app.json: env.1A: invalid config key '1A': use letters, digits"),
    ({"env": {"PORT": "1"}}, "app.json: env.PORT: config key 'PORT' is reserved by the platform"),
    ({"env": {"PAAS_X": "1"}}, "app.json: env.PAAS_X: config key 'PAAS_X' is reserved"),
    ({"env": {"A": 5}}, "app.json: env.A must be a string or an object such as"),
    ({"env": {"A": {"value": 5}}}, 'app.json: env.A.value must be a string (quote numbers: "5")'),
    ({"env": {"A": {"value": "a\u0000"}}}, "app.json: env.A: config var A contains a NUL byte"),
    ({"env": {"A": {"required": "yes"}}}, "app.json: env.A.required must be true or false"),
    ({"env": {"A": {"generator": "uuid"}}}, 'app.json: env.A.generator must be "secret"'),
    ({"env": {"A": {"description": 3}}}, "app.json: env.A.description must be a string, got 3"),
    ({"env": {f"K{i}": "v" for i in range(201)}}, "app.json: env has 201 config vars; at most 200"),
    ({"formation": "web=1"}, "app.json: formation must be an object such as"),
    ({"formation": {"web": 2}}, "app.json: formation.web must be an object such as"),
    ({"formation": {"we b": {}}}, "app.json: formation.we b: invalid process type 'we b'"),
    ({"formation": {"release": {"quantity": 1}}}, "app.json: formation.release: the release"),
    (
        {"formation": {"web": {"quantity": 101}}},
        "app.json: formation.web.quantity: invalid quantity",
    ),
    (
        {"formation": {"web": {"quantity": -1}}},
        "app.json: formation.web.quantity: invalid quantity",
    ),
    (
        {"formation": {"web": {"quantity": "2"}}},
        "app.json: formation.web.quantity: invalid quantity",
    ),
    (
        {"formation": {"web": {"quantity": True}}},
        "app.json: formation.web.quantity: invalid quantity",
    ),
    ({"formation": {"web": {"size": "huge"}}}, "app.json: formation.web.size: invalid dyno size"),
    ({"formation": {"web": {"size": 1}}}, "app.json: formation.web.size must be a string such as"),
    ({"formation": [{"quantity": 1}]}, 'app.json: formation[0] needs "process"'),
    ({"formation": ["web"]}, "app.json: formation[0] must be an object such as"),
    (
        {"formation": [{"process": "web"}, {"type": "web"}]},
        "app.json: formation names process type 'web' twice",
    ),
    ({"addons": "heroku-postgresql"}, "app.json: addons must be a list such as"),
    (
        {"addons": ["Heroku-Postgresql"]},
        "app.json: addons[0]: 'Heroku-Postgresql' is not an add-on",
    ),
    ({"addons": ["pg:"]}, "app.json: addons[0]: 'pg:' is not an add-on: write SERVICE or"),
    ({"addons": [3]}, "app.json: addons[0] must be a string such as"),
    ({"addons": [{"as": "DB"}]}, 'app.json: addons[0] needs "plan": the add-on to create'),
    ({"addons": [{"plan": "pg:a b"}]}, "app.json: addons[0].plan: 'pg:a b' is not an add-on"),
    ({"addons": [{"plan": "pg", "as": "db"}]}, "app.json: addons[0].as: 'db' is not an attachment"),
    ({"addons": [{"plan": "pg", "options": []}]}, "app.json: addons[0].options must be an object"),
    (
        {"addons": [{"plan": "pg", "as": "DB"}, {"plan": "redis", "as": "DB"}]},
        'app.json: addons attach two add-ons as DB: give each its own "as"',
    ),
    ({"addons": ["pg"] * 21}, "app.json: addons lists 21 add-ons; at most 20"),
    ({"scripts": "migrate"}, "app.json: scripts must be an object such as"),
    ({"scripts": {"postdeploy": 1}}, "app.json: scripts.postdeploy must be a command or"),
    ({"scripts": {"postdeploy": " "}}, "app.json: scripts.postdeploy is empty: give the command"),
    ({"scripts": {"postdeploy": {}}}, 'app.json: scripts.postdeploy needs "command"'),
    (
        {"scripts": {"postdeploy": {"command": "x", "size": "eco"}}},
        "app.json: scripts.postdeploy.size: invalid dyno size 'eco'",
    ),
    ({"scripts": {"postdeploy": "x" * 4097}}, "app.json: scripts.postdeploy: a command of at"),
]


@pytest.mark.parametrize(("document", "message"), INVALID)
def test_invalid_manifests_name_the_field(document: object, message: str) -> None:
    text = document if isinstance(document, str) else json.dumps(document)
    with pytest.raises(InvalidParams) as raised:
        app_manifest.parse(text)
    assert raised.value.message.startswith(message), raised.value.message
    assert "\n" not in raised.value.message


def test_decode_drops_a_bom_and_refuses_other_encodings() -> None:
    assert app_manifest.decode(b"\xef\xbb\xbf{}") == "{}"
    with pytest.raises(InvalidParams, match=r"app\.json: is not UTF-8 text \(byte 1\)"):
        app_manifest.decode(b"{\xff}")


def secrets_counter() -> Callable[[], str]:
    numbers = count(1)
    return lambda: f"secret-{next(numbers)}"


ENV = Manifest(
    env=(
        EnvVar("DEFAULT", "d"),
        EnvVar("KEPT", "manifest"),
        EnvVar("TOKEN", secret=True),
        EnvVar("OPTIONAL", required=False),
        EnvVar("GIVEN", required=True),
    )
)


def test_env_plan_sets_defaults_and_secrets_and_keeps_existing_vars() -> None:
    config = {"KEPT": "mine", "GIVEN": "set by config:set"}
    plan = app_manifest.env_plan(ENV, config, secrets_counter(), "demo")
    assert plan == {"DEFAULT": "d", "TOKEN": "secret-1"}


def test_env_plan_keeps_an_existing_secret() -> None:
    config = {"TOKEN": "old", "GIVEN": "x"}
    plan = app_manifest.env_plan(ENV, config, secrets_counter(), "demo")
    assert plan == {"DEFAULT": "d", "KEPT": "manifest"}


def test_env_plan_refuses_a_missing_required_var() -> None:
    manifest = Manifest(env=(EnvVar("API_KEY", description="the shop's\nAPI key"),))
    with pytest.raises(InvalidParams) as raised:
        app_manifest.env_plan(manifest, {}, secrets_counter(), "demo")
    assert raised.value.message == (
        "app.json: env.API_KEY (the shop's API key) is required and has no value: set it "
        "with `paas config:set API_KEY=… -a demo` and push again"
    )


def test_env_plan_names_every_missing_var_at_once() -> None:
    manifest = Manifest(env=(EnvVar("A"), EnvVar("B", "b"), EnvVar("C")))
    with pytest.raises(InvalidParams) as raised:
        app_manifest.env_plan(manifest, {}, secrets_counter(), "demo")
    assert raised.value.message == (
        "app.json: env requires A, C, which have no value: set them with "
        "`paas config:set A=… C=… -a demo` and push again"
    )


def test_formation_plan_checks_the_process_types() -> None:
    manifest = Manifest(formation=(Scale("web", 2), Scale("worker", 1, "standard-2x")))
    types = {"web": "serve", "worker": "work", "release": "migrate"}
    assert app_manifest.formation_plan(manifest, types) == manifest.formation
    with pytest.raises(InvalidParams) as raised:
        app_manifest.formation_plan(manifest, {"web": "serve", "release": "migrate"})
    assert raised.value.message == (
        "app.json: formation.worker: the app has no process type 'worker' (its Procfile and "
        "buildpack give: web); add it to the Procfile or remove it from formation"
    )


def test_env_plan_leaves_the_vars_addons_set_to_them() -> None:
    manifest = Manifest(env=(EnvVar("DATABASE_URL"), EnvVar("REDIS_URL", "redis://default")))
    plan = app_manifest.env_plan(
        manifest, {}, secrets_counter(), "demo", {"DATABASE_URL", "REDIS_URL"}
    )
    assert plan == {}
