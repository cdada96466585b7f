"""The IPv4 ranges of dynos, parsed from the operator's settings: the dyno subnet
(PAAS_DYNO_SUBNET) and the private networks dynos may still reach (PAAS_DYNO_EGRESS_ALLOW).
"""

from __future__ import annotations

import ipaddress

from paas.domain.errors import InvalidParams

DEFAULT_SUBNET = "10.213.0.0/16"
# Never reachable from a dyno, whatever PAAS_DYNO_EGRESS_ALLOW says: link-local (where
# AWS, GCP, Azure, OpenStack and others serve instance metadata and credentials), Alibaba's
# metadata address and Azure's wire server.
NEVER = tuple(
    ipaddress.IPv4Network(n) for n in ("169.254.0.0/16", "100.100.100.200/32", "168.63.129.16/32")
)


def subnet(text: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.IPv4Network(text, strict=True)
    except ValueError:
        raise InvalidParams(
            f"PAAS_DYNO_SUBNET={text!r} is not an IPv4 network such as {DEFAULT_SUBNET}"
        ) from None
    if network.prefixlen > 28:
        raise InvalidParams(f"PAAS_DYNO_SUBNET={text} is too small: use /28 or larger")
    return network


def egress_allow(text: str) -> tuple[ipaddress.IPv4Network, ...]:
    """PAAS_DYNO_EGRESS_ALLOW: comma-separated IPv4 networks or addresses that dynos may
    reach although they are private (backing services on the LAN)."""
    allowed = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            network = ipaddress.IPv4Network(item, strict=True)
        except ValueError:
            raise InvalidParams(
                f"PAAS_DYNO_EGRESS_ALLOW: {item!r} is not an IPv4 network or address: "
                "list them as 10.0.5.0/24,192.168.1.20"
            ) from None
        never = [str(n) for n in NEVER if network.subnet_of(n)]
        if never:
            raise InvalidParams(
                f"PAAS_DYNO_EGRESS_ALLOW: {item} is within {never[0]} (link-local or cloud "
                "metadata), which dynos never reach: remove it"
            )
        allowed.append(network)
    return tuple(allowed)
