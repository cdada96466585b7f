"""`paas pg:*` and `paas redis:cli`: the add-on servers' commands (Heroku's names).

pg:backups:* go through the API. pg:psql and redis:cli run the host's psql and redis-cli
with the app's credentials (its DATABASE_URL / REDIS_URL, read through the API): the
servers listen only where dynos reach them (the dyno bridge's host address, or loopback),
so these work on the platform's own host, the network path every dyno uses; elsewhere
they say so. The password goes to the client in its environment (PGPASSWORD,
REDISCLI_AUTH), never in argv, where every local user could read it.

Invariant: the exit status is the client program's own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from paas.cli import client
from paas.cli.commands import (
    ArgumentError,
    Session,
    app_option,
    cli,
    columns,
    echo_json,
    json_option,
    show_time,
)

DEFAULT_DATABASE = "DATABASE"
DEFAULT_REDIS = "REDIS"
DUMP_TIMEOUT = 3600.0  # a capture or restore answers when pg_dump / pg_restore ended


def long_api(session: Session) -> client.ApiClient:
    """The API client with a timeout for calls that last as long as a dump."""
    api = session.api()
    return client.ApiClient(api.api_url, api.token, timeout=DUMP_TIMEOUT)


def var_of(attachment: str | None, default: str) -> str:
    name = (attachment or default).upper()
    return name if name.endswith("_URL") else f"{name}_URL"


def human_size(size: int) -> str:
    """1536 → 1.50kB, as Heroku's pg:backups shows sizes."""
    if size < 1024:
        return f"{size}B"
    value = float(size)
    for unit in ("kB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.2f}{unit}"


def format_backups(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Heroku's table: newest first."""
    table = [["ID", "Created at", "Status", "Size", "Kind"]]
    for b in reversed(rows):
        status = str(b.get("status", "?"))
        table.append(
            [
                str(b.get("id")),
                show_time(b.get("created_at")),
                status,
                human_size(int(b.get("size") or 0)),
                "scheduled" if b.get("scheduled") else "manual",
            ]
        )
    return columns(table)


def _pg_path(app: str, *parts: str) -> str:
    quoted = [urllib.parse.quote(p, safe="") for p in (app, *parts)]
    return "/apps/" + "/".join([quoted[0], "pg", "backups", *quoted[1:]])


@cli.command("pg:backups")
@click.argument("database", required=False)
@app_option
@json_option
@click.pass_obj
def pg_backups(session: Session, database: str | None, app_name: str | None, as_json: bool) -> None:
    """List the backups of the app's database (DATABASE by default)."""
    name = session.app(app_name)
    query = {"database": database} if database else None
    rows = session.api().request("GET", _pg_path(name), query=query)
    if as_json:
        echo_json(rows)
        return
    click.echo(f"=== Backups of {name}'s {database or DEFAULT_DATABASE}")
    if not rows:
        click.echo(f"No backups. Capture one with: paas pg:backups:capture -a {name}")
        return
    for line in format_backups(rows):
        click.echo(line)


@cli.command("pg:backups:capture")
@click.argument("database", required=False)
@app_option
@click.pass_obj
def pg_backups_capture(session: Session, database: str | None, app_name: str | None) -> None:
    """Back up the app's database now."""
    name = session.app(app_name)
    body = {"database": database} if database else {}
    backup = long_api(session).request("POST", _pg_path(name), body)
    if backup.get("status") != "Completed":
        raise client.PaasCliError(
            f"backup {backup.get('id')} failed: {backup.get('detail') or 'see the platform log'}"
        )
    size = human_size(int(backup.get("size") or 0))
    click.echo(f"Backing up {database or DEFAULT_DATABASE} to {backup.get('id')}... done ({size})")


@cli.command("pg:backups:restore")
@click.argument("backup", required=False)
@click.argument("database", required=False)
@app_option
@click.option("--confirm", metavar="APP", help="The app's name, to confirm.")
@click.pass_obj
def pg_backups_restore(
    session: Session,
    backup: str | None,
    database: str | None,
    app_name: str | None,
    confirm: str | None,
) -> None:
    """Restore a backup (the latest by default) into the app's database, replacing its
    tables."""
    name = session.app(app_name)
    if backup is not None and backup.isupper() and database is None:
        backup, database = None, backup  # `pg:backups:restore DATABASE`: the latest backup
    if confirm != name:
        raise ArgumentError(
            f"this replaces the data of {name}'s {database or DEFAULT_DATABASE}",
            f"to proceed run: paas pg:backups:restore {backup or ''} -a {name} --confirm {name}",
        )
    body: dict[str, str] = {}
    if backup:
        body["backup"] = backup
    if database:
        body["database"] = database
    restored = long_api(session).request("POST", _pg_path(name, "restore"), body)
    click.echo(f"Restored {restored.get('id')} into {database or DEFAULT_DATABASE}... done")


@cli.command("pg:backups:download")
@click.argument("backup", required=False)
@app_option
@click.option("-o", "--output", "output", metavar="FILE", help="Where to write (latest.dump).")
@click.option("--database", help="The attachment (DATABASE by default).")
@click.pass_obj
def pg_backups_download(
    session: Session,
    backup: str | None,
    app_name: str | None,
    output: str | None,
    database: str | None,
) -> None:
    """Download a backup (the latest by default), a pg_restore archive."""
    name = session.app(app_name)
    path = _pg_path(name, backup or "latest", "download")
    if database:
        path += "?" + urllib.parse.urlencode({"database": database})
    target = output or "latest.dump"
    partial = f"{target}.partial"
    try:
        with open(partial, "wb") as f:
            size = long_api(session).download(path, f)
    except BaseException:
        Path(partial).unlink(missing_ok=True)  # no half a dump under the name asked for
        raise
    os.replace(partial, target)
    click.echo(f"Downloaded {human_size(size)} to {target}")


@cli.command("pg:backups:schedule")
@click.argument("database", required=False)
@app_option
@click.option("--at", required=True, help="The time of day: '02:00 UTC', '03:30 Europe/Paris'.")
@click.pass_obj
def pg_backups_schedule(
    session: Session, database: str | None, app_name: str | None, at: str
) -> None:
    """Back up the app's database every day at a given time (the last 7 are kept)."""
    name = session.app(app_name)
    body = {"at": at, **({"database": database} if database else {})}
    answer = session.api().request("PUT", _pg_path(name, "schedule"), body)
    click.echo(f"Scheduled daily backups of {database or DEFAULT_DATABASE} at {answer.get('at')}")


@cli.command("pg:backups:schedules")
@click.argument("database", required=False)
@app_option
@click.pass_obj
def pg_backups_schedules(session: Session, database: str | None, app_name: str | None) -> None:
    """Show the daily backup schedule."""
    name = session.app(app_name)
    query = {"database": database} if database else None
    answer = session.api().request("GET", _pg_path(name, "schedule"), query=query)
    at = answer.get("at")
    click.echo(f"{database or DEFAULT_DATABASE}: daily at {at}" if at else "No backup schedule.")


@cli.command("pg:backups:unschedule")
@click.argument("database", required=False)
@app_option
@click.pass_obj
def pg_backups_unschedule(session: Session, database: str | None, app_name: str | None) -> None:
    """Stop the daily backups (the backups made stay)."""
    name = session.app(app_name)
    query = {"database": database} if database else None
    session.api().request("DELETE", _pg_path(name, "schedule"), query=query)
    click.echo(f"Stopped daily backups of {database or DEFAULT_DATABASE}")


def credentials_of(session: Session, app: str, var: str) -> urllib.parse.SplitResult:
    url = session.api().config_vars(app).get(var)
    if not url:
        raise ArgumentError(f"app {app} has no {var}: attach an add-on (paas addons:create)")
    return urllib.parse.urlsplit(url)


def client_program(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ArgumentError(f"{name} is not installed here", f"apt-get install {package}")
    return found


def run_client(argv: list[str], env: dict[str, str]) -> None:
    try:
        code = subprocess.call(argv, env=env)
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


@cli.command("pg:psql")
@click.argument("database", required=False)
@app_option
@click.option("-c", "--command", "sql", help="Run this SQL and exit.")
@click.option("-f", "--file", "file", help="Run the SQL in this file and exit.")
@click.pass_obj
def pg_psql(
    session: Session,
    database: str | None,
    app_name: str | None,
    sql: str | None,
    file: str | None,
) -> None:
    """Open psql on the app's database (run it on the platform's host)."""
    name = session.app(app_name)
    url = credentials_of(session, name, var_of(database, DEFAULT_DATABASE))
    program = client_program("psql", "postgresql-client")
    argv = [
        program,
        "--host", url.hostname or "",
        "--port", str(url.port or 5432),
        "--username", urllib.parse.unquote(url.username or ""),
        "--dbname", urllib.parse.unquote(url.path.lstrip("/")),
    ]  # fmt: skip
    if sql is not None:
        argv += ["--command", sql]
    if file is not None:
        argv += ["--file", file]
    env = {**session.environ, "PGPASSWORD": urllib.parse.unquote(url.password or "")}
    env.setdefault("PGCONNECT_TIMEOUT", "5")
    run_client(argv, env)


@cli.command("redis:cli", context_settings={"ignore_unknown_options": True})
@app_option
@click.option("--database", help="The attachment (REDIS by default).")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def redis_cli(
    session: Session, app_name: str | None, database: str | None, command: tuple[str, ...]
) -> None:
    """Open redis-cli on the app's Redis (REDIS by default; run it on the platform's
    host); words after `--` run as one command."""
    name = session.app(app_name)
    url = credentials_of(session, name, var_of(database, DEFAULT_REDIS))
    program = client_program("redis-cli", "redis-tools")
    argv = [program, "-h", url.hostname or "", "-p", str(url.port or 6379)]
    if url.username and url.username != "default":
        argv += ["--user", urllib.parse.unquote(url.username)]
    env = {**session.environ, "REDISCLI_AUTH": urllib.parse.unquote(url.password or "")}
    run_client([*argv, *command], env)
