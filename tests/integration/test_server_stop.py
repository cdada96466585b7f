"""`paas server --stop` leaves nothing of the platform's dynos behind: no route in
routes.json to a stopped dyno, and of each container dyno no address claim under
/run/paas/addresses, no unreachable route, no network namespace and no veth. The host-wide
bridge and firewall chains stay (other platforms on the host share them).

Skipped unless running as root with a built stack (container dynos, as test_containers.py).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from loadkit import dynos_answering
from platform_harness import running
from test_containers import STACK

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
