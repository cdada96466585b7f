"""The dyno firewall's add-on openings as iptables-restore text, from iptables-save text."""

from pathlib import Path

from paas.isolation import addon_firewall as fw

HOME = Path("/var/lib/paas-a")
CHAIN = fw.chain_name(HOME)
GRANT = fw.Grant("10.213.0.5", "10.213.0.1", 5432, "ad-1", "app-1")


def saved(*rules: str, chains: tuple[str, ...] = ()) -> fw.Saved:
    text = "\n".join(["*filter", *(f":{c} - [0:0]" for c in chains), *rules, "COMMIT"])
    return fw.Saved.parse(text)


def test_chain_names_are_per_home_and_fit_iptables() -> None:
    other = fw.chain_name(Path("/var/lib/paas-b"))
    assert other != CHAIN and CHAIN.startswith(fw.HOME_CHAIN_PREFIX)
    assert len(CHAIN) <= 28 and fw.chain_name(HOME) == CHAIN


def test_grants_of_a_dyno_are_its_apps_endpoints_only() -> None:
    grants = fw.grants_for("10.213.0.9", "app-1", [("ad-1", "10.213.0.1", 5432)])
    assert grants == [fw.Grant("10.213.0.9", "10.213.0.1", 5432, "ad-1", "app-1")]
    assert fw.grants_for("10.213.0.9", "app-1", []) == []


def test_the_rule_is_exactly_source_to_endpoint_port() -> None:
    assert fw.rule(CHAIN, GRANT) == (
        f"-A {CHAIN} -s 10.213.0.5/32 -d 10.213.0.1/32 -p tcp -m tcp --dport 5432 "
        '-m comment --comment "addon=ad-1 app=app-1" -j ACCEPT'
    )


def test_a_first_grant_creates_the_chains_and_the_jump() -> None:
    text = fw.edit(saved(), CHAIN, [GRANT], lambda _r: False)
    assert text is not None
    lines = text.splitlines()
    assert lines[:3] == ["*filter", f":{fw.ADDONS_CHAIN} - [0:0]", f":{CHAIN} - [0:0]"]
    assert f"-A {fw.ADDONS_CHAIN} -j {CHAIN}" in lines
    assert fw.rule(CHAIN, GRANT) in lines and lines[-1] == "COMMIT"


def test_a_later_grant_only_appends_and_drops_leftovers_at_its_address() -> None:
    other_home = fw.chain_name(Path("/var/lib/paas-b"))
    leftover = fw.rule(other_home, fw.Grant("10.213.0.5", "10.213.0.1", 6379, "x", "y"))
    unrelated = fw.rule(other_home, fw.Grant("10.213.0.6", "10.213.0.1", 6379, "x", "y"))
    state = saved(
        f"-A {fw.ADDONS_CHAIN} -j {CHAIN}",
        leftover,
        unrelated,
        chains=(fw.ADDONS_CHAIN, CHAIN, other_home),
    )
    text = fw.edit(state, CHAIN, [GRANT], lambda r: fw._source_of(r) == "10.213.0.5")
    assert text is not None
    lines = text.splitlines()
    assert not any(line.startswith(":") for line in lines)  # no chain emptied
    assert "-D" + leftover[2:] in lines and not any(unrelated[2:] in line for line in lines)
    assert f"-A {fw.ADDONS_CHAIN} -j {CHAIN}" not in lines  # the jump is there already
    assert lines.index("-D" + leftover[2:]) < lines.index(fw.rule(CHAIN, GRANT))


def test_nothing_to_do_is_no_restore() -> None:
    assert fw.edit(saved(), CHAIN, [], lambda _r: True) is None


def test_revoking_by_comment() -> None:
    state = saved(fw.rule(CHAIN, GRANT), chains=(CHAIN,))
    line = state.home_rules()[0]
    assert fw._comment_of(line) == "addon=ad-1 app=app-1"
    assert fw._source_of(line) == "10.213.0.5"


def test_replacement_and_removal() -> None:
    text = fw.replacement(CHAIN, [GRANT], saved(chains=(fw.ADDONS_CHAIN,)))
    lines = text.splitlines()
    assert f":{CHAIN} - [0:0]" in lines and f":{fw.ADDONS_CHAIN} - [0:0]" not in lines
    assert fw.rule(CHAIN, GRANT) in lines and f"-A {fw.ADDONS_CHAIN} -j {CHAIN}" in lines
    assert fw.removal(CHAIN, saved()) is None
    other = fw.chain_name(Path("/var/lib/paas-b"))
    state = saved(
        fw.INPUT_JUMP,
        f"-A {fw.ADDONS_CHAIN} -j {CHAIN}",
        f"-A {fw.ADDONS_CHAIN} -j {other}",
        chains=(fw.ADDONS_CHAIN, CHAIN, other),
    )
    removal = fw.removal(CHAIN, state)
    assert removal is not None
    assert removal.splitlines()[1:-1] == [
        f":{CHAIN} - [0:0]",
        f"-D {fw.ADDONS_CHAIN} -j {CHAIN}",
        f"-X {CHAIN}",
    ]
    # The last home's removal takes the shared chain and INPUT's jump too.
    last = fw.removal(CHAIN, saved(fw.INPUT_JUMP, chains=(fw.ADDONS_CHAIN, CHAIN)))
    assert last is not None and last.splitlines()[-4:-1] == [
        "-D" + fw.INPUT_JUMP[2:],
        f":{fw.ADDONS_CHAIN} - [0:0]",
        f"-X {fw.ADDONS_CHAIN}",
    ]


def test_the_input_jump_is_put_back_above_the_dyno_chain() -> None:
    from paas.isolation import network

    assert fw.BRIDGE == network.BRIDGE
    dynos_jump = f"-A INPUT -i {network.BRIDGE} -j {network.INPUT_CHAIN}"
    on_top = saved(fw.INPUT_JUMP, dynos_jump, chains=(fw.ADDONS_CHAIN, CHAIN))
    assert fw._input_jump(on_top) == []
    below = saved(dynos_jump, fw.INPUT_JUMP, chains=(fw.ADDONS_CHAIN, CHAIN))
    assert fw._input_jump(below) == [
        "-D" + fw.INPUT_JUMP[2:],
        f"-I INPUT 1 -i {fw.BRIDGE} -j {fw.ADDONS_CHAIN}",
    ]
    text = fw.edit(saved(dynos_jump), CHAIN, [GRANT], lambda _r: False)
    assert text is not None and f"-I INPUT 1 -i {fw.BRIDGE} -j {fw.ADDONS_CHAIN}" in text


def test_revoking_by_endpoint_closes_an_opening_whatever_its_comment() -> None:
    stale = fw.Grant("10.213.0.9", GRANT.address, GRANT.port, "ad-old", "app-2")
    other = fw.Grant("10.213.0.9", GRANT.address, GRANT.port + 1, "ad-2", "app-2")
    rules = [fw.rule(CHAIN, g) for g in (GRANT, stale, other)]
    by_endpoint = fw.revoked(CHAIN, "ad-1", None, (GRANT.address, GRANT.port))
    assert [by_endpoint(r) for r in rules] == [True, True, False]
    by_comment = fw.revoked(CHAIN, "ad-1", None, None)
    assert [by_comment(r) for r in rules] == [True, False, False]
    elsewhere = fw.rule("PAAS-AO-0000000000000000", GRANT)
    assert not by_endpoint(elsewhere)  # another home's chain is not ours to change
