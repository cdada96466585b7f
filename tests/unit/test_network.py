import ipaddress

import pytest

from paas import network
from paas.errors import InvalidParams


def test_names_fit_interface_limits_and_differ() -> None:
    netns, veth = network.names_for("demo.web.1.v3.abcd1234")
    assert len(veth) <= 15 and netns.startswith("paas-")
    assert network.names_for("demo.web.2.v3.abcd1234") != (netns, veth)


@pytest.mark.parametrize("text", ["10.0.0.0/29", "nonsense", "10.0.0.1/16", "10.0.0.0/30"])
def test_subnet_rejects_bad_values(text: str) -> None:
    with pytest.raises(InvalidParams, match="PAAS_DYNO_SUBNET"):
        network.subnet(text)


def test_clashing_routes_ignore_default_and_our_bridge() -> None:
    subnet = ipaddress.IPv4Network("172.17.0.0/16")
    routes = [
        {"dst": "default", "dev": "eth0"},
        {"dst": "172.17.0.0/16", "dev": "docker0"},
        {"dst": "172.17.0.0/16", "dev": "paas0"},
        {"dst": "192.0.2.0/24", "dev": "eth0"},
        {"type": "unreachable", "dst": "172.17.0.9"},  # a gone dyno's, ours
        {"type": "unreachable", "dst": "172.16.0.0/12"},  # someone else's, wider
    ]
    assert network.clashing_routes(subnet, routes) == [
        "172.17.0.0/16 dev docker0",
        "172.16.0.0/12 dev ?",
    ]
    assert network.gateway(subnet) == "172.17.0.1"
