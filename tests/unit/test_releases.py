"""Releases against a real SQLite store."""

from pathlib import Path

import pytest

from paas.domain.access import Principal
from paas.domain.errors import InvalidParams, NotFound
from paas.domain.models import UNSETTLED, App, Release
from paas.release import releases
from paas.state.logs import LogStore
from paas.state.store import Store


def deploy(
    env: tuple[Store, LogStore],
    app: App,
    artifact: str,
    commit: str,
    image: str | None = None,
    types: dict[str, str] | None = None,
) -> Release:
    store, logs = env
    built = releases.Build(artifact, types or {"web": "serve"}, image)
    return releases.deploy(store, logs, app, built, commit)


def settle(store: Store, app: App, release: Release | None, status: str = "succeeded") -> None:
    """What the agent does once a release is rolled out (or fails)."""
    assert release is not None
    store.set_release_status(app, release.version, (UNSETTLED, status), None, 0.0)


@pytest.fixture
def env(tmp_path: Path) -> tuple[Store, LogStore]:
    return Store(tmp_path / "state.db"), LogStore(tmp_path / "logs.db")


def test_config_before_deploy_makes_a_release_without_code(env: tuple[Store, LogStore]) -> None:
    """Heroku's way (its CLI reads the newest release after every change): v1 holds the
    config, succeeds at once, and never runs, scales or is rolled back to."""
    store, logs = env
    app = store.create_app("demo", "paas-host", domain="paas.localhost")
    config, v1 = releases.set_config(store, logs, app, {"A": "1"})
    assert config == {"A": "1"} and v1 is not None
    assert (v1.version, v1.status, v1.has_slug, v1.config) == (1, "succeeded", False, config)
    assert store.current_release(app) is None and store.shown_current_release(app) == v1
    with pytest.raises(InvalidParams, match="no code yet"):
        releases.scale(store, logs, app, [{"type": "web", "quantity": 1}])
    v2 = deploy(env, app, "sha256:aa", "1a2b3c4d5e6f")
    settle(store, app, v2)
    assert v2.version == 2 and v2.config == {"A": "1"}
    with pytest.raises(InvalidParams, match="v1 of demo has no code"):
        releases.rollback(store, logs, app, 1)
    with pytest.raises(NotFound, match="no earlier release"):
        releases.rollback(store, logs, app, None)


def test_each_release_records_who_caused_it(env: tuple[Store, LogStore]) -> None:
    store, logs = env
    alice = Principal("u-alice", "alice@example.com")
    bob = Principal("u-bob", "bob@example.com")
    app = store.create_app("demo", "paas-host", domain="paas.localhost")
    v1 = releases.deploy(store, logs, app, releases.Build("sha256:aa", {"web": "x"}), "c1", alice)
    settle(store, app, v1)
    _, v2 = releases.set_config(store, logs, app, {"A": "1"}, by=bob)
    settle(store, app, v2)
    v3 = releases.rollback(store, logs, app, 1, by=alice)
    kept = [(r.version, r.user_id, r.user_email) for r in store.releases(app)]
    assert kept == [
        (1, "u-alice", "alice@example.com"),
        (2, "u-bob", "bob@example.com"),
        (3, "u-alice", "alice@example.com"),
    ]
    assert v3.user_email == "alice@example.com"


def test_deploy_config_and_rollback_versions(env: tuple[Store, LogStore]) -> None:
    store, logs = env
    app = store.create_app("demo", "paas-host", domain="paas.localhost")
    v1 = deploy(env, app, "sha256:aa", "1a2b3c4d5e6f")
    assert (v1.version, v1.description) == (1, "Deploy 1a2b3c4d")
    assert [(f.type, f.quantity) for f in store.formation(app)] == [("web", 1)]
    settle(store, app, v1)
    _, v2 = releases.set_config(store, logs, app, {"FOO": "x", "BAR": "y"})
    settle(store, app, v2)
    assert v2 is not None and v2.description == "Set FOO, BAR config vars"
    assert v2.artifact == "sha256:aa" and v2.config == {"BAR": "y", "FOO": "x"}
    v3 = releases.rollback(store, logs, app, None)
    assert (v3.version, v3.description, v3.config) == (3, "Rollback to v1", {})
    assert store.config(app) == {}
    v4 = releases.rollback(store, logs, app, 2)
    assert (v4.version, v4.artifact, v4.config) == (4, "sha256:aa", v2.config)
    assert store.config(app) == v2.config


def test_bad_config_changes_nothing(env: tuple[Store, LogStore]) -> None:
    store, logs = env
    app = store.create_app("demo", "paas-host", domain="paas.localhost")
    deploy(env, app, "sha256:aa", "abc")
    with pytest.raises(InvalidParams):
        releases.set_config(store, logs, app, {"GOOD": "1", "PORT": "2"})
    with pytest.raises(InvalidParams):
        releases.set_config(store, logs, app, {"BIG": "x" * 40_000})
    assert store.config(app) == {} and len(store.releases(app)) == 1


def test_scale_is_all_or_nothing(env: tuple[Store, LogStore]) -> None:
    store, logs = env
    app = store.create_app("demo", "paas-host", domain="paas.localhost")
    deploy(env, app, "sha256:aa", "abc")
    with pytest.raises(InvalidParams, match="no process type 'worker'"):
        releases.scale(
            store, logs, app, [{"type": "web", "quantity": 3}, {"type": "worker", "quantity": 1}]
        )
    assert store.formation(app)[0].quantity == 1
    releases.scale(store, logs, app, [{"type": "web", "quantity": 3}])
    assert store.formation(app)[0].quantity == 3


def test_rollback_to_unknown_version(env: tuple[Store, LogStore]) -> None:
    store, logs = env
    app = store.create_app("demo", "paas-host", domain="paas.localhost")
    with pytest.raises(NotFound, match="no running release"):
        releases.rollback(store, logs, app, None)


def test_tokens_are_stored_hashed(env: tuple[Store, LogStore], tmp_path: Path) -> None:
    store, _ = env
    store.add_token("s3cret-token", "admin")
    assert store.token_owner("s3cret-token") == "admin"
    assert store.token_owner("other") is None
    assert b"s3cret-token" not in (tmp_path / "state.db").read_bytes()


def test_resize_sets_size_and_restarts_the_type(env: tuple[Store, LogStore]) -> None:
    store, logs = env
    app = store.create_app("demo", "debian-12", domain="paas.localhost")
    deploy(env, app, "sha256:aa", "abc")
    releases.scale(store, logs, app, [{"type": "web", "size": "standard-2x"}])
    assert [(f.quantity, f.size) for f in store.formation(app)] == [(1, "standard-2x")]
    assert store.restart_generations(app) == {"web": 1}
    with pytest.raises(InvalidParams, match="invalid dyno size"):
        releases.scale(store, logs, app, [{"type": "web", "size": "huge"}])
    assert store.formation(app)[0].size == "standard-2x"


def test_rollback_to_a_collected_image_fails_and_changes_nothing(
    env: tuple[Store, LogStore],
) -> None:
    store, logs = env
    app = store.create_app("demo", "debian-12", domain="paas.localhost")
    deploy(env, app, "sha256:aa", "abc", "sha256:img1")
    deploy(env, app, "sha256:bb", "def", "sha256:img2")
    with pytest.raises(NotFound, match="garbage-collected"):
        releases.rollback(store, logs, app, 1, image_exists=lambda digest: digest != "sha256:img1")
    assert len(store.releases(app)) == 2
    v3 = releases.rollback(store, logs, app, 1, image_exists=lambda digest: True)
    assert v3.image == "sha256:img1"


def test_release_phase_keeps_a_release_pending(env: tuple[Store, LogStore]) -> None:
    store, _ = env
    app = store.create_app("demo", "debian-12", domain="paas.localhost")
    v1 = deploy(env, app, "sha256:aa", "abc")
    assert v1.status == "deploying" and store.current_release(app) == v1
    settle(store, app, v1)
    v2 = deploy(env, app, "sha256:bb", "def", types={"web": "serve", "release": "migrate"})
    assert v2.status == "pending"
    current = store.current_release(app)
    assert current is not None and current.version == 1
    assert [f.type for f in store.formation(app)] == ["web"]


def test_a_failed_release_is_skipped_by_config_changes_scale_and_rollback(
    env: tuple[Store, LogStore],
) -> None:
    store, logs = env
    app = store.create_app("demo", "debian-12", domain="paas.localhost")
    settle(store, app, deploy(env, app, "sha256:aa", "abc"))
    settle(store, app, deploy(env, app, "sha256:bb", "def"))
    settle(store, app, deploy(env, app, "sha256:cc", "fed"), "failed")
    _, v4 = releases.set_config(store, logs, app, {"A": "1"})
    assert v4 is not None and v4.artifact == "sha256:bb"
    settle(store, app, v4)
    v5 = releases.rollback(store, logs, app, None)
    assert v5.description == "Rollback to v2"
    with pytest.raises(InvalidParams, match="cannot be scaled"):
        releases.scale(store, logs, app, [{"type": "release", "quantity": 1}])


def test_the_app_listing_and_the_snapshot_give_each_apps_current_release(
    env: tuple[Store, LogStore],
) -> None:
    store, _ = env
    served = store.create_app("served", "paas-host", domain="paas.localhost")
    settle(store, served, deploy(env, served, "sha256:aa", "1a2b3c4d5e6f"))
    failing = deploy(env, served, "sha256:bb", "2b3c4d5e6f7a")
    settle(store, served, failing, "failed")  # v2 failed: v1 is still current
    deploying = store.create_app("deploying", "paas-host", domain="paas.localhost")
    deploy(env, deploying, "sha256:cc", "3c4d5e6f7a8b")
    store.create_app("empty", "paas-host", domain="paas.localhost")
    expected = {app.id: release for app in store.apps() if (release := store.current_release(app))}
    with store.reading() as tx:
        assert tx.current_releases() == expected
    assert expected[served.id].version == 1 and len(expected) == 2
    listed = {(e.app.name, e.release_version, e.released_at) for e in store.app_listing()}
    served_v1 = expected[served.id]
    assert listed == {
        ("served", 1, served_v1.created_at),
        ("deploying", 1, expected[deploying.id].created_at),
        ("empty", None, None),
    }
