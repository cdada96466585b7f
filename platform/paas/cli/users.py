"""`paas login`, `auth:whoami`, `users:add`, `authorizations*`, `access*`, `apps:transfer`
and `audit`: who uses the platform and what they may do, with Heroku's command names,
through the API only. Registered on the `paas` group by importing this module (paas.main
does).

Invariant: a token is never read from argv (`paas login` takes it from a hidden prompt
or stdin) and is printed only where the API hands out a new one (users:add,
authorizations:create), once.
"""

from __future__ import annotations

import sys
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import click

from paas.cli import client, credentials
from paas.cli.commands import (
    ArgumentError,
    Session,
    aligned,
    app_option,
    cli,
    columns,
    echo_json,
    json_option,
    show_time,
)

LEVELS = ("view", "deploy", "operate", "manage")


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _object(answer: object) -> Mapping[str, Any]:
    if not isinstance(answer, dict):
        raise client.PaasCliError("the API answered something other than a JSON object")
    return answer


def _objects(answer: object) -> list[Mapping[str, Any]]:
    if not isinstance(answer, list) or not all(isinstance(a, dict) for a in answer):
        raise client.PaasCliError("the API answered something other than a list of objects")
    return answer


def parse_permissions(text: str) -> list[str]:
    """`deploy,operate` → the names, checked here (nothing is sent for a typo)."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    wrong = [n for n in names if n not in LEVELS]
    if wrong or not names:
        raise ArgumentError(
            f"unknown permission {', '.join(wrong) or '(none)'}: choose from {', '.join(LEVELS)}"
        )
    return names


def permission_names(collaborator: Mapping[str, Any]) -> str:
    found = collaborator.get("permissions") or []
    names = {str(p.get("name")) for p in found if isinstance(p, dict)}
    return ", ".join(n for n in LEVELS if n in names)


def read_login(prompting: bool, given_email: str | None) -> tuple[str | None, str]:
    """(email or None, token). On a terminal: prompts, the token hidden. Else stdin: either
    `EMAIL` and `TOKEN` lines, or one line, the token (a token file)."""
    if prompting:
        email = given_email or click.prompt("Email", default="", show_default=False) or None
        token: str = click.prompt("API token", hide_input=True)
        return email, token.strip()
    lines = [line.strip() for line in sys.stdin.read().splitlines() if line.strip()]
    if not lines or len(lines) > 2:
        raise ArgumentError(
            "give the token on stdin: `EMAIL` and `TOKEN` lines, or the token alone",
            "e.g. paas login < token-file, or run it on a terminal",
        )
    if len(lines) == 2:
        return lines[0], lines[1]
    return given_email, lines[0]


@cli.command("login")
@click.option("--api-url", metavar="URL", help="API address (default: PAAS_API_URL or stored).")
@click.option("--email", metavar="EMAIL", help="Your email (asked for when not given).")
@click.pass_obj
def login(session: Session, api_url: str | None, email: str | None) -> None:
    """Check an email and token against the API and store them for the CLI and `git push`.

    The token is read from stdin when it is not a terminal, else asked for without echo;
    never from the command line, where every local user sees it in `ps`."""
    url = credentials.normalize_api_url(api_url or credentials.default_api_url(session.environ))
    given_email, token = read_login(sys.stdin.isatty(), email)
    token = credentials.check_token(token)
    account = client.ApiClient(url, token).account()
    found = str(account.get("email", account.get("name", "?")))
    if given_email is not None and given_email.strip().lower() != found.lower():
        raise ArgumentError(
            f"that token belongs to {found}, not {given_email.strip()}: nothing was saved",
            "check the email, or use the token the operator gave you",
        )
    stored = credentials.save_credentials(session.environ, credentials.Settings(url, token))
    host = credentials.api_host(url)
    netrc = credentials.save_netrc_entry(session.environ, host, token)
    click.echo(f"Logged in to {url} as {found}")
    click.echo(f"Saved the token in {stored} and in {netrc} (machine {host}, for git push)")


@cli.command("auth:whoami")
@click.pass_obj
def whoami(session: Session) -> None:
    """Print the email of the account the token belongs to."""
    click.echo(str(session.api().account().get("email")))


@cli.command("users:add")
@click.argument("email")
@json_option
@click.pass_obj
def users_add(session: Session, email: str, as_json: bool) -> None:
    """Add a user (the operator only) and print their first token, this once."""
    made = _object(session.api().request("POST", "/users", {"email": email}))
    if as_json:
        echo_json(made)
        return
    click.echo(f"Added user {made.get('email')} ({made.get('id')}). Their first API token,")
    click.echo("shown this once (they sign in with `paas login`):")
    click.echo(str(made.get("token")))


@cli.command("users:remove")
@click.argument("email")
@click.pass_obj
def users_remove(session: Session, email: str) -> None:
    """Remove a user (the operator only): their tokens stop working, their access goes."""
    session.api().request("DELETE", f"/users/{_quote(email)}")
    click.echo(f"Removed user {email}: their tokens no longer work")


@cli.command("users")
@json_option
@click.pass_obj
def users_list(session: Session, as_json: bool) -> None:
    """List the platform's users (the operator only)."""
    found = _objects(session.api().request("GET", "/users"))
    if as_json:
        echo_json(found)
        return
    rows = [[str(u.get("email")), str(u.get("id")), show_time(u.get("created_at"))] for u in found]
    for line in columns([["EMAIL", "ID", "CREATED"], *rows]):
        click.echo(line)


# --- authorizations --------------------------------------------------------------------
def _expiry(found: Mapping[str, Any]) -> str:
    token = found.get("access_token")
    seconds = token.get("expires_in") if isinstance(token, dict) else None
    return "never" if seconds is None else f"in {seconds} s"


@cli.command("authorizations")
@json_option
@click.pass_obj
def authorizations(session: Session, as_json: bool) -> None:
    """List your API tokens (their ids and descriptions; a token itself is never shown)."""
    found = _objects(session.api().request("GET", "/oauth/authorizations"))
    if as_json:
        echo_json(found)
        return
    if not found:
        click.echo("No authorizations.")
        return
    rows = [
        [str(a.get("id")), str(a.get("description")), show_time(a.get("created_at")), _expiry(a)]
        for a in found
    ]
    for line in columns([["ID", "DESCRIPTION", "CREATED", "EXPIRES"], *rows]):
        click.echo(line)


@cli.command("authorizations:create")
@click.option("-d", "--description", default="", help="What the token is for.")
@click.option(
    "-e", "--expires-in", type=click.IntRange(min=1), help="Seconds until it stops working."
)
@json_option
@click.pass_obj
def authorizations_create(
    session: Session, description: str, expires_in: int | None, as_json: bool
) -> None:
    """Make a new API token for yourself and print it, this once."""
    body: dict[str, object] = {"description": description or None, "expires_in": expires_in}
    made = _object(session.api().request("POST", "/oauth/authorizations", body))
    if as_json:
        echo_json(made)
        return
    token = made.get("access_token")
    for line in aligned(
        [
            ("ID", made.get("id")),
            ("Description", made.get("description")),
            ("Expires", _expiry(made)),
            ("Token", token.get("token") if isinstance(token, dict) else "?"),
        ]
    ):
        click.echo(line)


@cli.command("authorizations:revoke")
@click.argument("token_id", metavar="ID")
@click.pass_obj
def authorizations_revoke(session: Session, token_id: str) -> None:
    """Revoke one of your tokens: it stops working at once."""
    done = _object(session.api().request("DELETE", f"/oauth/authorizations/{_quote(token_id)}"))
    click.echo(f"Revoked authorization {done.get('id')} ({done.get('description')})")


# --- access --------------------------------------------------------------------------
def format_access(found: Sequence[Mapping[str, Any]]) -> list[str]:
    """The owner first, then the collaborators by email."""
    rows = sorted(
        ([str((c.get("user") or {}).get("email")), str(c.get("role")), permission_names(c)]
         for c in found),
        key=lambda row: (row[1] != "owner", row[0]),
    )  # fmt: skip
    return columns([["EMAIL", "ROLE", "PERMISSIONS"], *rows])


@cli.command("access")
@app_option
@json_option
@click.pass_obj
def access(session: Session, app_name: str | None, as_json: bool) -> None:
    """List who may use the app: its owner and collaborators, with their permissions."""
    name = session.app(app_name)
    found = _objects(session.api().request("GET", f"/apps/{_quote(name)}/collaborators"))
    if as_json:
        echo_json(found)
        return
    click.echo(f"=== {name} Access")
    for line in format_access(found):
        click.echo(line)


def _permissions_option(f: Any) -> Any:
    return click.option(
        "-p",
        "--permissions",
        metavar="LIST",
        help="Comma-separated: view, deploy, operate, manage (each implies those before).",
    )(f)


@cli.command("access:add")
@click.argument("email")
@app_option
@_permissions_option
@click.pass_obj
def access_add(session: Session, email: str, app_name: str | None, permissions: str | None) -> None:
    """Let a user of the platform use the app, with the permissions given (deploy when
    none are given)."""
    name = session.app(app_name)
    body: dict[str, object] = {"user": email}
    if permissions is not None:
        body["permissions"] = parse_permissions(permissions)
    made = _object(session.api().request("POST", f"/teams/apps/{_quote(name)}/collaborators", body))
    click.echo(f"Added {email} to {name} with {permission_names(made)}")


@cli.command("access:update")
@click.argument("email")
@app_option
@_permissions_option
@click.pass_obj
def access_update(
    session: Session, email: str, app_name: str | None, permissions: str | None
) -> None:
    """Change a collaborator's permissions on the app."""
    if permissions is None:
        raise ArgumentError("give the new permissions: --permissions deploy,operate")
    name = session.app(app_name)
    path = f"/teams/apps/{_quote(name)}/collaborators/{_quote(email)}"
    made = _object(
        session.api().request("PATCH", path, {"permissions": parse_permissions(permissions)})
    )
    click.echo(f"{email} now holds {permission_names(made)} on {name}")


@cli.command("access:remove")
@click.argument("email")
@app_option
@click.pass_obj
def access_remove(session: Session, email: str, app_name: str | None) -> None:
    """Take a collaborator's access to the app away."""
    name = session.app(app_name)
    session.api().request("DELETE", f"/apps/{_quote(name)}/collaborators/{_quote(email)}")
    click.echo(f"Removed {email} from {name}")


@cli.command("apps:transfer")
@click.argument("recipient", metavar="EMAIL")
@app_option
@click.pass_obj
def apps_transfer(session: Session, recipient: str, app_name: str | None) -> None:
    """Give the app to another user: they own it, you keep no access to it."""
    name = session.app(app_name)
    session.api().request("POST", "/account/app-transfers", {"app": name, "recipient": recipient})
    click.echo(f"Transferred {name} to {recipient}")


# --- audit ---------------------------------------------------------------------------
def format_audit(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = [
        [
            str(e.get("created_at")),
            str((e.get("user") or {}).get("email")),
            str(e.get("source_ip")),
            f"{e.get('method')} {e.get('path')}",
            str(e.get("status")),
            str((e.get("app") or {}).get("name") or "-"),
            str(e.get("request_id")),
        ]
        for e in entries
    ]
    header = ["TIME", "USER", "SOURCE", "REQUEST", "STATUS", "APP", "REQUEST ID"]
    return columns([header, *rows])


@cli.command("audit")
@click.option("-a", "--app", "app_name", metavar="APP", help="Only this app's changes.")
@click.option("-n", "--num", type=click.IntRange(1, 1000), default=100, show_default=True)
@json_option
@click.pass_obj
def audit(session: Session, app_name: str | None, num: int, as_json: bool) -> None:
    """List the changes made through the API: who, when, from where, what."""
    query = {"limit": str(num), **({"app": app_name} if app_name else {})}
    found = _objects(session.api().request("GET", "/audit", query=query))
    if as_json:
        echo_json(found)
        return
    for line in format_audit(found):
        click.echo(line)
