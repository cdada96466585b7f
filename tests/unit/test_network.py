import ipaddress
from pathlib import Path

import pytest

from paas.domain import addressing, settings
from paas.domain.errors import InvalidParams
from paas.isolation import network


def test_names_fit_interface_limits_and_differ() -> None:
    netns, veth = network.names_for("demo.web.1.v3.abcd1234")
    assert len(veth) <= 15 and netns.startswith("paas-")
    assert network.names_for("demo.web.2.v3.abcd1234") != (netns, veth)


@pytest.mark.parametrize("text", ["10.0.0.0/29", "nonsense", "10.0.0.1/16", "10.0.0.0/30"])
def test_subnet_rejects_bad_values(text: str) -> None:
    with pytest.raises(InvalidParams, match="PAAS_DYNO_SUBNET"):
        addressing.subnet(text)


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


def test_egress_allow_takes_networks_and_addresses() -> None:
    assert addressing.egress_allow(" 10.0.5.0/24, 192.168.1.20,,") == (
        ipaddress.IPv4Network("10.0.5.0/24"),
        ipaddress.IPv4Network("192.168.1.20/32"),
    )
    assert addressing.egress_allow("") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.5.1/24", "not an IPv4 network"),
        ("db.internal", "not an IPv4 network"),
        ("fd00::/8", "not an IPv4 network"),
        ("169.254.169.254", "never reach"),
        ("10.0.0.0/8,169.254.0.0/16", "never reach"),
        ("100.100.100.200", "never reach"),
    ],
)
def test_egress_allow_refuses_what_cannot_be_allowed(text: str, message: str) -> None:
    with pytest.raises(InvalidParams, match=f"PAAS_DYNO_EGRESS_ALLOW.*{message}"):
        addressing.egress_allow(text)


def test_resolvers_are_the_ipv4_nameservers() -> None:
    conf = "# comment\nnameserver 10.0.0.53\nnameserver ::1\nsearch lan\nnameserver 1.1.1.1\n"
    assert network.resolvers(conf) == (
        ipaddress.IPv4Address("10.0.0.53"),
        ipaddress.IPv4Address("1.1.1.1"),
    )


def test_host_networks_skip_the_bridge_and_loopback() -> None:
    listing: list[dict[str, object]] = [
        {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
        {
            "ifname": "eth0",
            "addr_info": [{"family": "inet", "local": "192.0.2.7", "prefixlen": 24}],
        },
        {
            "ifname": "paas0",
            "addr_info": [{"family": "inet", "local": "10.213.0.1", "prefixlen": 16}],
        },
        {
            "ifname": "docker0",
            "addr_info": [{"family": "inet", "local": "172.17.0.1", "prefixlen": 16}],
        },
    ]
    assert network.host_networks(listing) == (
        ipaddress.IPv4Network("192.0.2.0/24"),
        ipaddress.IPv4Network("172.17.0.0/16"),
    )


def _egress_rules(egress: network.Egress) -> list[str]:
    text = network.filter_rules(ipaddress.IPv4Network("10.213.0.0/16"), egress)
    return [line for line in text.splitlines() if line.startswith(f"-A {network.EGRESS_CHAIN}")]


def test_egress_rules_in_order_resolver_never_allowed_private() -> None:
    rules = _egress_rules(
        network.Egress(
            allow=(ipaddress.IPv4Network("10.0.5.0/24"),),
            resolvers=(ipaddress.IPv4Address("169.254.169.253"),),  # as on AWS
            host_networks=(ipaddress.IPv4Network("203.0.113.0/24"),),
        )
    )
    index = {rule.split(" -d ")[1].split()[0]: n for n, rule in enumerate(rules) if " -d " in rule}
    # The resolver answers on port 53 though it is link-local; the rest of link-local never.
    assert index["169.254.169.253/32"] < index["169.254.0.0/16"] < index["10.0.5.0/24"]
    assert index["10.0.5.0/24"] < index["10.0.0.0/8"]  # the allowed part of a private range
    assert "203.0.113.0/24" in index and "192.168.0.0/16" in index
    assert all("--dport 53 -j RETURN" in r for r in rules if "169.254.169.253" in r)


def test_the_forwarding_guard_only_when_the_platform_turned_forwarding_on() -> None:
    subnet = ipaddress.IPv4Network("10.213.0.0/16")
    guard = f"-A {network.GUARD_CHAIN}"
    operators = network.filter_rules(subnet, network.Egress(guard_forwarding=False))
    ours = network.filter_rules(subnet, network.Egress(guard_forwarding=True))
    assert f":{network.GUARD_CHAIN} - [0:0]" in operators and guard not in operators
    assert ours.splitlines()[-2] == f"{guard} -j DROP"  # after the bridge's RETURNs


def test_settings_read_the_egress_allow_list() -> None:
    read = settings.from_env({"PAAS_HOME": "/tmp/x", "PAAS_DYNO_EGRESS_ALLOW": "10.0.5.9"})
    assert read.dyno_egress_allow == (ipaddress.IPv4Network("10.0.5.9/32"),)
    assert settings.from_env({"PAAS_HOME": "/tmp/x"}).dyno_egress_allow == ()
