"""Dyno networking: one network namespace per container dyno, joined to the host by a veth
pair on the `paas0` bridge, and the host firewall around the bridge.

What it guarantees: the router (on the host) reaches a dyno at its own address; dynos reach
the outside world through NAT; a dyno cannot open a connection to any host address (so not
to the API, HAProxy's admin socket or anything else the host serves), nor to another dyno
(bridge ports are isolated and bridge-to-bridge forwarding is dropped); nobody but the host
reaches a dyno's port. A dyno has no IPv6 (no address but ::1; the bridge and the host's
veth ends have IPv6 disabled, and ip6tables drops whatever crosses the bridge). It never
reaches a link-local or cloud metadata address, nor a private network or one of the host's
own networks unless PAAS_DYNO_EGRESS_ALLOW lists it; the resolvers of /etc/resolv.conf stay
reachable on port 53. The host forwards nothing it did not forward before, beyond the
dyno bridge.

The firewall is host-wide (every PAAS_HOME shares the bridge and the chains): each chain's
rules are replaced in one iptables-restore, under a host-wide lock, so a concurrent start
never sees a half-built chain. The rules are computed by pure functions (`filter_rules`,
`ipv6_rules`) from what was observed (`Egress`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from paas.domain.addressing import NEVER
from paas.domain.errors import CommandFailed, PaasError
from paas.host import cleanup, platform_log, procs
from paas.isolation import addon_firewall

BRIDGE = "paas0"
INPUT_CHAIN = "PAAS-DYNOS-IN"
FORWARD_CHAIN = "PAAS-DYNOS-FWD"
EGRESS_CHAIN = "PAAS-DYNOS-EGRESS"
GUARD_CHAIN = "PAAS-HOST-FWD"
# Not reachable from a dyno unless PAAS_DYNO_EGRESS_ALLOW lists them (with the host's own
# networks): RFC 1918 and carrier-grade NAT space, where the LAN and other bridges live.
PRIVATE = tuple(
    ipaddress.IPv4Network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)
RESOLV_CONF = Path("/etc/resolv.conf")  # what dynos get, bind-mounted (see oci.py)
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
# Written when the platform turns IPv4 forwarding on (in /run: gone at reboot, as the
# sysctl is): from then on the platform alone decides what the host forwards.
FORWARDING_MARK = Path("/run/paas/ip-forward-enabled-by-paas")
FIREWALL_LOCK = addon_firewall.FIREWALL_LOCK
CLAIMS = Path("/run/paas/addresses")
CLAIM_GRACE_SECONDS = 60.0
# A released address is left alone this long: HAProxy may still send to the gone dyno for
# a moment, and must meet the unreachable route, not the next dyno's network being built
# at the same address (a connection lost there waits a second for its SYN's retransmit).
COOL_SECONDS = 60.0
RELEASED = "released"  # a released claim reads "released NETNS": who released it


def _released(holder: str) -> bool:
    return holder == RELEASED or holder.startswith(RELEASED + " ")


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
    if _released(holder):
        return not patient or age > COOL_SECONDS
    return age > CLAIM_GRACE_SECONDS and not Path(f"/var/run/netns/{holder}").exists()


def remove(dyno_id: str, address: str, warn: cleanup.Warn = platform_log.line) -> None:
    """Takes a gone dyno off the network: its address refuses connections at once, then its
    veth pair and namespace go, then its claim on the address is released.

    Until the next dyno's network takes the address (create), it is an unreachable route.
    Without it, a connection to the gone dyno would wait for ARP, then for HAProxy's 5 s
    connect timeout. The route goes in first, while the veth still exists and the claim is
    still ours: no instant is left in which the address silently drops packets, and the
    route can never land on an address another dyno already uses. A step that fails is
    said to `warn`, and the others are done all the same."""
    netns, host_veth = names_for(dyno_id)
    claim = CLAIMS / address
    with _claims_locked():
        ours = _holds(address, netns)
        if ours:
            claim.touch()  # fresh: not taken for stale while its netns is being deleted
    if ours:
        cleanup.command(["ip", "route", "replace", "unreachable", f"{address}/32"], warn)
    delete(DynoNetwork(netns, host_veth, address, "", 0), warn)
    with _claims_locked():
        if _holds(address, netns):
            claim.write_text(f"{RELEASED} {netns}")  # cooling from now (see claim_address)
            # Still under the lock: no next holder of the address is opened before this.
            try:
                addon_firewall.forget_source(address)
            except (PaasError, OSError) as error:
                warn(f"cannot close the add-on openings of {address}: {error}")


def retire(dyno_id: str, address: str) -> None:
    """Takes a gone dyno off the network for good, once nothing routes to its address any
    more (its platform's HAProxy is stopped): what `remove` leaves to cool — the
    unreachable route and the released claim — goes too, and whatever a crashed
    supervisor left (veth, namespace). An address another dyno has taken since is its own:
    left alone, route and claim."""
    netns, host_veth = names_for(dyno_id)
    delete(DynoNetwork(netns, host_veth, address, "", 0))
    with _claims_locked():
        if _holder(address) not in (netns, f"{RELEASED} {netns}"):
            return
        # "No such process": the route went with a reboot or by hand, as wanted.
        cleanup.command(
            ["ip", "route", "del", "unreachable", f"{address}/32"], gone=("No such process",)
        )
        cleanup.remove_file(CLAIMS / address)


def _holder(address: str) -> str | None:
    try:
        return (CLAIMS / address).read_text().strip()
    except OSError:
        return None


def _holds(address: str, netns: str) -> bool:
    return _holder(address) == netns


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


@dataclass(frozen=True)
class Egress:
    """What the firewall is built from: the operator's allow-list and what was observed on
    the host when the platform started."""

    allow: tuple[ipaddress.IPv4Network, ...] = ()
    resolvers: tuple[ipaddress.IPv4Address, ...] = ()
    host_networks: tuple[ipaddress.IPv4Network, ...] = ()
    guard_forwarding: bool = False  # the platform turned IPv4 forwarding on


def resolvers(resolv_conf: str) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 nameservers of a resolv.conf (dynos have no IPv6 to reach the others)."""
    found = []
    for line in resolv_conf.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            with contextlib.suppress(ValueError):
                found.append(ipaddress.IPv4Address(words[1]))
    return tuple(dict.fromkeys(found))


def host_networks(addresses: list[dict[str, object]]) -> tuple[ipaddress.IPv4Network, ...]:
    """The networks of the host's IPv4 addresses (`ip -j -4 addr` entries), but the dyno
    bridge's and loopback: the LAN and whatever other bridges the host has."""
    found = []
    for link in addresses:
        infos = link.get("addr_info")
        if link.get("ifname") in (BRIDGE, "lo") or not isinstance(infos, list):
            continue
        for info in infos:
            if info.get("family") != "inet" or info.get("scope") == "host":
                continue
            with contextlib.suppress(ValueError, TypeError):
                found.append(
                    ipaddress.IPv4Interface(f"{info['local']}/{info['prefixlen']}").network
                )
    return tuple(dict.fromkeys(found))


def filter_rules(network: ipaddress.IPv4Network, egress: Egress) -> str:
    """The iptables-restore input (filter table, --noflush) that sets the platform's chains.

    INPUT sends the bridge to INPUT_CHAIN: replies and DNS to the resolvers only. FORWARD
    sends dyno traffic to EGRESS_CHAIN first (refuse what dynos may not reach, RETURN the
    rest), then FORWARD_CHAIN (out of the bridge yes, back in only as replies, never
    bridge to bridge), and ends in GUARD_CHAIN: empty, or, when the platform turned
    forwarding on, dropping all forwarding that does not cross the bridge."""
    refuse = ["-j", "REJECT", "--reject-with", "icmp-admin-prohibited"]
    replies = ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED"]
    dns = [
        ["-d", f"{r}/32", "-p", proto, "--dport", "53"]
        for r in egress.resolvers
        for proto in ("udp", "tcp")
    ]
    closed = [n for n in (*PRIVATE, *egress.host_networks) if not n.subnet_of(network)]
    rules = [
        *([INPUT_CHAIN, *match, "-j", "ACCEPT"] for match in dns),
        [INPUT_CHAIN, *replies, "-j", "ACCEPT"],
        [INPUT_CHAIN, "-j", "DROP"],
        [EGRESS_CHAIN, "-o", BRIDGE, "-j", "RETURN"],  # bridge to bridge: dropped below
        *([EGRESS_CHAIN, *match, "-j", "RETURN"] for match in dns),
        *([EGRESS_CHAIN, "-d", str(n), *refuse] for n in NEVER),
        *([EGRESS_CHAIN, "-d", str(n), "-j", "RETURN"] for n in egress.allow),
        *([EGRESS_CHAIN, "-d", str(n), *refuse] for n in closed),
        [FORWARD_CHAIN, "-i", BRIDGE, "-o", BRIDGE, "-j", "DROP"],
        [FORWARD_CHAIN, "-i", BRIDGE, "-j", "ACCEPT"],
        [FORWARD_CHAIN, "-o", BRIDGE, *replies, "-j", "ACCEPT"],
        [FORWARD_CHAIN, "-o", BRIDGE, "-j", "DROP"],
    ]
    if egress.guard_forwarding:
        rules += [
            [GUARD_CHAIN, "-i", BRIDGE, "-j", "RETURN"],
            [GUARD_CHAIN, "-o", BRIDGE, "-j", "RETURN"],
            [GUARD_CHAIN, "-j", "DROP"],
        ]
    chains = (INPUT_CHAIN, EGRESS_CHAIN, FORWARD_CHAIN, GUARD_CHAIN)
    return _restore_input(chains, rules)


def ipv6_rules() -> str:
    """ip6tables-restore input: no IPv6 packet from, to or through the bridge."""
    return _restore_input(
        (INPUT_CHAIN, FORWARD_CHAIN), [[c, "-j", "DROP"] for c in (INPUT_CHAIN, FORWARD_CHAIN)]
    )


def _restore_input(chains: tuple[str, ...], rules: list[list[str]]) -> str:
    """Declaring a chain makes iptables-restore --noflush empty it first, in the same
    commit as the rules that follow: no instant sees it half-built."""
    lines = ["*filter", *(f":{chain} - [0:0]" for chain in chains)]
    lines += ["-A " + " ".join(rule) for rule in rules]
    return "\n".join([*lines, "COMMIT", ""])


# The jumps into the chains: (table, chain, rule, position); "first" inserts at the top,
# "last" appends (the guard acts as a policy, after everyone else's rules).
JUMPS = (
    ("filter", "INPUT", ["-i", BRIDGE, "-j", INPUT_CHAIN], "first"),
    ("filter", "FORWARD", ["-j", FORWARD_CHAIN], "first"),
    ("filter", "FORWARD", ["-i", BRIDGE, "-j", EGRESS_CHAIN], "first"),  # above FORWARD_CHAIN
    ("filter", "FORWARD", ["-j", GUARD_CHAIN], "last"),
)
IPV6_JUMPS = (
    ("filter", "INPUT", ["-i", BRIDGE, "-j", INPUT_CHAIN], "first"),
    ("filter", "FORWARD", ["-i", BRIDGE, "-j", FORWARD_CHAIN], "first"),
    ("filter", "FORWARD", ["-o", BRIDGE, "-j", FORWARD_CHAIN], "first"),
)


def _ip(*args: str) -> None:
    run(["ip", *args])


def run(argv: list[str], stdin: str | None = None) -> None:
    procs.run(argv, input=None if stdin is None else stdin.encode())


def _succeeds(argv: list[str]) -> bool:
    """For a command whose failure is an answer (iptables -C: the rule is not there)."""
    try:
        procs.run(argv)
    except CommandFailed:
        return False
    return True


def _rule(tool: str, table: str, chain: str, rule: list[str], where: str) -> None:
    """Adds a rule unless it is already there (idempotent setup)."""
    if not _succeeds([tool, "-w", "10", "-t", table, "-C", chain, *rule]):
        add = ["-I", chain, "1"] if where == "first" else ["-A", chain]
        run([tool, "-w", "10", "-t", table, *add, *rule])


def _apply(tool: str, rules: str, jumps: tuple[tuple[str, str, list[str], str], ...]) -> None:
    run([f"{tool}-restore", "-w", "10", "--noflush"], stdin=rules)
    for table, chain, rule, where in jumps:
        _rule(tool, table, chain, rule, where)


@contextlib.contextmanager
def _firewall_locked() -> Iterator[None]:
    """One platform start at a time sets the host-wide firewall (the jumps are checked,
    then added: two starts must not both add one)."""
    FIREWALL_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(FIREWALL_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _forwarding_is_ours() -> bool:
    """True when the platform turned IPv4 forwarding on, since boot (marking it before it
    does): then nothing but dyno traffic may be forwarded. Forwarding that was on before
    the platform (Docker's, a router's) is left to whoever turned it on."""
    if FORWARDING_MARK.exists():
        return True
    if IP_FORWARD.read_text().strip() == "1":
        return False
    FORWARDING_MARK.parent.mkdir(parents=True, exist_ok=True)
    FORWARDING_MARK.write_text("net.ipv4.ip_forward was 0 before the platform turned it on\n")
    return True


def observe(allow: tuple[ipaddress.IPv4Network, ...], resolv_conf: Path) -> Egress:
    """The host's facts the firewall depends on, read now (a later change of the host's
    networks or resolvers is seen at the next start)."""
    listing = procs.run(["ip", "-j", "-4", "addr", "show"]).decode()
    try:
        text = resolv_conf.read_text()
    except OSError:
        text = ""
    return Egress(
        allow=allow,
        resolvers=resolvers(text),
        host_networks=host_networks(json.loads(listing or "[]")),
        guard_forwarding=_forwarding_is_ours(),
    )


def ensure_host(
    network: ipaddress.IPv4Network,
    allow: tuple[ipaddress.IPv4Network, ...] = (),
    resolv_conf: Path = RESOLV_CONF,
) -> None:
    """The bridge, forwarding, NAT and the firewall rules; safe to call at every start.
    The rules are in place before forwarding is turned on."""
    routes = json.loads(procs.run(["ip", "-j", "route"]) or "[]")
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
    ipv6 = Path(f"/proc/sys/net/ipv6/conf/{BRIDGE}/disable_ipv6")
    if ipv6.exists():  # the kernel has IPv6
        ipv6.write_text("1\n")
    _ip("link", "set", BRIDGE, "up")
    with _firewall_locked():
        egress = observe(allow, resolv_conf)
        _apply("iptables", filter_rules(network, egress), JUMPS)
        if ipv6.exists():
            _apply("ip6tables", ipv6_rules(), IPV6_JUMPS)
        IP_FORWARD.write_text("1\n")
    nat = ["-s", str(network), "!", "-o", BRIDGE, "-j", "MASQUERADE"]
    _rule("iptables", "nat", "POSTROUTING", nat, "last")


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
    _without_ipv6(host_veth)
    batch(
        [
            f"addr add {address}/{network.prefixlen} dev eth0",
            # No IPv6 address, not even link-local, before the link is up. (disable_ipv6
            # would need a process inside the namespace; the host drops IPv6 anyway.)
            "link set eth0 addrgenmode none",
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


def _without_ipv6(interface: str) -> None:
    """IPv6 off on a host interface (a sysctl write, no process), if the kernel has it."""
    with contextlib.suppress(FileNotFoundError):
        Path(f"/proc/sys/net/ipv6/conf/{interface}/disable_ipv6").write_text("1\n")


def batch(commands: list[str], netns: str | None = None) -> None:
    """Runs `ip` commands in one process, in the dyno's network namespace if given; stops
    at the first that fails and raises with its message."""
    argv = ["ip", *(["-n", netns] if netns else []), "-batch", "-"]
    try:
        procs.run(argv, input=("\n".join(commands) + "\n").encode())
    except CommandFailed as failure:
        failed = re.search(r"Command failed -:(\d+)", failure.stderr)
        if failed is None:  # not one of the commands (ip missing, timed out)
            raise
        command = commands[int(failed.group(1)) - 1]
        message = failure.stderr.strip().splitlines()[0]
        raise CommandFailed(argv, f"{command!r}: {message}", failure.returncode) from None


def forget_neighbour(address: str, warn: cleanup.Warn = platform_log.line) -> None:
    """Addresses are reused: the host must not keep sending to a gone dyno's MAC address."""
    cleanup.command(["ip", "neigh", "flush", "to", address, "dev", BRIDGE], warn)


def delete(dyno: DynoNetwork, warn: cleanup.Warn = platform_log.line) -> None:
    """Removes the veth pair and the namespace; nothing is left if they are already gone
    (one gone meanwhile is no failure)."""
    if Path(f"/sys/class/net/{dyno.host_veth}").exists():
        cleanup.command(["ip", "link", "del", dyno.host_veth], warn, ("Cannot find device",))
    if Path(dyno.netns_path).exists():
        cleanup.command(["ip", "netns", "del", dyno.netns], warn, ("No such file or directory",))
    if dyno.address:
        forget_neighbour(dyno.address, warn)
