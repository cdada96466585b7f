import ipaddress
from pathlib import Path

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


def test_a_released_address_cools_before_it_is_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(network, "CLAIMS", tmp_path)
    subnet = ipaddress.IPv4Network("10.9.0.0/29")  # .1 is the gateway: .2 to .6 for dynos
    first = network.claim_address(subnet, "a.web.1.v1.0")
    (tmp_path / first).write_text(network.RELEASED)  # as remove() leaves it
    others = [network.claim_address(subnet, f"a.web.{n}.v1.0") for n in range(2, 6)]
    assert first not in others and len(set(others)) == 4
    # Every other address is taken: the cooling one is better than none.
    assert network.claim_address(subnet, "a.web.6.v1.0") == first
