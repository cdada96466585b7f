"""The `paas` command line: Heroku's command names, talking to the paas API over HTTP.

Job: parse and check arguments locally (nothing is sent for a malformed `web=abc`), find the
app (`-a APP` or the `paas` git remote), make the API call through
`paas.cli.client`, and print either human text or, with `--json`, only JSON on stdout.
Invariant: the only paas modules used are `paas.cli.client` and `paas.cli.credentials`; every
`PaasCliError` is caught in one place, `PaasGroup.invoke`, and becomes the one line
`error: MESSAGE` on stderr with exit status 1. More commands join with `@cli.command(...)`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from paas.cli import client, credentials

GIT_REMOTE = "paas"
GIT_TIMEOUT = 15.0
TAIL_INTERVAL = 0.5
NO_APP_MESSAGE = (
    "no app given: use -a APP or run inside a repo with a paas git remote (paas git:remote -a APP)"
)

F = TypeVar("F", bound=Callable[..., Any])


class ArgumentError(client.PaasCliError):
    """An argument failed a local check; nothing was sent to the API."""


class GitError(client.PaasCliError):
    """A git command the CLI needed failed."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass
class Session:
    """What one invocation may touch: the environment, the clock, and the API (lazily)."""

    environ: Mapping[str, str]
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = _utc_now
    _api: client.ApiClient | None = dataclasses.field(default=None, init=False, repr=False)

    def api(self) -> client.ApiClient:
        """The API client, built on first use so commands like `login` need no token."""
        if self._api is None:
            settings = credentials.load_settings(self.environ)
            self._api = client.ApiClient(settings.api_url, settings.token)
        return self._api

    def app(self, given: str | None) -> str:
        """The app named by `-a`, else the one the `paas` git remote points at."""
        if given:
            return given
        url = git_remote_url(self.environ)
        name = app_from_git_url(url) if url else None
        if not name:
            raise ArgumentError(NO_APP_MESSAGE)
        return name


class PaasGroup(click.Group):
    """The command group; its `invoke` is the CLI's single error catch site."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except client.PaasCliError as error:
            click.echo(f"error: {error.one_line()}", err=True)
            ctx.exit(1)


@click.group(cls=PaasGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """paas: deploy and run twelve-factor apps on your own machine."""
    if ctx.obj is None:
        ctx.obj = Session(environ=dict(os.environ))


def main() -> None:
    """Console entry point (`paas = "paas.cli.commands:main"`)."""
    cli.main(prog_name="paas")


def app_option(f: F) -> F:
    decorate = click.option(
        "-a",
        "--app",
        "app_name",
        metavar="APP",
        help="App name (default: from the `paas` git remote).",
    )
    return decorate(f)


def json_option(f: F) -> F:
    decorate = click.option("--json", "as_json", is_flag=True, help="Print only JSON.")
    return decorate(f)


def echo_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


# -- pure helpers: parsing ------------------------------------------------------------------


def parse_assignments(args: Iterable[str]) -> dict[str, str]:
    """`K=V` arguments to a dict; the value may itself contain `=`."""
    result: dict[str, str] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise ArgumentError(f"{arg!r} is not KEY=VALUE", "e.g. paas config:set DEBUG=1")
        result[key] = value
    return result


def parse_scale(args: Iterable[str]) -> dict[str, int]:
    """`TYPE=N` arguments to a dict of non-negative quantities."""
    result: dict[str, int] = {}
    for arg in args:
        kind, sep, count = arg.partition("=")
        if not sep or not kind:
            raise ArgumentError(f"{arg!r} is not TYPE=QUANTITY", "e.g. paas ps:scale web=2")
        if not (count.isascii() and count.isdigit()):
            raise ArgumentError(
                f"{arg!r}: the quantity must be a whole number 0 or more, got {count!r}"
            )
        result[kind] = int(count)
    return result


def parse_version(text: str) -> int:
    """`v3` or `3` to 3."""
    digits = text[1:] if text[:1] in ("v", "V") else text
    if not (digits.isascii() and digits.isdigit()) or int(digits) < 1:
        raise ArgumentError(f"{text!r} is not a release version", "e.g. v3 or 3")
    return int(digits)


def app_from_git_url(url: str) -> str | None:
    """`http://HOST:PORT/APP.git` (or `.../APP`) to APP."""
    path = urllib.parse.urlsplit(url).path if "://" in url else url.rpartition(":")[2]
    name = path.rstrip("/").rpartition("/")[2]
    name = name.removesuffix(".git")
    return name or None


# -- pure helpers: formatting ---------------------------------------------------------------


def aligned(pairs: Iterable[tuple[str, object]]) -> list[str]:
    """`KEY: value` lines with the values in one column."""
    rows = [(f"{key}:", "" if value is None else str(value)) for key, value in pairs]
    width = max((len(label) for label, _ in rows), default=0)
    return [f"{label:<{width}} {value}".rstrip() for label, value in rows]


def columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as left-aligned columns two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def show_time(value: object) -> str:
    moment = parse_time(value)
    if moment is None:
        return "" if value is None else str(value)
    return f"{moment:%Y/%m/%d %H:%M:%S}"


ONE_OFF_TYPE = "run"  # `paas run`'s dynos: run.1, run.2… (paas.cli.run)


def approx(seconds: float) -> str:
    """A duration as Heroku shows it: `~ 5m`."""
    s = max(0, int(seconds))
    if s < 60:
        return f"~ {s}s"
    if s < 3600:
        return f"~ {s // 60}m"
    if s < 86400:
        return f"~ {s // 3600}h"
    return f"~ {s // 86400}d"


def _ago(value: object, now: datetime, uptime: object = None) -> str:
    moment = parse_time(value)
    if moment is None:
        return ""
    if isinstance(uptime, int | float):
        seconds = float(uptime)
    else:
        seconds = (now - moment).total_seconds() if moment.tzinfo else 0.0
    return f"{moment:%Y/%m/%d %H:%M:%S} ({approx(seconds)} ago)"


def _dyno_sort_key(dyno: Mapping[str, Any]) -> tuple[str, int, str]:
    name = str(dyno.get("name", ""))
    kind, _, number = name.rpartition(".")
    return (kind, int(number) if number.isdigit() else 0, name)


def format_dyno(dyno: Mapping[str, Any], now: datetime, with_command: bool = False) -> str:
    """`web.1: up 2026/11/28 15:13:46 (~ 5m ago)` plus crash and retry details (a one-off
    dyno's with its command: `run.1: up 2026/11/28 15:13:46 (~ 5s ago): bash`)."""
    line = f"{dyno.get('name', '?')}: {dyno.get('state', '?')}"
    since = _ago(dyno.get("started_at"), now, dyno.get("uptime_seconds"))
    if since:
        line += f" {since}"
    if with_command and dyno.get("command"):
        line += f": {dyno['command']}"
    details = []
    if dyno.get("memory_mb") is not None:
        details.append(f"mem {dyno['memory_mb']}M, cpu {dyno.get('cpu_percent', 0)}%")
    crashes = dyno.get("crash_count") or 0
    if crashes:
        details.append(f"crashed {crashes} time{'s' if crashes != 1 else ''}")
    if dyno.get("last_exit_status") is not None:
        details.append(f"last exit {dyno['last_exit_status']}")
    retry = parse_time(dyno.get("next_retry_at"))
    if retry is not None:
        wait = (retry - now).total_seconds() if retry.tzinfo else 0.0
        details.append(f"next retry {retry:%H:%M:%S} (in {approx(wait)})")
    if details:
        line += "; " + ", ".join(details)
    return line


def size_name(size: object) -> str:
    """A size as paas names it: the API's Heroku spelling (Standard-2X) lowered, <N>M kept."""
    if not isinstance(size, str) or not size:
        return "?"
    return size.lower() if "-" in size else size


def format_ps(
    formation: Sequence[Mapping[str, Any]], dynos: Sequence[Mapping[str, Any]], now: datetime
) -> list[str]:
    """Dynos grouped by process type under `=== TYPE (SIZE): COMMAND (COUNT)`, web first."""
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    for dyno in sorted(dynos, key=_dyno_sort_key):
        by_type.setdefault(str(dyno.get("type", "?")), []).append(dyno)
    processes = {str(p.get("type")): p for p in formation}
    kinds = set(by_type) | {k for k, p in processes.items() if (p.get("quantity") or 0) > 0}
    lines: list[str] = []
    one_offs = by_type.pop(ONE_OFF_TYPE, []) if ONE_OFF_TYPE not in processes else []
    if one_offs:
        kinds.discard(ONE_OFF_TYPE)
    for kind in sorted(kinds, key=lambda k: (k != "web", k)):
        group = by_type.get(kind, [])
        process = processes.get(kind, {})
        command = process.get("command") or (group[0].get("command") if group else "") or ""
        size = size_name(process.get("size"))
        if lines:
            lines.append("")
        heading = f"=== {kind} ({size}): {command}" if command else f"=== {kind} ({size})"
        lines.append(f"{heading} ({len(group)})")
        lines.extend(format_dyno(dyno, now) for dyno in group)
    if one_offs:  # Heroku's way: one group, each line with its own command
        lines += [""] if lines else []
        lines.append(f"=== {ONE_OFF_TYPE}: one-off processes ({len(one_offs)})")
        lines.extend(format_dyno(dyno, now, with_command=True) for dyno in one_offs)
    return lines


def format_releases(app: str, releases: Sequence[Mapping[str, Any]], now: datetime) -> list[str]:
    """Newest first, with paas's own status and who made each (Heroku's CLI shows the email):
    `v3  Deploy 1a2b3c4d  succeeded  ann@example.com  2026/11/28 15:13:46 (~ 5m ago)  current`."""
    current = next((r for r in releases if r.get("current")), None)
    title = f"=== {app} Releases"
    if current is not None:
        title += f" - Current: v{current.get('version')}"
    rows = [
        [
            f"v{r.get('version')}",
            str(r.get("description") or ""),
            str(r.get("paas_status") or r.get("status") or ""),
            _email(r.get("user")),
            _ago(r.get("created_at"), now) or str(r.get("created_at") or ""),
            "current" if r.get("current") else "",
        ]
        for r in reversed(releases)
    ]
    return [title, *columns(rows)]


def _email(user: object) -> str:
    """The email of a Heroku `user` object ({id, email}); blank when there is none."""
    return str(user.get("email") or "") if isinstance(user, Mapping) else ""


# -- git ------------------------------------------------------------------------------------


def _git(environ: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        return subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed", "apt-get install git") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"`git {' '.join(args)}` took longer than {GIT_TIMEOUT:g}s") from None


def git_remote_url(environ: Mapping[str, str]) -> str | None:
    """The `paas` remote's URL in the current repo, or None (no repo, no remote, no git)."""
    try:
        done = _git(environ, "remote", "get-url", GIT_REMOTE)
    except GitError:
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def in_git_repo(environ: Mapping[str, str]) -> bool:
    try:
        done = _git(environ, "rev-parse", "--is-inside-work-tree")
    except GitError:
        return False
    return done.returncode == 0 and done.stdout.strip() == "true"


def set_git_remote(environ: Mapping[str, str], url: str) -> str:
    """Point the `paas` remote at `url`; return "added" or "updated"."""
    verb, action = ("set-url", "updated") if git_remote_url(environ) else ("add", "added")
    done = _git(environ, "remote", verb, GIT_REMOTE, url)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise GitError(f"cannot set the git remote {GIT_REMOTE}: {reason}")
    return action


def _git_url(app: Mapping[str, Any]) -> str:
    url = app.get("git_url")
    if not isinstance(url, str) or not url:
        raise client.ApiError(200, "bad_response", f"the API gave no git_url for {app.get('name')}")
    return url


# -- apps -----------------------------------------------------------------------------------


@cli.command("apps")
@json_option
@click.pass_obj
def apps_list(session: Session, as_json: bool) -> None:
    """List your apps."""
    apps = session.api().list_apps()
    if as_json:
        echo_json(apps)
        return
    for app in sorted(apps, key=lambda a: str(a.get("name"))):
        click.echo(str(app.get("name")))


@cli.command("apps:create")
@click.argument("name", required=False)
@click.option("--no-remote", is_flag=True, help="Do not add the `paas` git remote.")
@click.option("--stack", help="The stack to build and run on (default: the platform's).")
@click.pass_obj
def apps_create(session: Session, name: str | None, no_remote: bool, stack: str | None) -> None:
    """Create an app (named NAME, or a generated name)."""
    app = session.api().create_app(name, stack)
    click.echo(f"Created {app.get('name')}")
    click.echo(f"{app.get('web_url')} | {app.get('git_url')}")
    if no_remote or not in_git_repo(session.environ):
        return
    existing = git_remote_url(session.environ)
    if existing and existing != app.get("git_url"):
        click.echo(
            f"Git remote {GIT_REMOTE} already points at {existing}; "
            f"to deploy here run: paas git:remote -a {app.get('name')}"
        )
        return
    click.echo(f"Git remote {GIT_REMOTE} {set_git_remote(session.environ, _git_url(app))}")


@cli.command("apps:info")
@app_option
@json_option
@click.pass_obj
def apps_info(session: Session, app_name: str | None, as_json: bool) -> None:
    """Show an app's URLs and current release."""
    app = session.api().get_app(session.app(app_name))
    if as_json:
        echo_json(app)
        return
    release = app.get("current_release")
    click.echo(f"=== {app.get('name')}")
    for line in aligned(
        [
            ("Git URL", app.get("git_url")),
            ("Web URL", app.get("web_url")),
            ("Stack", named(app.get("stack"))),
            ("Created", show_time(app.get("created_at"))),
            ("Released", show_time(app.get("released_at"))),
            ("Current release", "none" if release is None else f"v{release}"),
        ]
    ):
        click.echo(line)
    warn_routing(app)


def named(value: object) -> str | None:
    """A nested resource's name ({"id", "name"}, as Heroku nests a stack or plan)."""
    if isinstance(value, Mapping):
        found = value.get("name")
        return None if found is None else str(found)
    return None if value is None else str(value)


def warn_routing(app: Mapping[str, Any]) -> None:
    """The router's word on an app it leaves out (it is not served), on stderr."""
    problem = app.get("routing_error")
    if problem:
        click.echo(f" !    {problem}", err=True)


@cli.command("apps:destroy")
@app_option
@click.option("--confirm", metavar="APP", help="The app's name, to confirm.")
@click.pass_obj
def apps_destroy(session: Session, app_name: str | None, confirm: str | None) -> None:
    """Destroy an app and everything it runs."""
    name = session.app(app_name)
    if confirm != name:
        raise ArgumentError(
            f"this destroys {name} and its dynos, releases and config",
            f"to proceed run: paas apps:destroy -a {name} --confirm {name}",
        )
    session.api().destroy_app(name)
    click.echo(f"Destroyed {name}")
    remote = git_remote_url(session.environ)
    if remote and app_from_git_url(remote) == name:
        _git(session.environ, "remote", "remove", GIT_REMOTE)
        click.echo(f"Git remote {GIT_REMOTE} removed")


# -- config ---------------------------------------------------------------------------------


@cli.command("config")
@app_option
@json_option
@click.pass_obj
def config_show(session: Session, app_name: str | None, as_json: bool) -> None:
    """Show config vars."""
    name = session.app(app_name)
    config = session.api().config_vars(name)
    if as_json:
        echo_json(config)
        return
    click.echo(f"=== {name} Config Vars")
    for line in aligned(sorted(config.items())):
        click.echo(line)


@cli.command("config:set")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@app_option
@click.pass_obj
def config_set(session: Session, assignments: tuple[str, ...], app_name: str | None) -> None:
    """Set config vars (restarts the app)."""
    changes = parse_assignments(assignments)
    name = session.app(app_name)
    config = session.api().update_config_vars(name, dict(changes))
    click.echo(f"Set {', '.join(changes)} on {name}")
    for line in aligned((key, config.get(key, value)) for key, value in changes.items()):
        click.echo(line)


@cli.command("config:unset")
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@app_option
@click.pass_obj
def config_unset(session: Session, keys: tuple[str, ...], app_name: str | None) -> None:
    """Unset config vars (restarts the app)."""
    name = session.app(app_name)
    session.api().update_config_vars(name, dict.fromkeys(keys))
    click.echo(f"Unset {', '.join(keys)} on {name}")


@cli.command("config:get")
@click.argument("key")
@app_option
@click.pass_obj
def config_get(session: Session, key: str, app_name: str | None) -> None:
    """Print one config var's value."""
    name = session.app(app_name)
    config = session.api().config_vars(name)
    if key not in config:
        raise ArgumentError(f"{name} has no config var {key}")
    click.echo(config[key])


# -- dynos ----------------------------------------------------------------------------------


@cli.command("ps")
@app_option
@json_option
@click.pass_obj
def ps(session: Session, app_name: str | None, as_json: bool) -> None:
    """List dynos by process type, with state, uptime and crash backoff."""
    name = session.app(app_name)
    api = session.api()
    dynos = api.dynos(name)
    if as_json:
        echo_json(dynos)
        return
    lines = format_ps(api.formation(name), dynos, session.now())
    for line in lines or [f"No dynos on {name}"]:
        click.echo(line)
    warn_routing(api.get_app(name))


@cli.command("ps:scale")
@click.argument("quantities", nargs=-1, required=True, metavar="TYPE=N...")
@app_option
@click.pass_obj
def ps_scale(session: Session, quantities: tuple[str, ...], app_name: str | None) -> None:
    """Set how many dynos of each process type run."""
    wanted = parse_scale(quantities)
    name = session.app(app_name)
    formation = session.api().scale(name, wanted)
    running = ", ".join(
        f"{p.get('type')} at {p.get('quantity')}:{size_name(p.get('size'))}"
        for p in formation
        if p.get("type") in wanted or (p.get("quantity") or 0) > 0
    )
    click.echo(f"Scaled {name}: now running {running or 'nothing'}")


@cli.command("ps:restart")
@click.argument("target", required=False, metavar="[TYPE|DYNO]")
@app_option
@click.pass_obj
def ps_restart(session: Session, target: str | None, app_name: str | None) -> None:
    """Restart all dynos, those of one TYPE (web), or one DYNO (web.1)."""
    name = session.app(app_name)
    answer = session.api().restart(name, target)
    click.echo(str(answer.get("message") or f"Restarting {target or 'all dynos'} on {name}"))


@cli.command("ps:resize")
@click.argument("sizes", nargs=-1, required=True, metavar="TYPE=SIZE...")
@app_option
@click.pass_obj
def ps_resize(session: Session, sizes: tuple[str, ...], app_name: str | None) -> None:
    """Set the dyno size of process types (standard-1x, standard-2x, … or <N>M)."""
    wanted = {}
    for arg in sizes:
        kind, sep, size = arg.partition("=")
        if not sep or not kind or not size:
            raise ArgumentError(f"{arg!r} is not TYPE=SIZE", "e.g. paas ps:resize web=standard-2x")
        wanted[kind] = size
    name = session.app(app_name)
    formation = session.api().resize(name, wanted)
    resized = ", ".join(
        f"{p.get('type')} at {size_name(p.get('size'))}"
        for p in formation
        if p.get("type") in wanted
    )
    click.echo(f"Resized {name}: {resized}; its dynos restart with the new limits")


@cli.command("stack:set")
@click.argument("stack")
@click.option(
    "--no-wait", is_flag=True, help="Do not follow the stack's build (when it is not built)."
)
@click.option(
    "--timeout",
    type=click.IntRange(min=1),
    default=3600,
    show_default=True,
    help="Seconds to follow the stack's build (it goes on after).",
)
@app_option
@click.pass_obj
def stack_set(
    session: Session, stack: str, no_wait: bool, timeout: int, app_name: str | None
) -> None:
    """Set the app's stack; the next deploy builds and runs on it. A stack not built on
    the host is built first (its progress shown), and the app moves to it when it is."""
    name = session.app(app_name)
    api = session.api()
    answer = api.set_stack(name, stack)
    build = answer.get("stack_build")
    state = build.get("state") if isinstance(build, dict) else "built"
    if state == "built":
        click.echo(f"Stack set to {stack} for {name}: push to build on it")
        return
    click.echo(f"-----> Stack {stack} is not built on this host: building it")
    if no_wait:
        click.echo(
            f"       {name} moves to {stack} once it is built (`paas stacks` shows how it "
            "goes); a push meanwhile waits for it"
        )
        return
    found = follow_stack_build(api, stack, time.monotonic() + timeout)
    if found.get("state") == "built":
        click.echo(f"Stack set to {stack} for {name}: push to build on it")
        return
    if found.get("state") == "building":
        raise click.ClickException(
            f"stack {stack} is still being built after {timeout}s; {name} moves to it when it "
            "is built (`paas stacks` shows it)"
        )
    raise click.ClickException(
        f"stack {stack} failed to build: {found.get('reason') or found.get('state')}; {name} "
        f"stays on its stack: fix that and retry with `paas stack:set {stack} -a {name}`"
    )


STACK_POLL_SECONDS = 1.0


def follow_stack_build(api: client.ApiClient, stack: str, deadline: float) -> client.JsonObject:
    """Prints the stack's build log as it grows until its build ends or `deadline`."""
    offset = 0
    while True:
        found = api.stack(stack, offset)
        for line in str(found.get("log", "")).splitlines():
            click.echo(f"       {line}")
        moved = int(str(found.get("log_offset", offset)))
        if moved != offset:  # more may be there already: a log is read in chunks
            offset = moved
            continue
        if found.get("state") != "building" or time.monotonic() > deadline:
            return found
        time.sleep(STACK_POLL_SECONDS)  # a readiness poll: the build is the server's


@cli.command("images:export")
@click.argument("version", required=False, metavar="[vN]")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the OCI archive.",
)
@app_option
@click.pass_obj
def images_export(session: Session, version: str | None, output: str, app_name: str | None) -> None:
    """Write a release's OCI image (default: the current one) as an OCI archive."""
    name = session.app(app_name)
    wanted = "current" if version is None else f"v{parse_version(version)}"
    partial = Path(output + ".partial")
    try:
        with partial.open("wb") as target:
            size = session.api().export_image(name, wanted, target)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    click.echo(
        f"Wrote {wanted} of {name} to {output} ({size / 2**20:.1f} MB); "
        f"refs are its process types, e.g. oci-archive:{output}:web"
    )


cli.add_command(ps_scale, "scale")
cli.add_command(ps_restart, "restart")


# -- releases -------------------------------------------------------------------------------


@cli.command("releases")
@app_option
@json_option
@click.pass_obj
def releases(session: Session, app_name: str | None, as_json: bool) -> None:
    """List releases, newest first."""
    name = session.app(app_name)
    found = session.api().releases(name)
    if as_json:
        echo_json(found)
        return
    if not found:
        click.echo(f"{name} has no releases yet: git push {GIT_REMOTE} main")
        return
    for line in format_releases(name, found, session.now()):
        click.echo(line)


@cli.command("rollback")
@click.argument("version", required=False, metavar="[vN]")
@app_option
@click.pass_obj
def rollback(session: Session, version: str | None, app_name: str | None) -> None:
    """Release an earlier version again (default: the previous one)."""
    number = None if version is None else parse_version(version)
    name = session.app(app_name)
    release = session.api().rollback(name, number)
    click.echo(f"Rolled back {name}: v{release.get('version')} {release.get('description', '')}")


@cli.command("builds")
@app_option
@json_option
@click.pass_obj
def builds(session: Session, app_name: str | None, as_json: bool) -> None:
    """List builds, newest first, with who pushed each."""
    name = session.app(app_name)
    found = session.api().builds(name)
    if as_json:
        echo_json(found)
        return
    if not found:
        click.echo(f"{name} has no builds yet: git push {GIT_REMOTE} main")
        return
    for line in format_builds(name, found, session.now()):
        click.echo(line)


def format_builds(app: str, found: Sequence[Mapping[str, Any]], now: datetime) -> list[str]:
    """Newest first: `1a2b3c4d  succeeded  0a1b2c3d  ann@example.com  2026/11/28 15:13:46`
    (the build's id, status, commit and pusher, then when)."""
    rows = [
        [
            str(b.get("id") or "")[:8],
            str(b.get("status") or ""),
            str((b.get("source_blob") or {}).get("version") or b.get("source_version") or "")[:8],
            _email(b.get("user")),
            _ago(b.get("created_at"), now) or str(b.get("created_at") or ""),
        ]
        for b in reversed(found)
    ]
    return [f"=== {app} Builds", *columns(rows)]


# -- logs -----------------------------------------------------------------------------------


@cli.command("logs")
@app_option
@click.option("-n", "--num", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("-t", "--tail", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option("-d", "--dyno", metavar="NAME", help="Only this dyno (web.1) or type (web).")
@click.option("-s", "--source", type=click.Choice(["app", "paas"]), help="Only this source.")
@click.pass_obj
def logs(
    session: Session,
    app_name: str | None,
    num: int,
    tail: bool,
    dyno: str | None,
    source: str | None,
) -> None:
    """Show recent log lines; with --tail, follow them."""
    name = session.app(app_name)
    api = session.api()
    page = api.log_lines(name, num=num, dyno=dyno, source=source)
    for line in page["lines"]:
        click.echo(str(line))
    if not tail:
        return
    cursor = page.get("cursor")
    try:
        while True:
            session.sleep(TAIL_INTERVAL)
            page = api.log_lines(name, after=cursor, dyno=dyno, source=source)
            for line in page["lines"]:
                click.echo(str(line))
            cursor = page.get("cursor", cursor)
    except KeyboardInterrupt:
        return  # Ctrl-C is how a tail ends, not an error


# -- buildpacks -----------------------------------------------------------------------------


def edited_buildpacks(
    current: list[str], action: str, url: str | None = None, index: int | None = None
) -> list[str]:
    """The app's buildpack list after `buildpacks:ACTION` (Heroku's rules; index from 1)."""
    urls = list(current)
    if index is not None and not 1 <= index <= len(urls) + (action != "remove"):
        raise ArgumentError(f"--index {index} is out of range: the app has {len(urls)}")
    if action == "add":
        assert url is not None
        if url in urls:
            raise ArgumentError(f"{url} is already set on the app")
        urls.insert(len(urls) if index is None else index - 1, url)
    elif action == "set":
        assert url is not None
        if index is None:
            return [url]
        urls[index - 1 : index] = [url]
    elif action == "remove":
        if index is not None:
            del urls[index - 1]
        elif url in urls:
            urls.remove(url)
        else:
            raise ArgumentError(f"{url} is not set on the app: see `paas buildpacks`")
    return urls


def show_buildpacks(name: str, installed: Sequence[Mapping[str, Any]]) -> None:
    if not installed:
        click.echo(f"{name} has no buildpacks set: they come from BUILDPACK_URL, .buildpacks, ")
        click.echo("app.json or the built-ins' detection")
        return
    click.echo(f"=== {name} Buildpack{'s' if len(installed) > 1 else ''}")
    for item in installed:
        click.echo(f"{int(item['ordinal']) + 1}. {item['buildpack']['url']}")


def change_buildpacks(
    session: Session, app_name: str | None, action: str, url: str | None, index: int | None
) -> None:
    name = session.app(app_name)
    api = session.api()
    current = [str(i["buildpack"]["url"]) for i in api.buildpacks(name)]
    show_buildpacks(name, api.set_buildpacks(name, edited_buildpacks(current, action, url, index)))


@cli.command("buildpacks")
@app_option
@json_option
@click.pass_obj
def buildpacks(session: Session, app_name: str | None, as_json: bool) -> None:
    """List the app's buildpacks, in build order."""
    name = session.app(app_name)
    installed = session.api().buildpacks(name)
    if as_json:
        echo_json(installed)
        return
    show_buildpacks(name, installed)


@cli.command("buildpacks:add")
@click.argument("url")
@click.option("-i", "--index", type=int, help="where to insert it, from 1 (default: last)")
@app_option
@click.pass_obj
def buildpacks_add(session: Session, url: str, index: int | None, app_name: str | None) -> None:
    """Add the buildpack URL (or heroku/NAME) to the app's buildpacks."""
    change_buildpacks(session, app_name, "add", url, index)


@cli.command("buildpacks:set")
@click.argument("url")
@click.option("-i", "--index", type=int, help="replace the one at this place, from 1")
@app_option
@click.pass_obj
def buildpacks_set(session: Session, url: str, index: int | None, app_name: str | None) -> None:
    """Make URL the app's only buildpack (or the one at --index)."""
    change_buildpacks(session, app_name, "set", url, index)


@cli.command("buildpacks:remove")
@click.argument("url", required=False)
@click.option("-i", "--index", type=int, help="remove the one at this place, from 1")
@app_option
@click.pass_obj
def buildpacks_remove(
    session: Session, url: str | None, index: int | None, app_name: str | None
) -> None:
    """Remove the buildpack URL, or the one at --index, from the app's buildpacks."""
    if (url is None) == (index is None):
        raise ArgumentError("give the buildpack URL or --index N, not both")
    change_buildpacks(session, app_name, "remove", url, index)


@cli.command("buildpacks:clear")
@app_option
@click.pass_obj
def buildpacks_clear(session: Session, app_name: str | None) -> None:
    """Remove every buildpack set on the app (the other sources apply again)."""
    name = session.app(app_name)
    session.api().set_buildpacks(name, [])
    click.echo(f"Buildpacks cleared on {name}: the next build takes BUILDPACK_URL, .buildpacks,")
    click.echo("app.json or the built-ins' detection")


# -- domains --------------------------------------------------------------------------------


@cli.command("domains")
@app_option
@json_option
@click.pass_obj
def domains(session: Session, app_name: str | None, as_json: bool) -> None:
    """List the app's custom domains."""
    name = session.app(app_name)
    found = session.api().domains(name)
    if as_json:
        echo_json(found)
        return
    click.echo(f"=== {name} Domains")
    for domain in found:
        if domain.get("kind", "custom") == "custom":  # not its own APP.DOMAIN
            click.echo(str(domain.get("hostname")))


@cli.command("domains:add")
@click.argument("hostname")
@app_option
@click.pass_obj
def domains_add(session: Session, hostname: str, app_name: str | None) -> None:
    """Route HOSTNAME to the app."""
    name = session.app(app_name)
    session.api().add_domain(name, hostname)
    click.echo(f"Added {hostname} to {name}")


@cli.command("domains:remove")
@click.argument("hostname")
@app_option
@click.pass_obj
def domains_remove(session: Session, hostname: str, app_name: str | None) -> None:
    """Stop routing HOSTNAME to the app."""
    name = session.app(app_name)
    session.api().remove_domain(name, hostname)
    click.echo(f"Removed {hostname} from {name}")


# -- git and login --------------------------------------------------------------------------


@cli.command("git:remote")
@app_option
@click.pass_obj
def git_remote(session: Session, app_name: str | None) -> None:
    """Add or update the `paas` git remote to push to the app."""
    name = session.app(app_name)
    url = _git_url(session.api().get_app(name))
    if not in_git_repo(session.environ):
        raise GitError("not inside a git repository", "run `git init` first")
    action = set_git_remote(session.environ, url)
    click.echo(f"Git remote {GIT_REMOTE} {action}: {url}")


@cli.command("git:credentials")
@click.argument("operation")
@click.pass_obj
def git_credentials(session: Session, operation: str) -> None:
    """A git credential helper giving git the stored token for the API's host only.

    Use it instead of ~/.netrc: git config --global credential.helper '!paas git:credentials'
    """
    question = sys.stdin.read()
    if operation != "get":  # `store` and `erase`: the token is paas's to keep, not git's
        return
    try:
        settings = credentials.load_settings(session.environ)
    except credentials.CredentialsError:
        return  # nothing stored: git goes on to its other helpers or fails as usual
    sys.stdout.write(credentials.git_credential_answer(question, settings))
