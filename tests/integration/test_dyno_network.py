"""What a container dyno can reach beyond the host: no IPv6 at all, no link-local or cloud
metadata address, no private network unless PAAS_DYNO_EGRESS_ALLOW lists it, the resolver
on port 53 only; and the host forwards for the dyno bridge and nothing else.

Every network a dyno tries to reach here is a namespace the test creates, joined to the host
by its own veth pair (not on paas0), so no probe leaves the machine. Each test puts the
shared firewall back as the platform sets it (`network.ensure_host` with no options).
Skipped unless running as root with a built stack (as tests/integration/test_containers.py).
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_containers
from platform_harness import PAAS, wait_for
from test_containers import STACK, Dynos, can_connect

from paas.domain import addressing
from paas.isolation import network

dynos = test_containers.dynos  # the fixture: a real container runtime on a temp PAAS_HOME

pytestmark = pytest.mark.skipif(STACK is None, reason="needs root and a built stack")
TAG = os.getpid() % 10000
OCTET = os.getpid() % 200 + 20  # distinct /24s for concurrent runs of this file


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def peer(name: str, host_side: str, peer_side: str) -> Iterator[str]:
    """A namespace joined to the host by a veth pair outside paas0: the host's end has
    `host_side` (an interface address), the namespace's end `peer_side`, routed via the
    host. Yields the namespace's name."""
    netns, veth = f"paastest-{name}-{TAG}", f"pt{name}{TAG}"
    host_address = host_side.split("/")[0]
    try:
        sh("ip", "netns", "add", netns)
        sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        sh("ip", "addr", "add", host_side, "dev", veth)
        sh("ip", "link", "set", veth, "up")
        for command in (
            ["addr", "add", peer_side, "dev", "eth0"],
            ["link", "set", "eth0", "up"],
            ["link", "set", "lo", "up"],
            ["route", "add", "default", "via", host_address],
        ):
            sh("ip", "-n", netns, *command)
        yield netns
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", veth], capture_output=True, timeout=30)


@contextlib.contextmanager
def listening(netns: str, address: str, port: int) -> Iterator[None]:
    """A TCP server at address:port inside the namespace, answering once the host reaches it."""
    serve = (
        f"import socket; s = socket.socket(); s.bind(({address!r}, {port})); s.listen()\n"
        "while True: s.accept()[0].close()\n"
    )
    server = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", serve],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: can_connect(address, port), 10, f"a listener at {address}:{port}")
        yield
    finally:
        server.kill()
        server.wait(10)


def from_dyno(fleet: Dynos, script: str) -> list[str]:
    """Runs a Python script in a fresh container dyno and returns its output lines."""
    encoded = base64.b64encode(script.encode()).decode()
    return fleet.run(f"python3 -c \"import base64; exec(base64.b64decode('{encoded}'))\"")


def connect_results(fleet: Dynos, targets: list[tuple[str, int]]) -> dict[str, int]:
    """connect_ex's result for each target, from inside a dyno (0: it connected)."""
    script = (
        "import socket\n"
        f"for host, port in {targets!r}:\n"
        "    s = socket.socket(); s.settimeout(2)\n"
        "    print('result', host, s.connect_ex((host, port)))\n"
    )
    lines = from_dyno(fleet, script)
    return {w[1]: int(w[2]) for w in (line.split() for line in lines) if w[0] == "result"}


def connects_from(netns: str, host: str, port: int) -> bool:
    probe = f"import socket; socket.create_connection(({host!r}, {port}), timeout=2).close()"
    command = ["ip", "netns", "exec", netns, sys.executable, "-c", probe]
    return subprocess.run(command, capture_output=True, timeout=30).returncode == 0


@pytest.fixture
def restored(dynos: Dynos) -> Iterator[Dynos]:
    """The shared firewall back as the platform sets it, whatever the test changed."""
    try:
        yield dynos
    finally:
        network.ensure_host(dynos.subnet)


def host_ipv6_addresses() -> list[str]:
    """The host's global IPv6 addresses, and the bridge's link-local ones (scoped to a
    dyno's eth0) if it has any."""
    addresses = []
    for scope, device in (("global", []), ("link", ["dev", network.BRIDGE])):
        listing = subprocess.run(
            ["ip", "-6", "-o", "addr", "show", "scope", scope, *device],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        addresses += [line.split()[3].split("/")[0] for line in listing.splitlines()]
    return [f"{a}%eth0" if a.startswith("fe80:") else a for a in addresses]


def test_a_dyno_has_no_ipv6_and_reaches_no_host_ipv6_service(restored: Dynos) -> None:
    """The host serves on [::] (IPv4 and IPv6): the dyno has no IPv6 address but ::1, and
    reaches the service neither at the bridge's link-local address nor at any host one."""
    listener = socket.socket(socket.AF_INET6)
    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    listener.bind(("::", 0))
    listener.listen()
    port = listener.getsockname()[1]
    targets = host_ipv6_addresses()
    assert targets
    # A dyno's own link-local address (if it has one) is usable once duplicate address
    # detection ends (about a second): the probe waits for that, so it cannot pass only by
    # being early.
    script = (
        "import socket, time\n"
        "def tentative():\n"
        "    return [l for l in open('/proc/net/if_inet6') if int(l.split()[4], 16) & 0x40]\n"
        "deadline = time.monotonic() + 5\n"
        "while tentative() and time.monotonic() < deadline: time.sleep(0.1)\n"
        "print(open('/proc/net/if_inet6').read())\n"
        f"for target in {targets!r}:\n"
        f"    info = socket.getaddrinfo(target, {port}, socket.AF_INET6)[0][4]\n"
        "    s = socket.socket(socket.AF_INET6); s.settimeout(2)\n"
        "    print('result', target, s.connect_ex(info))\n"
    )
    try:
        lines = from_dyno(restored, script)
    finally:
        listener.close()
    interfaces = {w[5] for w in (line.split() for line in lines) if len(w) == 6}
    results = {w[1]: int(w[2]) for w in (line.split() for line in lines) if w[:1] == ["result"]}
    assert interfaces == {"lo"}, lines  # ::1 only
    assert len(results) == len(targets) and 0 not in results.values(), results


def test_a_dyno_reaches_a_private_network_only_when_the_operator_allows_it(
    restored: Dynos,
) -> None:
    lan = f"10.99.{OCTET}"
    with peer("lan", f"{lan}.1/30", f"{lan}.2/30") as netns, listening(netns, f"{lan}.2", 8000):
        assert can_connect(f"{lan}.2", 8000)  # the host itself does
        assert connect_results(restored, [(f"{lan}.2", 8000)])[f"{lan}.2"] != 0
        network.ensure_host(restored.subnet, addressing.egress_allow(f"192.168.77.0/24,{lan}.2"))
        assert connect_results(restored, [(f"{lan}.2", 8000)])[f"{lan}.2"] == 0


def test_a_dyno_never_reaches_the_metadata_address(restored: Dynos) -> None:
    """Not even when the operator allows every private range."""
    metadata = "169.254.169.254"
    every_private_range = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10"
    with (
        peer("md", "169.254.169.253/30", f"{metadata}/30") as netns,
        listening(netns, metadata, 8080),
    ):
        assert can_connect(metadata, 8080)  # the host does
        assert connect_results(restored, [(metadata, 8080)])[metadata] != 0
        network.ensure_host(restored.subnet, addressing.egress_allow(every_private_range))
        assert connect_results(restored, [(metadata, 8080)])[metadata] != 0


def test_the_resolver_stays_reachable_on_port_53_only(restored: Dynos, tmp_path: Path) -> None:
    """A resolver on a private address (as /etc/resolv.conf often names) answers a dyno on
    port 53, UDP and TCP; its other ports stay closed to dynos."""
    lan = f"10.97.{OCTET}"
    resolver = f"{lan}.2"
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text(Path("/etc/resolv.conf").read_text() + f"nameserver {resolver}\n")
    echo = (
        "import socket, threading\n"
        f"u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(({resolver!r}, 53))\n"
        "def answer():\n"
        "    while True:\n"
        "        data, peer = u.recvfrom(512); u.sendto(data, peer)\n"
        "threading.Thread(target=answer, daemon=True).start()\n"
        f"t = socket.socket(); t.bind(({resolver!r}, 53)); t.listen()\n"
        "while True: t.accept()[0].close()\n"
    )
    with peer("dns", f"{lan}.1/30", f"{resolver}/30") as netns:
        server = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, "-c", echo],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for(lambda: can_connect(resolver, 53), 10, "the test resolver")
            with listening(netns, resolver, 8000):
                network.ensure_host(restored.subnet, resolv_conf=resolv_conf)
                script = (
                    "import socket\n"
                    "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(2)\n"
                    f"u.sendto(b'query', ({resolver!r}, 53))\n"
                    "try: print('udp', u.recv(512).decode())\n"
                    "except OSError as e: print('udp', e)\n"
                    f"for port in (53, 8000):\n"
                    "    s = socket.socket(); s.settimeout(2)\n"
                    f"    print('tcp', port, s.connect_ex(({resolver!r}, port)))\n"
                )
                lines = from_dyno(restored, script)
        finally:
            server.kill()
            server.wait(10)
    assert "udp query" in lines, lines
    assert "tcp 53 0" in lines, lines
    assert "tcp 8000 0" not in lines and any(line.startswith("tcp 8000") for line in lines)


def test_the_host_forwards_for_the_dyno_bridge_only(
    restored: Dynos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two networks the host routes between, neither on paas0: once the platform has turned
    IPv4 forwarding on, the host does not forward between them; where forwarding was on
    before the platform (Docker's, the operator's), their forwarding is left as it was."""
    before = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    assert before.strip() == "1"  # ensure_host has run (the dynos fixture)
    guard_before = guard_rules()
    a, b = f"10.98.{OCTET}.1", f"10.98.{OCTET}.5"
    try:
        with (
            peer("fa", f"{a}/30", f"10.98.{OCTET}.2/30") as left,
            peer("fb", f"{b}/30", f"10.98.{OCTET}.6/30") as right,
            listening(right, f"10.98.{OCTET}.6", 8000),
        ):
            monkeypatch.setattr(network, "FORWARDING_MARK", tmp_path / "none", raising=False)
            network.ensure_host(restored.subnet)  # forwarding was the operator's
            assert connects_from(left, f"10.98.{OCTET}.6", 8000)
            mark = tmp_path / "enabled-by-paas"
            mark.write_text("")
            monkeypatch.setattr(network, "FORWARDING_MARK", mark, raising=False)
            network.ensure_host(restored.subnet)  # forwarding is the platform's
            assert not connects_from(left, f"10.98.{OCTET}.6", 8000)
            assert can_connect(f"10.98.{OCTET}.6", 8000)  # the host itself still does
    finally:
        monkeypatch.undo()
        network.ensure_host(restored.subnet)
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == before
    assert guard_rules() == guard_before  # the host's forwarding policy as it was


def guard_rules() -> str:
    return subprocess.run(
        ["iptables", "-S", network.GUARD_CHAIN], capture_output=True, text=True, timeout=30
    ).stdout


def test_a_bad_egress_allow_list_stops_the_start_with_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"PATH": os.environ["PATH"], "PAAS_HOME": str(home)}
    result = subprocess.run(
        [str(PAAS), "server"],
        env={**env, "PAAS_DYNO_EGRESS_ALLOW": "10.0.0.0/8,169.254.169.254"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: PAAS_DYNO_EGRESS_ALLOW: 169.254.169.254 is within 169.254.0.0/16 "
        "(link-local or cloud metadata), which dynos never reach: remove it"
    ]
    assert not home.exists()  # refused before anything was written
