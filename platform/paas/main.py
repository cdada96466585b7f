"""The `paas` command: the API client's commands plus the platform's own processes."""

from __future__ import annotations

import sys

import click

from paas import cli, hook, server
from paas import settings as settings_module


@cli.cli.command("server")
@click.option("--stop", "stop", is_flag=True, help="Stop the platform, its dynos and router.")
def server_command(stop: bool) -> None:
    """Run the whole platform (api, agent, router) in the foreground."""
    settings = settings_module.from_env()
    if stop:
        server.stop_everything(settings)
        click.echo("paas: stopped the platform, its dynos and the router")
        return
    sys.exit(server.Server(settings).run())


@cli.cli.command("api", hidden=True)
def api_command() -> None:
    server.run_api(settings_module.from_env())


@cli.cli.command("agent", hidden=True)
def agent_command() -> None:
    server.run_agent(settings_module.from_env())


@cli.cli.command("router", hidden=True)
def router_command() -> None:
    server.run_router(settings_module.from_env())


@cli.cli.command("hook", hidden=True)
@click.argument("name", type=click.Choice(["pre-receive"]))
def hook_command(name: str) -> None:
    sys.exit(hook.main())


def main() -> None:
    cli.main()
