"""The pure rules of users and access: the API call bucket, permission names, emails."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paas.cli.commands import ArgumentError
from paas.cli.users import format_access, parse_permissions
from paas.domain import access
from paas.domain.access import Permission
from paas.domain.errors import InvalidParams
from paas.state import database, ratelimit, users
from paas.state import store as store_module

POLICY = ratelimit.CallPolicy(capacity=3, per_seconds=30)  # one call back every 10 s


def takes(times: list[float]) -> list[ratelimit.Take]:
    state, seen = None, []
    for now in times:
        taken = ratelimit.take_call(state, now, POLICY)
        if taken.allowed:
            state = (taken.level, now)
        seen.append(taken)
    return seen


def test_a_new_caller_has_a_full_bucket_and_the_call_past_it_is_refused() -> None:
    seen = takes([0, 0, 0, 0])
    assert [t.remaining for t in seen] == [2, 1, 0, 0]
    assert [t.allowed for t in seen] == [True, True, True, False]
    assert ratelimit.seconds_until_call(seen[-1].level, POLICY) == pytest.approx(10)


def test_the_bucket_refills_with_time_and_never_above_its_capacity() -> None:
    assert [t.allowed for t in takes([0, 0, 0, 0, 10])] == [True, True, True, False, True]
    assert takes([0, 1000])[-1].remaining == 2


@given(st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=40))
def test_no_more_calls_are_allowed_than_capacity_plus_refill(offsets: list[float]) -> None:
    times = sorted(offsets)
    allowed = sum(t.allowed for t in takes(times))
    assert allowed <= POLICY.capacity + (times[-1] - times[0]) * POLICY.rate + 1e-9


def test_permissions_imply_those_before_them() -> None:
    assert Permission.OPERATE.implied() == ["view", "deploy", "operate"]
    assert access.parse_permission(["view", "deploy"]) == Permission.DEPLOY
    assert access.parse_permission("manage,view") == Permission.MANAGE
    with pytest.raises(InvalidParams, match="unknown permission 'admin'"):
        access.parse_permission("admin")


def test_the_cli_checks_permission_names_before_sending_anything() -> None:
    assert parse_permissions("deploy, operate") == ["deploy", "operate"]
    with pytest.raises(ArgumentError, match="unknown permission owner"):
        parse_permissions("deploy,owner")


@pytest.mark.parametrize("good", ["ada@example.com", "a.b+c@mail.example.org"])
def test_emails_are_checked(good: str) -> None:
    assert access.email(f" {good} ") == good


@pytest.mark.parametrize("bad", ["admin", "a@b", "a b@example.com", "", None, 3, "@x.y"])
def test_a_bad_email_names_the_fix(bad: object) -> None:
    with pytest.raises(InvalidParams, match="is not an email address"):
        access.email(bad)


def test_a_database_from_before_users_is_migrated_and_its_tokens_are_the_operators(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.db"
    database.create(path, store_module.SCHEMA)  # the tables as they were: no users, no ids
    old = sqlite3.connect(path)
    old.execute(
        "INSERT INTO tokens (hash, name, created_at) VALUES (?, 'ci', 'then')",
        (store_module.token_hash("old-ci-token-" + "x" * 20),),
    )
    old.execute("INSERT INTO apps (id, name, stack, created_at) VALUES ('a1', 'old-app', 's', 't')")
    old.commit()
    old.close()
    store = store_module.Store(path)
    assert store.token_principal("old-ci-token-" + "x" * 20) == access.OPERATOR
    app = store.app("old-app")
    assert store.owner_of(app) == access.OPERATOR
    with store.reading() as tx:
        (found,) = users.authorizations(tx, access.OPERATOR, 0)
    assert found.description == "ci" and len(found.id) == 36
    store_module.Store(path)  # a second open changes nothing
    with store.reading() as tx:
        assert [a.id for a in users.authorizations(tx, access.OPERATOR, 0)] == [found.id]


def test_access_lists_the_owner_first_then_collaborators_by_email() -> None:
    def entry(email: str, role: str, *names: str) -> dict[str, object]:
        return {"user": {"email": email}, "role": role, "permissions": [{"name": n} for n in names]}

    lines = format_access(
        [
            entry("zed@example.com", "collaborator", "view"),
            entry("bob@example.com", "collaborator", "deploy", "view"),
            entry("owner@example.com", "owner", "view", "deploy", "operate", "manage"),
        ]
    )
    assert [line.split()[0] for line in lines] == [
        "EMAIL",
        "owner@example.com",
        "bob@example.com",
        "zed@example.com",
    ]
    assert lines[2].split(None, 2)[2] == "view, deploy"
