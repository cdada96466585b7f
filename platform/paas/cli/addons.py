"""`paas addons*`: add-on resources and attachments, with Heroku's command names and
arguments (`addons:create heroku-postgresql:hobby --as DB`, `addons:attach ADDON -a OTHER`,
`addons:destroy ADDON --confirm APP`), through the API only. Registered on the `paas`
group by importing this module (paas.main does).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import click

from paas.cli import client
from paas.cli.commands import (
    ArgumentError,
    Session,
    aligned,
    app_option,
    cli,
    columns,
    echo_json,
    json_option,
)


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _name(value: object) -> str:
    return str(value.get("name", "")) if isinstance(value, dict) else ""


def _attachments(addon: Mapping[str, Any]) -> list[str]:
    found = addon.get("attachments")
    return [f"{_name(a.get('app'))}::{a.get('name')}" for a in found or [] if isinstance(a, dict)]


def _latest_version(api: client.ApiClient, app: str) -> str:
    found = api.request("GET", f"/apps/{_quote(app)}/releases")
    if isinstance(found, list) and found and isinstance(found[-1], dict):
        return f", v{found[-1].get('version')}"
    return " (the app has no release yet: the next deploy has it)"


def addon_rows(addons: Sequence[Mapping[str, Any]]) -> list[str]:
    """The `paas addons` table: one row per add-on, its attachments below it."""
    rows = [["Owning app", "Add-on", "Plan", "State"]]
    for addon in addons:
        plan = addon.get("plan")
        rows.append(
            [_name(addon.get("app")), str(addon.get("name")), _name(plan), str(addon.get("state"))]
        )
    lines = columns(rows)
    out = [lines[0]]
    for line, addon in zip(lines[1:], addons, strict=True):
        out.append(line)
        out += [f" └─ as {shown}" for shown in _attachments(addon)]
    return out


def _find(session: Session, addon: str, app_name: str | None) -> Any:
    """The add-on by id or name, or with -a by one of that app's attachment names."""
    if app_name:
        return session.api().request("GET", f"/apps/{_quote(app_name)}/addons/{_quote(addon)}")
    return session.api().request("GET", f"/addons/{_quote(addon)}")


@cli.command("addons")
@click.option("-A", "--all", "all_apps", is_flag=True, help="Every app's add-ons.")
@app_option
@json_option
@click.pass_obj
def addons(session: Session, all_apps: bool, app_name: str | None, as_json: bool) -> None:
    """List the app's add-ons (its own and those attached to it), or all with --all."""
    api = session.api()
    path = "/addons" if all_apps else f"/apps/{_quote(session.app(app_name))}/addons"
    found = api.request("GET", path) or []
    if as_json:
        echo_json(found)
        return
    if not found:
        where = "this platform" if all_apps else session.app(app_name)
        click.echo(f"No add-ons on {where}: paas addons:create postgresql")
        return
    for line in addon_rows(found):
        click.echo(line)


@cli.command("addons:create")
@click.argument("service", metavar="SERVICE[:PLAN]")
@click.option("--plan", metavar="PLAN", help="hobby or standard (default: hobby).")
@click.option("--as", "as_name", metavar="NAME", help="Attachment name: NAME_URL is set.")
@click.option("--name", metavar="NAME", help="The add-on's name (default: generated).")
@app_option
@json_option
@click.pass_obj
def addons_create(
    session: Session,
    service: str,
    plan: str | None,
    as_name: str | None,
    name: str | None,
    app_name: str | None,
    as_json: bool,
) -> None:
    """Create an add-on (postgresql, redis) and attach it to the app."""
    app = session.app(app_name)
    words = f"{service}:{plan}" if plan and ":" not in service else service
    if plan and ":" in service and service.split(":", 1)[1] != plan:
        raise ArgumentError(f"two plans given ({service!r} and --plan {plan!r}): give one")
    body: dict[str, object] = {"plan": words}
    if as_name:
        body["attachment"] = {"name": as_name}
    if name:
        body["name"] = name
    if not as_json:
        click.echo(f"Creating {words} on {app}...", nl=False)
    addon = session.api().request("POST", f"/apps/{_quote(app)}/addons", body)
    if as_json:
        echo_json(addon)
        return
    click.echo(" done")
    shown = ", ".join(addon.get("config_vars") or []) or "its config var"
    click.echo(f"Created {addon.get('name')} as {shown}{_latest_version(session.api(), app)}")
    click.echo(f"Use paas addons:info {addon.get('name')} to see its plan and attachments")


@cli.command("addons:info")
@click.argument("addon")
@app_option
@json_option
@click.pass_obj
def addons_info(session: Session, addon: str, app_name: str | None, as_json: bool) -> None:
    """Show an add-on (its name, or an attachment's with -a): plan, owner, attachments."""
    found = _find(session, addon, app_name)
    if as_json:
        echo_json(found)
        return
    plan = found.get("plan") or {}
    sizing = (
        f"{plan.get('memory_mb')} MB, {plan.get('connections')} connections"
        if plan.get("memory_mb") is not None
        else None
    )
    click.echo(f"=== {found.get('name')}")
    pairs = [
        ("Attachments", ", ".join(_attachments(found)) or "none"),
        ("Installed at", found.get("created_at")),
        ("Owning app", _name(found.get("app"))),
        ("Plan", _name(plan)),
        ("Plan size", sizing),
        ("Plan summary", plan.get("summary")),
        ("Service", _name(found.get("addon_service"))),
        ("State", found.get("state")),
    ]
    for line in aligned((k, v) for k, v in pairs if v is not None):
        click.echo(line)


@cli.command("addons:attach")
@click.argument("addon")
@click.option("--as", "as_name", metavar="NAME", help="Attachment name: NAME_URL is set.")
@app_option
@click.pass_obj
def addons_attach(session: Session, addon: str, as_name: str | None, app_name: str | None) -> None:
    """Attach an existing add-on to the app (-a OTHER): its URL in NAME_URL."""
    app = session.app(app_name)
    body: dict[str, object] = {"addon": addon, "app": app}
    if as_name:
        body["name"] = as_name
    click.echo(f"Attaching {addon} to {app}...", nl=False)
    attachment = session.api().request("POST", "/addon-attachments", body)
    click.echo(" done")
    click.echo(
        f"Setting {attachment.get('config_var')} config vars and restarting {app}... done"
        + _latest_version(session.api(), app)
    )


@cli.command("addons:detach")
@click.argument("attachment", metavar="ATTACHMENT")
@app_option
@click.pass_obj
def addons_detach(session: Session, attachment: str, app_name: str | None) -> None:
    """Detach an attachment (its name, e.g. DATABASE) from the app: NAME_URL goes."""
    app = session.app(app_name)
    api = session.api()
    found = api.request("GET", f"/apps/{_quote(app)}/addon-attachments/{_quote(attachment)}")
    addon = _name(found.get("addon"))
    click.echo(f"Detaching {found.get('name')} to {addon} from {app}...", nl=False)
    api.request("DELETE", f"/addon-attachments/{_quote(str(found.get('id')))}")
    click.echo(" done")
    click.echo(
        f"Unsetting {found.get('config_var')} config vars and restarting {app}... done"
        + _latest_version(api, app)
    )


@cli.command("addons:destroy")
@click.argument("addon")
@click.option("--confirm", metavar="APP", help="The owning app's name: its data is deleted.")
@app_option
@click.pass_obj
def addons_destroy(session: Session, addon: str, confirm: str | None, app_name: str | None) -> None:
    """Destroy an add-on and everything in it (refused while another app is attached)."""
    api = session.api()
    found = _find(session, addon, app_name)
    owner = _name(found.get("app"))
    if app_name and app_name != owner:
        raise ArgumentError(f"{found.get('name')} is owned by {owner}, not {app_name}")
    if confirm != owner:
        raise ArgumentError(
            f"destroying {found.get('name')} deletes its data for good",
            f"confirm with: paas addons:destroy {found.get('name')} --confirm {owner}",
        )
    click.echo(f"Destroying {found.get('name')} on {owner}...", nl=False)
    api.request(
        "DELETE",
        f"/apps/{_quote(owner)}/addons/{_quote(str(found.get('id')))}",
        query={"confirm": owner},
    )
    click.echo(" done")
