"""Who pushed reaches the pre-receive hook: the git endpoint's environment for it
(paas.api.git.pusher_env) read back by the hook (paas.push.hook.pusher)."""

from __future__ import annotations

import pytest

from paas.api.git import pusher_env
from paas.domain.access import OPERATOR, Principal
from paas.push.hook import UNKNOWN_PUSHER, pusher


@pytest.mark.parametrize(
    "caller",
    [OPERATOR, Principal("u-1", "ann@example.com"), Principal("u-2", "root@example.com", True)],
)
def test_the_pusher_survives_the_hooks_environment(caller: Principal) -> None:
    assert pusher({"PAAS_APP": "shop", **pusher_env(caller)}) == caller


def test_a_hook_run_without_a_pusher_records_an_unknown_one_not_the_operator() -> None:
    found = pusher({"PAAS_APP": "shop"})
    assert found == UNKNOWN_PUSHER
    assert found != OPERATOR and not found.admin and found.email == "unknown pusher"
