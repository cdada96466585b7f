"""`paas server --stop` leaves nothing of the platform's dynos behind: no route in
routes.json to a stopped dyno, and of each container dyno no address claim under
/run/paas/addresses, no unreachable route, no network namespace and no veth. The host-wide
bridge and firewall chains stay (other platforms on the host share them). The server's own
processes are gone before the dynos are stopped, even when the server does not exit.

Skipped unless running as root with a built stack (container dynos, as test_containers.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from loadkit import dynos_answering
from platform_harness import running
from test_containers import STACK

from paas.host import procs
from paas.isolation import network

pytestmark = pytest.mark.skipif(STACK is None, reason="needs root and a built stack")
APP = "stopping"


def unreachable_routes() -> set[str]:
    listing = subprocess.run(
        ["ip", "-j", "route", "show", "type", "unreachable"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return {route["dst"] for route in json.loads(listing or "[]")}


def claim_holder(address: str) -> str | None:
    try:
        return (network.CLAIMS / address).read_text().strip()
    except FileNotFoundError:
        return None


def test_stop_leaves_no_route_claim_namespace_or_veth_of_its_dynos() -> None:
    with running() as platform:
        platform.paas("apps:create", APP, "--no-remote")
        assert platform.push(APP, platform.new_repo("stop-repo")).returncode == 0
        platform.paas("ps:scale", "web=2", "-a", APP)
        dynos_answering(platform, APP, 2)
        dynos = [d for d in platform.dyno_statuses(APP) if d.get("container")]
        assert len(dynos) >= 2, "the dynos run in containers"
        routes_path = platform.home / "router" / "routes.json"
        assert routes_path.exists()

        platform.paas("server", "--stop")

        routed = [a["servers"] for a in json.loads(routes_path.read_text())["apps"]]
        assert routed == [[]], "routes.json still sends requests to stopped dynos"
        unreachable = unreachable_routes()
        for dyno in dynos:
            netns, veth = network.names_for(str(dyno["id"]))
            address = str(dyno["host"])
            holder = claim_holder(address)
            # Another platform may have taken the address since: then it is its claim.
            assert holder is None or (holder.startswith("paas-") and holder != netns), (
                f"{address}: claim {holder!r} left behind"
            )
            if holder is None:
                assert address not in unreachable, f"unreachable route to {address} left"
            assert not Path(f"/var/run/netns/{netns}").exists()
            assert not Path(f"/sys/class/net/{veth}").exists()
        assert Path(f"/sys/class/net/{network.BRIDGE}").exists()  # shared: stays


def test_stop_of_a_server_that_does_not_exit_stops_its_processes_before_the_dynos() -> None:
    """A server that does not exit (here: frozen by SIGSTOP) while its agent starts dynos
    for a scale: the stop kills it and then stops what it left (the agent, the API and its
    workers, the router) before the dynos, so no dyno and no HAProxy is started after the
    stop looked. Before, the stop went on after 20 s while the agent kept reconciling and
    started the stopped dynos again."""
    from paas_router.haproxy import HAProxy

    with running() as platform:
        platform.paas("apps:create", "frozen", "--no-remote")
        assert platform.push("frozen", platform.new_repo("frozen-repo")).returncode == 0
        dynos_answering(platform, "frozen", 1)
        assert platform.server is not None
        server = platform.server.pid
        family = procs.children(server)
        family += [g for pid, _ in family for g in procs.children(pid)]
        assert len(family) >= 4, "api, its workers, agent and router run"
        try:
            os.kill(server, signal.SIGSTOP)
            platform.paas("ps:scale", "web=3", "-a", "frozen")
            platform.paas("server", "--stop")
            left = [pid for pid, started in family if procs.alive(pid, started)]
            assert left == [], f"the server's processes {left} outlived the stop"
            assert platform.live_supervisors() == [], "dynos started after the stop looked"
            assert not HAProxy(run_dir=platform.home / "router").running()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(server, signal.SIGCONT)
