"""The pure rules of add-ons: names, service and plan words, attachment names, and the
config a rollback gets."""

import re

import pytest

from paas.domain import addons
from paas.domain.errors import Conflict, InvalidParams

ALIASES = {"postgresql": "postgresql", "heroku-postgresql": "postgresql", "redis": "redis"}


def test_generated_names_have_herokus_shape() -> None:
    name = addons.generated_name("postgresql")
    assert re.fullmatch(r"postgresql-[a-z]+-\d{5}", name)
    assert addons.addon_name(name) == name
    assert addons.generated_name("redis", lambda n: 0) == f"redis-{addons.ADJECTIVES[0]}-10000"


@pytest.mark.parametrize("bad", ["", "A-db", "1db", "db-", "x" * 70, "db_1", 3])
def test_bad_addon_names_are_refused(bad: object) -> None:
    with pytest.raises(InvalidParams, match="invalid add-on name"):
        addons.addon_name(bad)


@pytest.mark.parametrize(
    ("words", "plan", "expected"),
    [
        ("postgresql", None, ("postgresql", None)),
        ("heroku-postgresql:standard", None, ("postgresql", "standard")),
        ("postgresql:hobby", "hobby", ("postgresql", "hobby")),
        ("Redis", "standard", ("redis", "standard")),
    ],
)
def test_service_and_plan(words: str, plan: str | None, expected: tuple[str, str | None]) -> None:
    assert addons.service_and_plan(words, plan, ALIASES) == expected


def test_unknown_service_and_two_plans_are_refused() -> None:
    with pytest.raises(InvalidParams, match=r"unknown add-on service 'mysql'.*postgresql, redis"):
        addons.service_and_plan("mysql", None, ALIASES)
    with pytest.raises(InvalidParams, match="two plans"):
        addons.service_and_plan("postgresql:hobby", "standard", ALIASES)


def test_attachment_names() -> None:
    assert addons.attachment_name("analytics-db") == "ANALYTICS_DB"
    for bad in ("1DB", "DB_URL", "", "D B"):
        with pytest.raises(InvalidParams, match="invalid attachment name"):
            addons.attachment_name(bad)


def test_default_then_herokus_color_names() -> None:
    choose = addons.choose_attachment
    assert choose(None, "DATABASE", "HEROKU_POSTGRESQL", [], []) == "DATABASE"
    second = choose(None, "DATABASE", "HEROKU_POSTGRESQL", ["DATABASE"], [])
    assert second == f"HEROKU_POSTGRESQL_{addons.COLORS[0]}"
    third = choose(None, "DATABASE", "HEROKU_POSTGRESQL", ["DATABASE", second], [])
    assert third == f"HEROKU_POSTGRESQL_{addons.COLORS[1]}"
    # The app's own DATABASE_URL is never overwritten: the default moves on.
    assert choose(None, "DATABASE", "HEROKU_POSTGRESQL", [], ["DATABASE_URL"]) == second


def test_an_explicit_name_must_be_free() -> None:
    with pytest.raises(Conflict, match=r"already has an attachment named DATABASE.*--as"):
        addons.choose_attachment("database", "DATABASE", "X", ["DATABASE"], [])
    with pytest.raises(Conflict, match=r"own config var CACHE_URL.*config:unset CACHE_URL"):
        addons.choose_attachment("CACHE", "REDIS", "X", [], ["CACHE_URL"])
    assert addons.choose_attachment("cache", "REDIS", "X", ["REDIS"], []) == "CACHE"


def test_rollback_config_keeps_the_current_addon_vars() -> None:
    old = {"A": "1", "DATABASE_URL": "postgres://old", "OLD_DB_URL": "postgres://gone"}
    current = {"DATABASE_URL": "postgres://now", "REDIS_URL": "redis://now"}
    config = addons.rollback_config(old, {"DATABASE_URL", "OLD_DB_URL"}, current)
    assert config == {"A": "1", "DATABASE_URL": "postgres://now", "REDIS_URL": "redis://now"}


def test_descriptions_are_herokus() -> None:
    assert addons.attach_description("DATABASE", "postgresql-shaped-12345") == (
        "Attach DATABASE (@ref:postgresql-shaped-12345)"
    )
    assert addons.detach_description("REDIS", "redis-deep-10000") == (
        "Detach REDIS (@ref:redis-deep-10000)"
    )
