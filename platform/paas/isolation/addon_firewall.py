"""The dyno firewall's openings for add-ons: a running container dyno of an app attached to
an add-on may open TCP connections to that add-on's endpoint on the bridge's host address,
and nothing else of the host (paas.isolation.network drops every other new connection
from the bridge).

Layout: INPUT sends the bridge to the host-wide ADDONS_CHAIN first, above network's jump to
its INPUT chain (PAAS-DYNOS-IN, whose last rule drops); ADDONS_CHAIN jumps to one chain per
PAAS_HOME (`chain_name`); a home's chain holds one ACCEPT per (dyno address, add-on
endpoint), commented with the add-on's and app's ids. What is not accepted returns and
meets PAAS-DYNOS-IN's DROP. The jump lives in INPUT, not in network's chain, which every
platform start rewrites (and a platform of an older version would rewrite without it);
every grant puts it back on top if anything moved above it.

Invariants: an opening exists only while its dyno's address is claimed by that dyno: it is
made before the dyno's process starts (placement, `grant`) and goes when the address is
released (network.remove calls `forget_source`, under the claims lock, so no new holder
is granted in between), and any opening left at an address (a crash) goes when the
address's next dyno is placed. Detach and destroy revoke theirs at
once (`revoke`); a platform start rebuilds its home's chain from its running dynos
(`replace_home`) and its stop removes the chain (`remove_home`). Every change is one
iptables-restore under the host-wide firewall lock, built by pure functions from
`iptables-save`'s text.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shlex
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from paas.host import procs

BRIDGE = "paas0"  # network.BRIDGE (network imports this module)
ADDONS_CHAIN = "PAAS-ADDONS-IN"
INPUT_JUMP = f"-A INPUT -i {BRIDGE} -j {ADDONS_CHAIN}"
HOME_CHAIN_PREFIX = "PAAS-AO-"
FIREWALL_LOCK = Path("/run/paas/firewall.lock")  # the one lock of every firewall change
# Made the first time a home grants anything (gone at reboot, as the rules are): until
# then a dyno's stop need not read the rules at all.
GRANTED_MARK = Path("/run/paas/addon-grants")


@dataclass(frozen=True)
class Grant:
    """Dyno address `source` may connect to `address`:`port`, add-on `addon_id`'s, as a
    dyno of app `app_id`."""

    source: str
    address: str
    port: int
    addon_id: str
    app_id: str

    @property
    def comment(self) -> str:
        return f"addon={self.addon_id} app={self.app_id}"


def chain_name(home: Path) -> str:
    """A chain name unique to the PAAS_HOME (iptables allows 28 characters)."""
    return HOME_CHAIN_PREFIX + hashlib.sha256(str(home).encode()).hexdigest()[:16]


def grants_for(source: str, app_id: str, endpoints: Iterable[tuple[str, str, int]]) -> list[Grant]:
    """The openings of one dyno at `source` of app `app_id`, from its app's attached
    add-ons' (id, address, port)."""
    return [Grant(source, address, port, addon, app_id) for addon, address, port in endpoints]


def rule(chain: str, grant: Grant) -> str:
    """One ACCEPT as `iptables-save` prints it (so a saved one can be matched and deleted)."""
    return (
        f"-A {chain} -s {grant.source}/32 -d {grant.address}/32 -p tcp -m tcp "
        f'--dport {grant.port} -m comment --comment "{grant.comment}" -j ACCEPT'
    )


@dataclass(frozen=True)
class Saved:
    """What `iptables-save -t filter` says of the add-on chains."""

    chains: frozenset[str]  # every chain that exists
    rules: tuple[str, ...]  # every `-A` line, in order

    @staticmethod
    def parse(text: str) -> Saved:
        chains = frozenset(line[1:].split()[0] for line in text.splitlines() if line[:1] == ":")
        rules = tuple(line for line in text.splitlines() if line.startswith("-A "))
        return Saved(chains, rules)

    def home_rules(self) -> list[str]:
        return [r for r in self.rules if r.split()[1].startswith(HOME_CHAIN_PREFIX)]


def _input_jump(saved: Saved) -> list[str]:
    """The lines that put INPUT's jump to ADDONS_CHAIN above every other rule for the
    bridge (none when it is there already)."""
    bridge = [r for r in saved.rules if r.startswith("-A INPUT ") and f"-i {BRIDGE} " in r]
    if bridge[:1] == [INPUT_JUMP]:
        return []
    stale = ["-D" + INPUT_JUMP[2:]] * bridge.count(INPUT_JUMP)
    return [*stale, f"-I INPUT 1 -i {BRIDGE} -j {ADDONS_CHAIN}"]


def _jump(chain: str) -> str:
    return f"-A {ADDONS_CHAIN} -j {chain}"


def _source_of(line: str) -> str | None:
    words = line.split()
    return words[words.index("-s") + 1].removesuffix("/32") if "-s" in words else None


def _comment_of(line: str) -> str:
    found = re.search(r'--comment "([^"]*)"', line) or re.search(r"--comment (\S+)", line)
    return found.group(1) if found else ""


def edit(saved: Saved, chain: str, add: Iterable[Grant], drop: Callable[[str], bool]) -> str | None:
    """The iptables-restore --noflush input that deletes every add-on rule (of any home)
    `drop` matches and appends `add` to `chain`, creating the chains and jumps it needs;
    None when there is nothing to do."""
    add = list(add)
    lines = ["*filter"]
    if add and ADDONS_CHAIN not in saved.chains:
        lines.append(f":{ADDONS_CHAIN} - [0:0]")
    if add and chain not in saved.chains:
        lines.append(f":{chain} - [0:0]")
    deletions = ["-D" + line[2:] for line in saved.home_rules() if drop(line)]
    lines += deletions
    if add and _jump(chain) not in saved.rules:
        lines.append(_jump(chain))
    if add:
        lines += _input_jump(saved)
    lines += [rule(chain, g) for g in add]
    if not deletions and not add:
        return None
    return "\n".join([*lines, "COMMIT", ""])


def replacement(chain: str, grants: Iterable[Grant], saved: Saved) -> str:
    """The input that makes `chain` exactly `grants` in one commit (declaring a chain
    empties it) and jumps to it."""
    lines = ["*filter", f":{chain} - [0:0]"]
    if ADDONS_CHAIN not in saved.chains:
        lines.insert(1, f":{ADDONS_CHAIN} - [0:0]")
    lines += [rule(chain, g) for g in grants]
    if _jump(chain) not in saved.rules:
        lines.append(_jump(chain))
    lines += _input_jump(saved)
    return "\n".join([*lines, "COMMIT", ""])


def removal(chain: str, saved: Saved) -> str | None:
    """The input that removes the home's chain and its jump, and the shared chain and
    INPUT's jump to it when no other home's chain is left; None when there is nothing."""
    if chain not in saved.chains:
        return None
    lines = ["*filter", f":{chain} - [0:0]"]  # emptied, so it can be deleted
    if _jump(chain) in saved.rules:
        lines.append("-D" + _jump(chain)[2:])
    lines.append(f"-X {chain}")
    others = [c for c in saved.chains if c.startswith(HOME_CHAIN_PREFIX) and c != chain]
    if not others and ADDONS_CHAIN in saved.chains:
        lines += ["-D" + INPUT_JUMP[2:]] * saved.rules.count(INPUT_JUMP)
        lines += [f":{ADDONS_CHAIN} - [0:0]", f"-X {ADDONS_CHAIN}"]
    return "\n".join([*lines, "COMMIT", ""])


# --- applying them -----------------------------------------------------------------------


def usable() -> bool:
    """Whether this host has the firewall at all (root, iptables): without it (plain
    process dynos) there are no openings to make or close."""
    return os.geteuid() == 0 and shutil.which("iptables-save") is not None


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """The host-wide firewall lock (network's too): one change at a time."""
    FIREWALL_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(FIREWALL_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _save() -> Saved:
    return Saved.parse(procs.run(["iptables-save", "-t", "filter"]).decode())


def _restore(text: str | None) -> None:
    if text is not None:
        procs.run(["iptables-restore", "-w", "10", "--noflush"], input=text.encode())


def grant(home: Path, source: str, grants: list[Grant] | Callable[[], list[Grant]]) -> None:
    """Opens `grants` for a new dyno at address `source`, first dropping whatever opening
    any home left there (its old holder's stop never ran, or raced a platform start), even
    when the new dyno has none of its own. Given a callable, the grants are read under the
    firewall lock: a detach committed after that read revokes after this grant (its
    revoke waits for the lock), so no stale opening outlives it."""
    read = grants if callable(grants) else lambda: grants
    if not read() and not GRANTED_MARK.exists():
        return  # no home on this host ever opened anything
    with locked():
        GRANTED_MARK.touch()
        fresh = read()
        _restore(edit(_save(), chain_name(home), fresh, lambda r: _source_of(r) == source))


def forget_source(address: str) -> None:
    """Closes every opening of dyno address `address`, in every home: its dyno is gone."""
    if not GRANTED_MARK.exists():
        return
    with locked():
        _restore(edit(_save(), "", [], lambda r: _source_of(r) == address))


def revoke(
    home: Path, addon_id: str, app_id: str | None = None, endpoint: tuple[str, int] | None = None
) -> None:
    """Closes the openings to an add-on (of one app's dynos only, when given), and every
    opening of the home to `endpoint` (address, port) whatever its comment says."""
    chain = chain_name(home)
    with locked():
        _restore(edit(_save(), chain, [], revoked(chain, addon_id, app_id, endpoint)))


def revoked(
    chain: str, addon_id: str, app_id: str | None, endpoint: tuple[str, int] | None
) -> Callable[[str], bool]:
    """Which of `chain`'s rules `revoke` deletes."""
    wanted = f"addon={addon_id} " + (f"app={app_id}" if app_id else "")

    def matches(line: str) -> bool:
        words = line.split()
        if words[1] != chain:
            return False
        if endpoint is not None and _endpoint_of(words) == endpoint:
            return True
        return _comment_of(line).startswith(wanted)

    return matches


def _endpoint_of(words: list[str]) -> tuple[str, int] | None:
    if "-d" not in words or "--dport" not in words:
        return None
    port = words[words.index("--dport") + 1]
    address = words[words.index("-d") + 1].removesuffix("/32")
    return (address, int(port)) if port.isdigit() else None


def replace_home(home: Path, grants: list[Grant]) -> None:
    """The home's chain is exactly `grants` (a platform start, from its running dynos)."""
    with locked():
        saved = _save()
        if not grants and chain_name(home) not in saved.chains:
            return
        GRANTED_MARK.touch()
        _restore(replacement(chain_name(home), grants, saved))


def remove_home(home: Path) -> None:
    """Removes the home's chain and jump (the platform's stop)."""
    with locked():
        _restore(removal(chain_name(home), _save()))


def listed(home: Path) -> list[str]:
    """The home's rules as iptables-save prints them (tests, `paas` diagnostics)."""
    chain = chain_name(home)
    return [r for r in _save().rules if shlex.split(r)[1] == chain]
