"""An app's domains, shaped like the Heroku Platform API's domain resource.

An app lists its own hostname APP.PAAS_DOMAIN (kind `heroku`, as Heroku lists
APP.herokuapp.com) before the custom domains it added (kind `custom`, whose DNS target,
`cname`, is that own hostname). A domain is found by hostname or id. The own hostname
cannot be added or removed: it comes and goes with the app. Custom domains carry ids
stored with them (a migration gave domains from before ids of their own); the own
hostname's id is derived from the app's, so it is the same in every answer.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from paas.api import protocol
from paas.api.context import ctx, find_app, json_body
from paas.domain import identity, validation
from paas.domain.access import Permission
from paas.domain.errors import InvalidParams, NotFound
from paas.domain.models import App
from paas.state.store import CustomDomain

blueprint = Blueprint("domains", __name__)
RANGE_FIELDS = ("hostname", "id")


def own_hostname(app: App) -> str:
    return validation.default_hostname(app.name, ctx().settings.domain)


def domain_json(app: App, kind: str, found: CustomDomain) -> dict[str, object]:
    return {
        "id": found.id,
        "hostname": found.hostname,
        "kind": kind,
        "cname": own_hostname(app) if kind == "custom" else None,
        "status": "succeeded",  # routed as soon as it is added: no certificate to wait for
        "acm_status": None,
        "acm_status_reason": None,
        "sni_endpoint": None,
        "app": {"id": app.id, "name": app.name},
        "created_at": found.created_at,
        "updated_at": found.created_at,
    }


def all_domains(app: App) -> list[dict[str, object]]:
    own = CustomDomain(identity.derived_id("domain", app.id), own_hostname(app), app.created_at)
    return [
        domain_json(app, "heroku", own),
        *(domain_json(app, "custom", d) for d in ctx().store.custom_domains(app)),
    ]


def one_domain(app: App, ref: str) -> dict[str, object]:
    wanted = ref.lower()
    for shown in all_domains(app):
        if wanted in (shown["hostname"], shown["id"]):
            return shown
    raise NotFound(
        f"domain {ref} is not attached to {app.name}: `domains -a {app.name}` lists them"
    )


@blueprint.get("/apps/<name>/domains")
def list_domains(name: str) -> tuple[Response, int]:
    return protocol.listing(all_domains(find_app(name, Permission.VIEW)), RANGE_FIELDS)


@blueprint.get("/apps/<name>/domains/<ref>")
def show_domain(name: str, ref: str) -> Response:
    return jsonify(one_domain(find_app(name, Permission.VIEW), ref))


@blueprint.post("/apps/<name>/domains")
def add_domain(name: str) -> tuple[Response, int]:
    """Body: {"hostname": "www.example.com", "sni_endpoint": null} (no certificates here:
    an sni_endpoint other than null is refused, TLS is the router's)."""
    context, app = ctx(), find_app(name, Permission.MANAGE)
    body = json_body()
    if body.get("sni_endpoint") is not None:
        raise InvalidParams("sni_endpoint must be null: this platform keeps no SNI endpoints")
    hostname = validation.custom_domain(body.get("hostname"), context.settings.domain)
    added = context.store.add_domain(app, hostname, domain=context.settings.domain)
    context.logs.event(app.name, "api", f"Domain {hostname} added")
    return jsonify(domain_json(app, "custom", added)), 201


@blueprint.delete("/apps/<name>/domains/<ref>")
def remove_domain(name: str, ref: str) -> Response:
    context, app = ctx(), find_app(name, Permission.MANAGE)
    shown = one_domain(app, ref)
    if shown["kind"] == "heroku":
        raise InvalidParams(
            f"{shown['hostname']} is the app's own hostname: it goes when the app is destroyed"
        )
    context.store.remove_domain(app, str(shown["hostname"]))
    context.logs.event(app.name, "api", f"Domain {shown['hostname']} removed")
    return jsonify(shown)


@blueprint.get("/apps/<name>/sni-endpoints")
def list_sni_endpoints(name: str) -> tuple[Response, int]:
    """None: `heroku domains:add` asks before adding (TLS certificates are the router's)."""
    find_app(name, Permission.VIEW)
    return protocol.listing([], ("id", "name"))
