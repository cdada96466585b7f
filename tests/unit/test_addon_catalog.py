"""Add-on resources, attachments and their releases against a real SQLite store and a
hand-written fake service (the real servers are in tests/integration/test_addons.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from paas.addons.catalog import Catalog
from paas.addons.service import Plan
from paas.domain.access import Principal
from paas.domain.addons import Addon
from paas.domain.errors import Conflict, InvalidParams, PaasError
from paas.domain.models import UNSETTLED, App
from paas.release import releases
from paas.state.logs import LogStore
from paas.state.store import Store

PLANS = {"hobby": Plan("hobby", 64, 20, "small"), "standard": Plan("standard", 256, 100, "big")}


class FakeService:
    """Provisions nothing real; remembers what it was asked."""

    def __init__(self, name: str, default: str, aliases: tuple[str, ...] = ()) -> None:
        self.name, self.default_attachment, self.aliases = name, default, aliases
        self.plans, self.default_plan = PLANS, "hobby"
        self.live: dict[str, str] = {}
        self.fail = False
        self.fail_endpoint = self.fail_deprovision = False

    def provision(self, addon_id: str, plan: Plan) -> str:
        if self.fail:
            raise PaasError("the server is down")
        self.live[addon_id] = f"{self.name}://u:secret@10.0.0.1/{addon_id}"
        return self.live[addon_id]

    def deprovision(self, addon_id: str) -> None:
        if self.fail_deprovision:
            raise PaasError("the cleanup failed too")
        self.live.pop(addon_id, None)

    def endpoint(self, addon_id: str) -> tuple[str, int]:
        if self.fail_endpoint:
            raise PaasError("no endpoint yet")
        return "10.0.0.1", 5432


Env = tuple[Catalog, FakeService, list[tuple[str, str | None]]]


@pytest.fixture
def env(tmp_path: Path) -> Env:
    store, logs = Store(tmp_path / "state.db"), LogStore(tmp_path / "logs.db")
    pg = FakeService("postgresql", "DATABASE", ("heroku-postgresql", "postgres"))
    redis = FakeService("redis", "REDIS", ("heroku-redis",))
    revoked: list[tuple[str, str | None]] = []
    catalog = Catalog(
        store,
        logs,
        tmp_path,
        {"postgresql": pg, "redis": redis},
        revoke=lambda _home, addon, app, _endpoint: revoked.append((addon, app)),
    )
    return catalog, pg, revoked


def deployed(catalog: Catalog, name: str) -> App:
    store = catalog.store
    app = store.create_app(name, "debian-13", domain="paas.localhost")
    release = releases.deploy(
        store, catalog.logs, app, releases.Build("sha256:aa", {"web": "serve"}), "c0ffee00"
    )
    store.set_release_status(app, release.version, (UNSETTLED, "succeeded"), None, 0.0)
    return app


def test_create_attaches_as_database_with_a_release(env: Env) -> None:
    catalog, pg, _ = env
    app = deployed(catalog, "shop")
    addon, attachment = catalog.create(app, "heroku-postgresql:standard")
    assert (addon.service, addon.plan, attachment.name) == ("postgresql", "standard", "DATABASE")
    assert addon.name.startswith("postgresql-") and addon.id in pg.live
    latest = catalog.store.latest_release(app)
    assert latest is not None and latest.version == 2
    assert latest.description == f"Attach DATABASE (@ref:{addon.name})"
    assert latest.config["DATABASE_URL"] == pg.live[addon.id]
    assert catalog.store.addon_endpoints(app) == [(addon.id, "10.0.0.1", 5432)]


def test_a_second_default_attachment_gets_a_color(env: Env) -> None:
    catalog, _, _ = env
    app = deployed(catalog, "shop")
    catalog.create(app, "postgresql")
    _, second = catalog.create(app, "postgresql")
    assert second.name.startswith("HEROKU_POSTGRESQL_")
    assert f"{second.name}_URL" in catalog.store.config(app)


def test_bad_input_changes_nothing_and_provisions_nothing(env: Env) -> None:
    catalog, pg, _ = env
    app = deployed(catalog, "shop")
    catalog.create(app, "postgresql", name="orders-db")
    before = (catalog.store.releases(app), catalog.store.config(app), dict(pg.live))
    with pytest.raises(Conflict, match=r"already has an attachment named DATABASE.*--as"):
        catalog.create(app, "postgresql", as_name="DATABASE")
    with pytest.raises(Conflict, match="orders-db already exists"):
        catalog.create(app, "postgresql", name="orders-db")
    with pytest.raises(InvalidParams, match="unknown plan 'huge'"):
        catalog.create(app, "postgresql:huge")
    with pytest.raises(InvalidParams, match="unknown add-on service"):
        catalog.create(app, "mysql")
    pg.fail = True
    with pytest.raises(PaasError, match="server is down"):
        catalog.create(app, "postgresql", as_name="OTHER")
    assert (catalog.store.releases(app), catalog.store.config(app), pg.live) == before


def test_config_set_of_a_managed_var_is_refused(env: Env) -> None:
    catalog, _, _ = env
    app = deployed(catalog, "shop")
    catalog.create(app, "postgresql")
    for change in ({"DATABASE_URL": "postgres://elsewhere"}, {"DATABASE_URL": None}):
        with pytest.raises(Conflict, match="DATABASE_URL of shop is set by an add-on"):
            releases.set_config(catalog.store, catalog.logs, app, change)  # type: ignore[arg-type]
    releases.set_config(catalog.store, catalog.logs, app, {"OTHER": "1"})


def test_rollback_keeps_the_current_addon_vars(env: Env) -> None:
    catalog, pg, _ = env
    app = deployed(catalog, "shop")
    releases.set_config(catalog.store, catalog.logs, app, {"A": "1"})  # v2
    old, _ = catalog.create(app, "postgresql", as_name="OLD_DB")  # v3
    catalog.create(app, "redis")  # v4: REDIS_URL
    catalog.destroy(old.name)  # v5: Detach OLD_DB
    back = releases.rollback(catalog.store, catalog.logs, app, 3)
    assert back.config.get("A") == "1" and "OLD_DB_URL" not in back.config
    assert back.config["REDIS_URL"].startswith("redis://")  # attached after v3, kept
    assert catalog.store.config(app) == back.config
    again = releases.rollback(catalog.store, catalog.logs, app, 1)
    assert "A" not in again.config and "REDIS_URL" in again.config
    assert not any(k.startswith("OLD_DB") for k in again.config) and old.id not in pg.live


def test_attach_detach_and_the_firewall_follows(env: Env) -> None:
    catalog, _, revoked = env
    owner, other = deployed(catalog, "shop"), deployed(catalog, "reports")
    addon, _ = catalog.create(owner, "postgresql")
    attachment = catalog.attach(addon.name, other, "SHOP_DB")
    latest = catalog.store.latest_release(other)
    assert latest is not None and latest.description == f"Attach SHOP_DB (@ref:{addon.name})"
    assert latest.config["SHOP_DB_URL"] == addon.url
    with pytest.raises(Conflict, match=r"still attached to reports \(as SHOP_DB\).*detach"):
        catalog.destroy(addon.name)
    with pytest.raises(Conflict, match=r"app shop owns .*still attached to reports"):
        catalog.destroy_app_addons(owner)
    catalog.detach(attachment)
    latest = catalog.store.latest_release(other)
    assert latest is not None and latest.description == f"Detach SHOP_DB (@ref:{addon.name})"
    assert "SHOP_DB_URL" not in latest.config and revoked == [(addon.id, other.id)]
    catalog.destroy_app_addons(owner)
    assert catalog.store.addon_endpoints(owner) == [] and (addon.id, None) in revoked
    with catalog.store.reading() as tx:
        assert tx.addons() == [] and tx.attachments() == []


def test_an_app_without_a_release_gets_the_var_on_its_first_deploy(env: Env) -> None:
    catalog, _, _ = env
    app = catalog.store.create_app("fresh", "debian-13", domain="paas.localhost")
    catalog.create(app, "redis")
    assert catalog.store.releases(app) == []
    first = releases.deploy(
        catalog.store, catalog.logs, app, releases.Build("sha256:aa", {"web": "x"}), "c0ffee00"
    )
    assert first.config["REDIS_URL"].startswith("redis://")


def test_a_failing_cleanup_does_not_hide_why_create_failed(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog, pg, _ = env
    app = deployed(catalog, "shop")
    pg.fail_endpoint = pg.fail_deprovision = True
    with pytest.raises(PaasError, match="no endpoint yet"):
        catalog.create(app, "heroku-postgresql")
    latest = catalog.store.latest_release(app)
    assert latest is not None and latest.version == 1  # nothing released
    assert "could not be deprovisioned" in capsys.readouterr().err  # the operator is told
    (left,) = all_addons(catalog)  # still in sight: destroying it again finishes the job
    assert left.state == "deprovisioning"
    pg.fail_deprovision = False
    catalog.destroy(left.name)
    assert all_addons(catalog) == [] and pg.live == {}


def test_the_row_is_written_before_the_service_provisions(env: Env) -> None:
    catalog, pg, _ = env
    app = deployed(catalog, "shop")
    seen: list[list[str]] = []
    provision = pg.provision

    def watched(addon_id: str, plan: Plan) -> str:
        seen.append([a.state for a in all_addons(catalog) if a.id == addon_id])
        return provision(addon_id, plan)

    pg.provision = watched  # type: ignore[method-assign]
    addon, _ = catalog.create(app, "postgresql")
    assert seen == [["provisioning"]] and addon.state == "provisioned"
    assert [a.state for a in all_addons(catalog)] == ["provisioned"]
    pg.fail = True
    with pytest.raises(PaasError, match="the server is down"):
        catalog.create(app, "postgresql", as_name="OTHER")
    assert [a.id for a in all_addons(catalog)] == [addon.id]  # the failed one's row went


def test_destroy_closes_the_endpoint_only_when_no_other_add_on_shares_it(tmp_path: Path) -> None:
    store, logs = Store(tmp_path / "state.db"), LogStore(tmp_path / "logs.db")
    closed: list[tuple[str, tuple[str, int] | None]] = []
    pg = FakeService("postgresql", "DATABASE")  # every add-on at one endpoint, a cluster's
    catalog = Catalog(
        store,
        logs,
        tmp_path,
        {"postgresql": pg},
        revoke=lambda _home, addon, _app, endpoint: closed.append((addon, endpoint)),
    )
    app = deployed(catalog, "shop")
    first, _ = catalog.create(app, "postgresql")
    second, _ = catalog.create(app, "postgresql", as_name="OTHER")
    catalog.destroy(first.name)
    catalog.destroy(second.name)
    assert closed == [(first.id, None), (second.id, ("10.0.0.1", 5432))]


def all_addons(catalog: Catalog) -> list[Addon]:
    with catalog.store.reading() as tx:
        return tx.addons()


def test_the_releases_of_add_on_changes_record_who_asked(env: Env) -> None:
    catalog, _, _ = env
    app = deployed(catalog, "shop")
    ann = dataclasses.replace(catalog, by=Principal("u-ann", "ann@example.com"))
    _, attachment = ann.create(app, "postgresql")
    ann.attach(attachment.addon_id, app, "SECOND")
    ann.detach(ann.attachment("SECOND", app))
    made = [(r.version, r.user_email) for r in catalog.store.releases(app)]
    assert made == [
        (1, "admin"),
        (2, "ann@example.com"),
        (3, "ann@example.com"),
        (4, "ann@example.com"),
    ]
