"""The per-app uid allocator (pure): stable order, skipping what the host uses; and the
identity arguments every build child is started with."""

import os
import subprocess

import pytest

from paas.isolation import users


def test_the_first_app_gets_the_base_and_the_next_the_one_after() -> None:
    assert users.next_uid(None, [], set()) == users.APP_UID_BASE
    assert users.next_uid(users.APP_UID_BASE, [], set()) == users.APP_UID_BASE + 1


def test_subordinate_ranges_and_accounts_are_skipped() -> None:
    reserved = users.subordinate_ranges(["alice:100000:65536\nbob:165536:65536\n", "junk\n"])
    assert reserved == [range(100000, 165536), range(165536, 231072)]
    assert users.next_uid(None, reserved, set()) == 231072
    assert users.next_uid(None, reserved, {231072, 231073}) == 231074


def test_no_uid_is_handed_out_past_the_limit() -> None:
    with pytest.raises(ValueError, match="no app uid is left"):
        users.next_uid(users.APP_UID_LIMIT, [], set())


def test_without_root_a_second_app_is_refused_unless_the_operator_accepts_sharing() -> None:
    assert users.shared_uid_refusal(root=False, shared_allowed=False, existing_apps=0) is None
    refusal = users.shared_uid_refusal(root=False, shared_allowed=False, existing_apps=1)
    assert refusal is not None and "PAAS_SHARED_UID=1" in refusal and "as root" in refusal
    assert users.shared_uid_refusal(root=False, shared_allowed=True, existing_apps=5) is None
    assert users.shared_uid_refusal(root=True, shared_allowed=False, existing_apps=5) is None


def test_run_as_gives_popen_the_account_without_supplementary_groups_or_nothing() -> None:
    assert users.run_as(None) == {"user": None, "group": None, "extra_groups": None}
    assert users.run_as(users.Account(200123, 200123)) == {
        "user": 200123,
        "group": 200123,
        "extra_groups": [],
    }


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can start a child as another account")
def test_a_child_started_with_run_as_has_only_the_accounts_ids() -> None:
    argv = ["sh", "-c", "id -u; id -g; id -G"]
    child = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
        **users.run_as(users.Account(200123, 200124)),
    )
    assert child.stdout.split() == ["200123", "200124", "200124"]
    mine = subprocess.run(
        argv, capture_output=True, text=True, timeout=10, check=True, **users.run_as(None)
    )
    assert mine.stdout.split()[:2] == [str(os.geteuid()), str(os.getegid())]
