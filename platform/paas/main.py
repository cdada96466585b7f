"""The `paas` command: the API client's commands plus the platform's own processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from paas.artifacts import stacks

# The platform's own processes and the git hook import what they need when they run, so
# that every client command (`paas ps:scale`…) starts without their modules.
from paas.cli import addons as _addons  # noqa: F401  (registers the addons:* commands)
from paas.cli import commands as cli
from paas.cli import pg as _pg_commands  # noqa: F401  (registers pg:* and redis:cli)
from paas.cli import run as _run  # noqa: F401  # registers run, run:detached, ps:stop
from paas.cli import users as _users  # noqa: F401  (login, access*, authorizations*, audit)
from paas.domain import settings as settings_module
from paas.domain.errors import PaasError

# The platform's processes create nothing other users may read: state, logs, repos, specs.
PRIVATE_UMASK = 0o077


def private() -> None:
    os.umask(PRIVATE_UMASK)


@cli.cli.command("server")
@click.option("--stop", "stop", is_flag=True, help="Stop the platform, its dynos and router.")
def server_command(stop: bool) -> None:
    """Run the whole platform (api, agent, router) in the foreground."""
    from paas import server

    private()
    try:
        settings = settings_module.from_env()
        if stop:
            server.stop_everything(settings)
            click.echo("paas: stopped the platform, its dynos and the router")
            return
        code = server.Server(settings).run()
    except PaasError as error:
        raise click.ClickException(error.message) from None
    sys.exit(code)


@cli.cli.command("stacks:build")
@click.argument("names", nargs=-1, required=True, type=click.Choice(stacks.NAMES))
@click.option("--force", is_flag=True, help="Rebuild even if this version is built.")
@click.option("--log", is_flag=True, hidden=True, help="Into the stack's build log (the API's).")
@click.option("--lock-fd", type=int, hidden=True, help="The build lock, taken by the API.")
def stacks_build_command(
    names: tuple[str, ...], force: bool, log: bool, lock_fd: int | None
) -> None:
    """Build stacks (Debian base filesystems) with mmdebstrap, once per host: each run
    stack with its -build variant (the compilers and headers builds use)."""
    mirror = os.environ.get("PAAS_DEBIAN_MIRROR") or stacks.DEFAULT_MIRROR
    for name in dict.fromkeys(stacks.base_name(n) for n in names):
        try:
            rootfs = stacks.build(name, mirror, force=force, log=log, lock_fd=lock_fd)
        except PaasError as error:
            raise click.ClickException(error.message) from None
        click.echo(f"{name}: {rootfs}")
        click.echo(f"{name}{stacks.BUILD_SUFFIX}: {stacks.build_rootfs(name)}")


@cli.cli.command("stacks")
def stacks_command() -> None:
    """List the stacks and whether each is built (building, failed) on this host."""
    for name, recipe in sorted(stacks.RECIPES.items()):
        found = stacks.status(name)
        default = " (default)" if name == stacks.DEFAULT_STACK else ""
        why = f": {found.reason}" if found.reason else ""
        run, build = shown(found, stacks.rootfs(name)), shown(found, stacks.build_rootfs(name))
        click.echo(f"{name}{default}: Debian {recipe.suite}, Python {recipe.python}, {run}{why}")
        click.echo(
            f"{name}{stacks.BUILD_SUFFIX}: builds of {name} (compilers, headers), {build}{why}"
        )


def shown(found: stacks.StackStatus, tree: Path | None) -> str:
    return f"built at {tree}" if tree and found.state != "building" else found.state


@cli.cli.command("api", hidden=True)
def api_command() -> None:
    from paas import server

    private()
    server.run_api(settings_module.from_env())


@cli.cli.command("agent", hidden=True)
def agent_command() -> None:
    from paas import server

    private()
    server.run_agent(settings_module.from_env())


@cli.cli.command("router", hidden=True)
def router_command() -> None:
    from paas import server

    private()
    server.run_router(settings_module.from_env())


@cli.cli.command("addons:servers", hidden=True)
def addon_servers_command() -> None:
    from paas import server

    private()
    server.run_addon_servers(settings_module.from_env())


@cli.cli.command("hook", hidden=True)
@click.argument("name", type=click.Choice(["pre-receive"]))
def hook_command(name: str) -> None:
    from paas.push import hook

    private()
    sys.exit(hook.main())


def main() -> None:
    cli.main()


if __name__ == "__main__":  # `python -m paas.main`: how the API starts a stack's build
    main()
