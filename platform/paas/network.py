"""Dyno networking: one network namespace per container dyno, joined to the host by a veth
pair on the `paas0` bridge.

What it guarantees: the router (on the host) reaches a dyno at its own address; dynos reach
the outside world through NAT; a dyno cannot open a connection to any host address (so not
to the API, HAProxy's admin socket or anything else the host serves), nor to another dyno
(bridge ports are isolated and bridge-to-bridge forwarding is dropped); nobody but the host
reaches a dyno's port.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from paas.errors import InvalidParams, PaasError

BRIDGE = "paas0"
INPUT_CHAIN = "PAAS-DYNOS-IN"
FORWARD_CHAIN = "PAAS-DYNOS-FWD"
DEFAULT_SUBNET = "10.213.0.0/16"
CLAIMS = Path("/run/paas/addresses")
CLAIM_GRACE_SECONDS = 60.0
# A released address is left alone this long: HAProxy may still send to the gone dyno for
# a moment, and must meet the unreachable route, not the next dyno's network being built
# at the same address (a connection lost there waits a second for its SYN's retransmit).
COOL_SECONDS = 60.0
RELEASED = "released"


@dataclass(frozen=True)
class DynoNetwork:
    netns: str
    host_veth: str
    address: str
    gateway: str
    prefix: int

    @property
    def netns_path(self) -> str:
        return f"/var/run/netns/{self.netns}"


def names_for(dyno_id: str) -> tuple[str, str]:
    """A netns name and a host veth name (at most 15 characters) unique to the dyno."""
    digest = hashlib.sha256(dyno_id.encode()).hexdigest()[:11]
    return f"paas-{digest}", f"pv{digest}"


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


def gateway(network: ipaddress.IPv4Network) -> str:
    return str(network.network_address + 1)


def claim_address(network: ipaddress.IPv4Network, dyno_id: str) -> str:
    """A dyno address unused on this host, whichever PAAS_HOME took the others: each claim
    is a file created exclusively under /run/paas/addresses, naming the dyno's netns. A
    claim whose netns is gone is stale and reused; a released one is reused once it has
    cooled, or when no other address is left."""
    netns, _ = names_for(dyno_id)
    with _claims_locked():
        for patient in (True, False):
            for host in network.hosts():
                address = str(host)
                if address != gateway(network) and _take(CLAIMS / address, netns, patient):
                    return address
    raise PaasError(f"no free dyno address left in {network}: use a larger PAAS_DYNO_SUBNET")


@contextlib.contextmanager
def _claims_locked() -> Iterator[None]:
    """Claims are read, judged and rewritten under one host-wide lock: two claimers (the
    agent, a build, another PAAS_HOME) must never both take an address they saw free."""
    CLAIMS.mkdir(parents=True, exist_ok=True)
    with open(CLAIMS / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _take(claim: Path, netns: str, patient: bool) -> bool:
    try:
        fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        holder = claim.read_text().strip() if claim.exists() else ""
        if holder == netns or not _reusable(claim, holder, patient):
            return False
        claim.unlink(missing_ok=True)
        try:
            fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
    with os.fdopen(fd, "w") as f:
        f.write(netns)
    return True


def _reusable(claim: Path, holder: str, patient: bool) -> bool:
    """Released and cooled (or not `patient`), or stale: its netns is gone and it is old
    enough not to be a claim in progress."""
    try:
        age = time.time() - claim.stat().st_mtime
    except OSError:
        return True
    if holder == RELEASED:
        return not patient or age > COOL_SECONDS
    return age > CLAIM_GRACE_SECONDS and not Path(f"/var/run/netns/{holder}").exists()


def remove(dyno_id: str, address: str) -> None:
    """Takes a gone dyno off the network: its address refuses connections at once, then its
    veth pair and namespace go, then its claim on the address is released.

    Until the next dyno's network takes the address (create), it is an unreachable route.
    Without it, a connection to the gone dyno would wait for ARP, then for HAProxy's 5 s
    connect timeout. The route goes in first, while the veth still exists and the claim is
    still ours: no instant is left in which the address silently drops packets, and the
    route can never land on an address another dyno already uses."""
    netns, host_veth = names_for(dyno_id)
    claim = CLAIMS / address
    with _claims_locked():
        ours = _holds(address, netns)
        if ours:
            claim.touch()  # fresh: not taken for stale while its netns is being deleted
    if ours:
        subprocess.run(
            ["ip", "route", "replace", "unreachable", f"{address}/32"],
            capture_output=True,
            timeout=30,
        )
    delete(DynoNetwork(netns, host_veth, address, "", 0))
    with _claims_locked():
        if _holds(address, netns):
            claim.write_text(RELEASED)  # cooling from now (see claim_address)


def _holds(address: str, netns: str) -> bool:
    try:
        return (CLAIMS / address).read_text().strip() == netns
    except OSError:
        return False


def clashing_routes(network: ipaddress.IPv4Network, routes: list[dict[str, str]]) -> list[str]:
    """Host routes (`ip -j route` entries) that overlap the dyno subnet, ours excluded."""
    clashes = []
    for route in routes:
        destination = route.get("dst", "")
        if destination in ("default", "") or route.get("dev") == BRIDGE:
            continue
        try:
            other = ipaddress.IPv4Network(destination, strict=False)
        except ValueError:
            continue
        if route.get("type") == "unreachable" and other.subnet_of(network):
            continue  # a gone dyno's address (see delete)
        if other.overlaps(network):
            clashes.append(f"{destination} dev {route.get('dev', '?')}")
    return clashes


def _ip(*args: str) -> None:
    run(["ip", *args])


def run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise PaasError(f"{' '.join(argv)} failed: {result.stderr.strip()}")


def _succeeds(argv: list[str]) -> bool:
    return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0


def _rule(table: str, chain: str, rule: list[str], first: bool = False) -> None:
    """Adds an iptables rule unless it is already there (idempotent setup)."""
    if not _succeeds(["iptables", "-t", table, "-C", chain, *rule]):
        run(["iptables", "-t", table, "-I" if first else "-A", chain, *rule])


def ensure_host(network: ipaddress.IPv4Network) -> None:
    """The bridge, forwarding, NAT and the firewall rules; safe to call at every start."""
    routes = json.loads(
        subprocess.run(["ip", "-j", "route"], capture_output=True, text=True, timeout=30).stdout
        or "[]"
    )
    clashes = clashing_routes(network, routes)
    if clashes:
        raise PaasError(
            f"the dyno subnet {network} overlaps host routes ({'; '.join(clashes)}): "
            "set PAAS_DYNO_SUBNET to a free range"
        )
    if not Path(f"/sys/class/net/{BRIDGE}").exists():
        _ip("link", "add", BRIDGE, "type", "bridge")
    if not _succeeds(
        ["sh", "-c", f"ip -o addr show dev {BRIDGE} | grep -q ' {gateway(network)}/'"]
    ):
        _ip("addr", "add", f"{gateway(network)}/{network.prefixlen}", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
    for chain in (INPUT_CHAIN, FORWARD_CHAIN):
        if not _succeeds(["iptables", "-S", chain]):
            run(["iptables", "-N", chain])
        run(["iptables", "-F", chain])
    run(
        [
            "iptables",
            "-A",
            INPUT_CHAIN,
            "-m",
            "conntrack",
            "--ctstate",
            "ESTABLISHED,RELATED",
            "-j",
            "ACCEPT",
        ]
    )
    run(["iptables", "-A", INPUT_CHAIN, "-j", "DROP"])
    run(["iptables", "-A", FORWARD_CHAIN, "-i", BRIDGE, "-o", BRIDGE, "-j", "DROP"])
    run(["iptables", "-A", FORWARD_CHAIN, "-i", BRIDGE, "-j", "ACCEPT"])
    run(
        [
            "iptables",
            "-A",
            FORWARD_CHAIN,
            "-o",
            BRIDGE,
            "-m",
            "conntrack",
            "--ctstate",
            "ESTABLISHED,RELATED",
            "-j",
            "ACCEPT",
        ]
    )
    run(["iptables", "-A", FORWARD_CHAIN, "-o", BRIDGE, "-j", "DROP"])
    _rule("filter", "INPUT", ["-i", BRIDGE, "-j", INPUT_CHAIN], first=True)
    _rule("filter", "FORWARD", ["-j", FORWARD_CHAIN], first=True)
    _rule("nat", "POSTROUTING", ["-s", str(network), "!", "-o", BRIDGE, "-j", "MASQUERADE"])


def create(dyno_id: str, address: str, network: ipaddress.IPv4Network) -> DynoNetwork:
    netns, host_veth = names_for(dyno_id)
    dyno = DynoNetwork(netns, host_veth, address, gateway(network), network.prefixlen)
    if Path(f"/sys/class/net/{host_veth}").exists() or Path(dyno.netns_path).exists():
        delete(dyno)  # a leftover of a crashed supervisor with the same id
    # Three `ip -batch` runs instead of one `ip` per step: ten dynos starting at once on a
    # small host wait for CPU, and each process saved is a few milliseconds of it.
    batch(
        [
            # Reachable again (see remove): the replace makes the delete succeed
            # whether or not a gone dyno left the route.
            f"route replace unreachable {address}/32",
            f"route del unreachable {address}/32",
            f"netns add {netns}",
            f"link add {host_veth} type veth peer name eth0 netns {netns}",
            f"link set {host_veth} master {BRIDGE}",
            f"link set {host_veth} type bridge_slave isolated on",  # before any traffic
        ]
    )
    batch(
        [
            f"addr add {address}/{network.prefixlen} dev eth0",
            "link set eth0 up",
            "link set lo up",
            f"route add default via {dyno.gateway}",
        ],
        netns=netns,
    )
    # Last, once the dyno's side answers ARP: the host must not keep a gone dyno's MAC
    # address for this reused address, nor an unanswered lookup that the router's next
    # connection would wait a second on.
    batch([f"link set {host_veth} up", f"neigh flush to {address} dev {BRIDGE}"])
    return dyno


def batch(commands: list[str], netns: str | None = None) -> None:
    """Runs `ip` commands in one process, in the dyno's network namespace if given; stops
    at the first that fails and raises with its message."""
    argv = ["ip", *(["-n", netns] if netns else []), "-batch", "-"]
    result = subprocess.run(
        argv, input="\n".join(commands) + "\n", capture_output=True, text=True, timeout=30
    )
    if result.returncode != 0:
        failed = re.search(r"Command failed -:(\d+)", result.stderr)
        command = commands[int(failed.group(1)) - 1] if failed else "?"
        message = result.stderr.strip().splitlines()[0] if result.stderr.strip() else "no output"
        raise PaasError(f"ip {'-n ' + netns + ' ' if netns else ''}{command!r} failed: {message}")


def forget_neighbour(address: str) -> None:
    """Addresses are reused: the host must not keep sending to a gone dyno's MAC address."""
    subprocess.run(
        ["ip", "neigh", "flush", "to", address, "dev", BRIDGE], capture_output=True, timeout=30
    )


def delete(dyno: DynoNetwork) -> None:
    """Removes the veth pair and the namespace; nothing is left if they are already gone."""
    if Path(f"/sys/class/net/{dyno.host_veth}").exists():
        subprocess.run(["ip", "link", "del", dyno.host_veth], capture_output=True, timeout=30)
    if Path(dyno.netns_path).exists():
        subprocess.run(["ip", "netns", "del", dyno.netns], capture_output=True, timeout=30)
    if dyno.address:
        forget_neighbour(dyno.address)
