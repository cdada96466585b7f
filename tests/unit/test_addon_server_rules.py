"""The add-on servers' pure parts: restart backoff, redis.conf, database names, plans,
the pg API's attachment names and the CLI's backup table."""

from __future__ import annotations

from pathlib import Path

import pytest

from paas.addons import postgresql, redis
from paas.addons.supervisor import BACKOFF_MAX, Backoff
from paas.api.pg import config_var
from paas.cli.pg import format_backups, human_size
from paas.domain.errors import InvalidParams


def test_backoff_doubles_up_to_a_minute_and_resets_on_success() -> None:
    backoff = Backoff()
    assert backoff.ready("pg", 0.0)
    delays = [backoff.failed("pg", 100.0) for _ in range(8)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, BACKOFF_MAX, BACKOFF_MAX]
    assert not backoff.ready("pg", 159.0) and backoff.ready("pg", 160.0)
    assert backoff.ready("redis x", 100.0)  # one server's failures delay no other
    backoff.succeeded("pg")
    assert backoff.ready("pg", 0.0) and backoff.failed("pg", 0.0) == 1.0


def test_redis_config_caps_memory_clients_and_commands() -> None:
    text = redis.config("10.213.0.1", 40001, "s3cret", redis.PLANS["hobby"], Path("/h/r/x"))
    lines = text.splitlines()
    assert "bind 10.213.0.1" in lines and "port 40001" in lines
    assert "protected-mode yes" in lines and "requirepass s3cret" in lines
    assert "maxmemory 25mb" in lines and "maxmemory-policy noeviction" in lines
    assert "maxclients 20" in lines and "appendonly yes" in lines
    assert "dir /h/r/x/data" in lines
    for name in (
        *("CONFIG", "DEBUG", "SHUTDOWN", "ACL", "REPLICAOF", "SLAVEOF"),
        "MODULE",
        "MIGRATE",
    ):
        assert f'rename-command {name} ""' in lines


def test_redis_protocol_encoding() -> None:
    assert redis.command("AUTH", "pw") == b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"


def test_database_names_are_plain_unique_identifiers() -> None:
    name = postgresql.object_name("postgresql-shaped-12345")
    assert name.startswith("a_postgresql_shaped_12345_") and len(name) <= 63
    assert postgresql.object_name("A.b") != postgresql.object_name("a-b")
    assert postgresql.object_name("x" * 100).isidentifier()
    assert len(postgresql.object_name("x" * 100)) <= 63


def test_plans_share_names_and_are_shown() -> None:
    for plans in (postgresql.PLANS, redis.PLANS):
        assert set(plans) == {"hobby", "standard"}
        assert plans["standard"].connections > plans["hobby"].connections
        assert plans["standard"].memory_mb > plans["hobby"].memory_mb
        assert all(p.summary.startswith(p.name) for p in plans.values())
    assert postgresql.work_mem_mb(postgresql.PLANS["hobby"]) == 3


def test_attachment_names_become_config_vars() -> None:
    assert config_var(None) == "DATABASE_URL"
    assert config_var("ROSE") == "ROSE_URL"
    assert config_var("heroku_postgresql_rose_url") == "HEROKU_POSTGRESQL_ROSE_URL"
    for bad in ("1X", "A B", "X;DROP", 7, "A" * 61):  # the add-ons' rule: 60 at most
        with pytest.raises(InvalidParams):
            config_var(bad)


def test_backups_table_is_newest_first() -> None:
    rows = [
        {"id": "b001", "created_at": "2026-12-01T02:00:00+00:00", "status": "Completed",
         "size": 2048, "scheduled": False},
        {"id": "a002", "created_at": "2026-12-02T02:00:00+00:00", "status": "Completed",
         "size": 10, "scheduled": True},
    ]  # fmt: skip
    lines = format_backups(rows)
    assert lines[0].split() == ["ID", "Created", "at", "Status", "Size", "Kind"]
    assert lines[1].split()[0] == "a002" and lines[1].split()[-1] == "scheduled"
    assert "2.00kB" in lines[2]
    assert human_size(5) == "5B" and human_size(3 * 1024 * 1024) == "3.00MB"


def test_scram_verifier_has_postgresql_shape_and_depends_on_salt() -> None:
    one = postgresql.scram_verifier("pw", b"0123456789abcdef")
    assert one == postgresql.scram_verifier("pw", b"0123456789abcdef")
    assert one != postgresql.scram_verifier("pw", b"fedcba9876543210")
    head, keys = one.split("$", 1)[1].split("$")
    assert head == "4096:MDEyMzQ1Njc4OWFiY2RlZg=="
    stored, server = keys.split(":")
    assert len(stored) == len(server) == 44  # base64 of 32 bytes


def test_a_loading_redis_is_told_from_a_down_one() -> None:
    assert redis.state(b"+OK\r\n+PONG\r\n") == "ready"
    loading = b"+OK\r\n-LOADING Redis is loading the dataset in memory\r\n"
    assert redis.state(loading) == "loading"  # wait for it: never start a second server
    assert redis.state(None) == "down"
    assert redis.state(b"-WRONGPASS invalid username-password pair\r\n") == "down"
