"""Add-on resources and attachments: creating, attaching, detaching and destroying them,
each with the release that puts or takes its NAME_URL in the app's config.

Invariants: a bad input changes nothing (every check runs before the service is asked for
anything, and the attachment, the config and the release are one transaction); an add-on's
row is written, as "provisioning", before its service is asked for anything, and a create
that fails deprovisions it again (when that fails too, the row stays "deprovisioning");
an add-on is deleted only
after its service removed everything of it (until then it stays listed as
"deprovisioning", and destroying it again finishes the job); a detached app's dynos lose
their firewall opening to the add-on at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from paas.addons.service import Plan, Service
from paas.domain import access
from paas.domain import addons as model
from paas.domain.access import Principal
from paas.domain.addons import Addon, Attachment
from paas.domain.errors import Conflict, InvalidParams, NotFound
from paas.domain.models import App, Release
from paas.domain.settings import Settings
from paas.host import platform_log
from paas.isolation import addon_firewall
from paas.release import releases
from paas.state.logs import LogStore
from paas.state.store import Store, Tx, now_iso


@dataclass(frozen=True)
class Catalog:
    store: Store
    logs: LogStore
    home: Path  # whose firewall chain the openings are in
    services: Mapping[str, Service]
    # Closes openings (home, add-on id, app id or None for every app's, and an endpoint
    # whose every opening goes): the firewall's.
    revoke: Callable[[Path, str, str | None, tuple[str, int] | None], None] = field(
        default=lambda home, addon, app, endpoint: addon_firewall_revoke(home, addon, app, endpoint)
    )
    by: Principal = access.OPERATOR  # who asks: the releases its changes make record them

    # --- lookups --------------------------------------------------------------------------
    def aliases(self) -> dict[str, str]:
        found = {}
        for name, service in self.services.items():
            found[name] = name
            found.update(dict.fromkeys(service.aliases, name))
        return found

    def service(self, name: str) -> Service:
        if name not in self.services:
            raise NotFound(f"the add-on service {name} is not available on this platform")
        return self.services[name]

    def plan(self, service: Service, plan: str | None) -> Plan:
        chosen = plan or service.default_plan
        if chosen not in service.plans:
            raise InvalidParams(
                f"unknown plan {chosen!r} of {service.name}: choose one of "
                f"{', '.join(service.plans)}"
            )
        return service.plans[chosen]

    def addon(self, id_or_name: str) -> Addon:
        with self.store.reading() as tx:
            return _addon(tx, id_or_name)

    # --- create ---------------------------------------------------------------------------
    def create(
        self,
        app: App,
        service_words: str,
        plan: str | None = None,
        *,
        as_name: str | None = None,
        name: str | None = None,
    ) -> tuple[Addon, Attachment]:
        """A new add-on owned by `app`, attached to it (as the service's default name when
        `as_name` is None); its URL in the app's config and a release for it."""
        service_name, plan_name = model.service_and_plan(service_words, plan, self.aliases())
        service = self.service(service_name)
        chosen_plan = self.plan(service, plan_name)
        addon_name = model.generated_name(service.name) if name is None else model.addon_name(name)
        with self.store.reading() as tx:
            self._check_new(tx, app, service, addon_name, as_name)
        # The row comes first, as "provisioning": whatever provision makes is never out of
        # the store's sight (a kill -9 before the commit leaves a row `addons:destroy`
        # removes, with what was provisioned).
        placeholder = Addon(
            str(uuid.uuid4()), addon_name, service.name, chosen_plan.name, app.id,
            "provisioning", "", "", 0, now_iso(),
        )  # fmt: skip
        with self.store.transaction() as tx:
            self._check_new(tx, app, service, addon_name, as_name)
            tx.insert_addon(placeholder)
        try:
            url = service.provision(placeholder.id, chosen_plan)
            address, port = service.endpoint(placeholder.id)
            addon = replace(placeholder, state="provisioned", url=url, address=address, port=port)
            with self.store.transaction() as tx:
                attachment_name = self._attachment_name(tx, app, service, as_name)
                tx.delete_addon(placeholder)
                tx.insert_addon(addon)
                attachment, release = self._attach(tx, addon, app, attachment_name)
        except BaseException:
            self._undo_create(service, placeholder)
            raise
        self.logs.event(
            app.name, "api", f"Add-on {addon.name} ({service.name}:{addon.plan}) created"
        )
        self._released(app, release)
        return addon, attachment

    def _undo_create(self, service: Service, placeholder: Addon) -> None:
        """Deprovisions what a failed create provisioned and drops its row; a failure of
        that is logged, never raised (the caller sees why the create failed), and leaves
        the row as "deprovisioning", so `addons:destroy` finishes the job."""
        try:
            service.deprovision(placeholder.id)
        except Exception:
            platform_log.exception(
                f"paas addons: {placeholder.name} could not be deprovisioned after its create "
                f"failed: `paas addons:destroy {placeholder.name}` finishes it"
            )
            with self.store.transaction() as tx:
                tx.set_addon_state(placeholder, "deprovisioning")
            return
        with self.store.transaction() as tx:
            tx.delete_addon(placeholder)

    def _check_new(
        self, tx: Tx, app: App, service: Service, addon_name: str, as_name: str | None
    ) -> str:
        if tx.find_addon(addon_name) is not None:
            raise Conflict(f"an add-on named {addon_name} already exists: choose another --name")
        return self._attachment_name(tx, app, service, as_name)

    def _attachment_name(self, tx: Tx, app: App, service: Service, as_name: str | None) -> str:
        taken = [a.name for a in tx.attachments(app=app)]
        addon_vars = tx.addon_vars(app)
        user_vars = [k for k in tx.config(app) if k not in addon_vars]
        fallback = f"HEROKU_{service.name.upper()}"
        return model.choose_attachment(
            as_name, service.default_attachment, fallback, taken, user_vars
        )

    def _attach(
        self, tx: Tx, addon: Addon, app: App, name: str
    ) -> tuple[Attachment, Release | None]:
        attachment = Attachment(str(uuid.uuid4()), addon.id, app.id, name, now_iso())
        tx.insert_attachment(attachment)
        description = model.attach_description(name, addon.name)
        change: dict[str, str | None] = {attachment.var: addon.url}
        return attachment, releases.addon_change(tx, app, change, description, self.by)

    def _released(self, app: App, release: Release | None) -> None:
        if release is not None:
            self.logs.event(
                app.name, "api", f"Release v{release.version} created ({release.description})"
            )

    # --- attach / detach ------------------------------------------------------------------
    def attach(self, addon_ref: str, app: App, as_name: str | None = None) -> Attachment:
        """Attaches an existing add-on to `app` (another app's, or a second name on its own)."""
        with self.store.transaction() as tx:
            addon = _addon(tx, addon_ref)
            if addon.state != "provisioned":
                raise Conflict(f"{addon.name} is being destroyed: it cannot be attached")
            name = self._attachment_name(tx, app, self.service(addon.service), as_name)
            attachment, release = self._attach(tx, addon, app, name)
        self._released(app, release)
        return attachment

    def attachment(self, id_or_name: str, app: App | None = None) -> Attachment:
        with self.store.reading() as tx:
            found = tx.find_attachment(id_or_name, app)
        if found is None:
            where = f" on {app.name}" if app else ""
            raise NotFound(f"no add-on attachment {id_or_name!r}{where}: `paas addons` lists them")
        return found

    def detach(self, attachment: Attachment) -> Attachment:
        """Takes NAME_URL out of the attachment's app (a release) and closes its dynos'
        opening to the add-on; the add-on stays, owned by its app."""
        with self.store.transaction() as tx:
            addon = _addon(tx, attachment.addon_id)
            app = _app(tx, attachment.app_id)
            if addon.app_id == app.id and len(tx.attachments(addon=addon)) == 1:
                raise Conflict(
                    f"{attachment.name} is the last attachment of {addon.name} to its owner "
                    f"{app.name}: destroy the add-on instead (paas addons:destroy {addon.name})"
                )
            release = self._detach(tx, addon, app, attachment)
        if not any(a.addon_id == addon.id for a in self._attached(app)):
            self.revoke(self.home, addon.id, app.id, None)  # the firewall follows, at once
        self._released(app, release)
        return attachment

    def _detach(self, tx: Tx, addon: Addon, app: App, attachment: Attachment) -> Release | None:
        tx.delete_attachment(attachment)
        description = model.detach_description(attachment.name, addon.name)
        return releases.addon_change(tx, app, {attachment.var: None}, description, self.by)

    def _attached(self, app: App) -> list[Attachment]:
        with self.store.reading() as tx:
            return tx.attachments(app=app)

    # --- destroy --------------------------------------------------------------------------
    def destroy(self, addon_ref: str) -> Addon:
        """Detaches the add-on from its owner (a release) and removes everything of it.
        Refused, changing nothing, while another app is attached."""
        with self.store.transaction() as tx:
            addon = _addon(tx, addon_ref)
            _refuse_other_apps(tx, addon)
            owner = _app(tx, addon.app_id)
            made = [self._detach(tx, addon, owner, a) for a in tx.attachments(addon=addon)]
            tx.set_addon_state(addon, "deprovisioning")
        for release in made:
            self._released(owner, release)
        self._finish_destroy(addon)
        self.logs.event(owner.name, "api", f"Add-on {addon.name} destroyed")
        return addon

    def _finish_destroy(self, addon: Addon) -> None:
        self.revoke(self.home, addon.id, None, self._own_endpoint(addon))
        self.service(addon.service).deprovision(addon.id)
        with self.store.transaction() as tx:
            tx.delete_addon(addon)

    def _own_endpoint(self, addon: Addon) -> tuple[str, int] | None:
        """The add-on's endpoint when no other add-on shares it (every postgresql add-on
        of a home shares its cluster's): then every opening to it goes with the add-on,
        whatever add-on its comment names (a port given again to a new server)."""
        with self.store.reading() as tx:
            others = [a for a in tx.addons() if a.id != addon.id]
        shared = any((a.address, a.port) == (addon.address, addon.port) for a in others)
        return None if shared else (addon.address, addon.port)

    def destroy_app_addons(self, app: App) -> None:
        """Before `app` is deleted: refused while another app is attached to one of its
        add-ons; else its own add-ons are destroyed and its attachments to others' go."""
        with self.store.reading() as tx:
            owned = tx.addons(app)
            for addon in owned:
                _refuse_other_apps(tx, addon, destroying_app=True)
        for addon in owned:
            with self.store.transaction() as tx:
                for attachment in tx.attachments(addon=addon):
                    tx.delete_attachment(attachment)
                tx.set_addon_state(addon, "deprovisioning")
            self._finish_destroy(addon)
        for attachment in self._attached(app):
            with self.store.transaction() as tx:
                tx.delete_attachment(attachment)
            self.revoke(self.home, attachment.addon_id, app.id, None)


def addon_firewall_revoke(
    home: Path, addon_id: str, app_id: str | None = None, endpoint: tuple[str, int] | None = None
) -> None:
    """Closes openings; on a host without the firewall (plain processes, not root) there
    are none to close."""
    if addon_firewall.usable():
        addon_firewall.revoke(home, addon_id, app_id, endpoint)


def _refuse_other_apps(tx: Tx, addon: Addon, destroying_app: bool = False) -> None:
    names = tx.app_names()
    others = [a for a in tx.attachments(addon=addon) if a.app_id != addon.app_id]
    if not others:
        return
    first = others[0]
    listed = ", ".join(f"{names.get(a.app_id, a.app_id)} (as {a.name})" for a in others)
    owner = names.get(addon.app_id, addon.app_id)
    what = f"app {owner} owns {addon.name}" if destroying_app else f"{addon.name}"
    raise Conflict(
        f"{what}, which is still attached to {listed}: detach it first "
        f"(paas addons:detach {first.name} -a {names.get(first.app_id, first.app_id)})"
    )


def _addon(tx: Tx, id_or_name: str) -> Addon:
    found = tx.find_addon(id_or_name)
    if found is None:
        raise NotFound(f"add-on {id_or_name!r} not found: `paas addons --all` lists them")
    return found


def _app(tx: Tx, app_id: str) -> App:
    found = tx.app_by_id_or_name(app_id)
    if found is None:
        raise NotFound(f"app {app_id!r} not found: `paas apps` lists the apps")
    return found


def catalog(settings: Settings, services: Mapping[str, Service] | None = None) -> Catalog:
    """The catalog of this platform (`services`: the registry's when None)."""
    if services is None:
        from paas.addons import registry

        services = registry.services(settings)
    return Catalog(
        Store(settings.db_path), LogStore(settings.logs_db_path), settings.home, services
    )


def create_addon(
    settings: Settings,
    app: App,
    service: str,
    plan: str | None = None,
    *,
    as_name: str | None = None,
    name: str | None = None,
    services: Mapping[str, Service] | None = None,
) -> tuple[Addon, Attachment]:
    """Creates an add-on of `service` ("postgresql", "heroku-redis", "postgresql:hobby")
    owned by `app` and attaches it as `as_name` (default: the service's DATABASE/REDIS):
    what `POST /apps/APP/addons` and a push's app.json `addons` both call."""
    return catalog(settings, services).create(app, service, plan, as_name=as_name, name=name)
