"""The stacks API: each stack's build state, and builds started on demand by stack:set.

A build started here is a process of its own (`paas stacks:build NAME --log`, in its own
session), so it goes on when the CLI that asked for it goes away; its output goes to the
stack's build log in the shared stacks directory, which `paas stack:set` and pushes follow.
One build per stack at a time: the build lock in the stacks directory, taken here and
held by the build's process, stops a second one from this platform or another.
When the build ends this process moves the apps that asked for the stack onto it (a push
does it too, should this process be gone by then); a failed build leaves them where they
were, its reason recorded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from flask import Blueprint, Response, jsonify, request

from paas.api.context import Context, principal
from paas.artifacts import stacks
from paas.domain.errors import Forbidden, InvalidParams, NotFound, PaasError
from paas.domain.models import App

blueprint = Blueprint("stacks", __name__)
BUILD_TIMEOUT = stacks.MMDEBSTRAP_TIMEOUT + stacks.APT_TIMEOUT + 600


@blueprint.get("/stacks")
def list_stacks() -> Response:
    return jsonify([stacks.status(name).json() for name in sorted(stacks.RECIPES)])


@blueprint.get("/stacks/<name>")
def show_stack(name: str) -> Response:
    """The stack's state and its build log from `log_offset` on (for following it)."""
    if name not in stacks.RECIPES:
        raise InvalidParams(f"unknown stack {name!r}: choose one of {', '.join(stacks.RECIPES)}")
    offset = request.args.get("log_offset", default=0, type=int)
    found = stacks.status(name)  # before the log: what a build ending now wrote comes next
    text, end = stacks.read_log(name, max(offset, 0))
    return jsonify({**found.json(), "log": text, "log_offset": end})


def request_stack(context: Context, app: App, stack: str) -> stacks.StackStatus:
    """`stack:set` of a stack not built here: recorded for the app, and its build started
    unless one runs already. Only the operator starts a build: it takes the host for
    many minutes."""
    if not principal().admin:
        raise Forbidden(
            f"stack {stack} is not built on this host and only the operator may build it: "
            f"ask them to run `paas stacks:build {stack}`"
        )
    stacks.request(context.settings.run_dir, app.name, stack)
    context.logs.event(app.name, "api", f"Stack {stack} requested: building it on this host")
    start_build(context, stack)
    return stacks.status(stack)


def start_build(context: Context, name: str) -> None:
    """Takes the stack's build lock here and hands it to the build's process, so the
    stack shows as building from now on and no second build starts."""
    if stacks.status(name).state == "built":
        return
    try:
        lock = stacks.claim(name)
    except PaasError:  # being built already (by this platform or another)
        return
    with lock:
        argv = [sys.executable, "-m", "paas.main", "stacks:build", name, "--log"]
        process = subprocess.Popen(
            [*argv, "--lock-fd", str(lock.fileno())],
            env=dict(os.environ),  # the operator's: PAAS_STACKS_DIR, mirror, proxies
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # its output goes to the build log (once it locks)
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=(lock.fileno(),),
        )
    threading.Thread(
        target=finish, args=(context, name, process), name=f"stack-{name}", daemon=True
    ).start()


def finish(context: Context, name: str, process: subprocess.Popen[bytes]) -> None:
    """Reaps the build; on success moves the apps that asked for the stack onto it."""
    try:
        process.wait(timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    found = stacks.status(name)
    for app_name in stacks.requested(context.settings.run_dir, name):
        if found.state != "built":
            context.logs.event(app_name, "api", f"Stack {name} failed to build: {found.reason}")
            continue  # the next push says so, then forgets the request
        stacks.drop_request(context.settings.run_dir, app_name)
        try:
            app = context.store.app(app_name)
        except NotFound:  # destroyed meanwhile
            continue
        context.store.set_stack(app, name)
        context.logs.event(app_name, "api", f"Stack set to {name} (built)")
