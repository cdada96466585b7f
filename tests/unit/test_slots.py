"""paas.api.slots: a key's bound, then the process's, and give returns what take took."""

from __future__ import annotations

from paas.api.slots import SlotPool


def test_a_key_is_refused_past_its_share_and_all_past_the_total() -> None:
    pool = SlotPool(total=3, per_key=2)
    assert [pool.take("ada"), pool.take("ada"), pool.take("ada")] == [None, None, "key"]
    assert [pool.take("bob"), pool.take("cy")] == [None, "total"]
    pool.give("ada")
    assert pool.take("cy") is None  # the slot ada gave back, and cy's own share
    assert pool.take("ada") == "total"
