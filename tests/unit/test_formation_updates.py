"""Formation updates as Heroku's clients send them (paas.domain.formation, sizes)."""

from __future__ import annotations

import pytest

from paas.domain import formation, sizes
from paas.domain.errors import InvalidParams


@pytest.mark.parametrize(
    ("given", "current", "wanted"),
    [(2, 5, 2), ("2", 5, 2), (" 3 ", 0, 3), ("+1", 1, 2), ("-2", 3, 1), ("0", 4, 0)],
)
def test_quantities_as_numbers_numeric_strings_or_changes(
    given: object, current: int, wanted: int
) -> None:
    assert formation.quantity(given).applied_to(current) == wanted


@pytest.mark.parametrize("given", ["two", "", "1.5", True, None, -1, "101", "-3"])
def test_bad_quantities_are_refused(given: object) -> None:
    with pytest.raises(InvalidParams, match="quantity"):
        formation.quantity(given).applied_to(2)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Standard-2X", "standard-2x"),
        ("standard-1x", "standard-1x"),
        ("PERFORMANCE-M", "performance-m"),
        ("2X", "standard-2x"),
        ("768m", "768M"),
    ],
)
def test_sizes_in_herokus_names_in_any_case(given: str, stored: str) -> None:
    assert sizes.canonical(given) == stored


def test_an_unknown_size_names_the_choices() -> None:
    with pytest.raises(InvalidParams, match="Standard-1X, Standard-2X, Performance-M"):
        sizes.canonical("Basic")


def test_sizes_leave_in_herokus_spelling() -> None:
    assert [sizes.display(s) for s in ("standard-1x", "performance-l", "768M")] == [
        "Standard-1X",
        "Performance-L",
        "768M",
    ]


def test_a_batch_is_checked_whole_before_anything_applies() -> None:
    with pytest.raises(InvalidParams, match="size"):
        formation.changes([{"type": "web", "quantity": 2}, {"type": "worker", "size": "huge"}])
    batch = formation.changes([{"type": "web", "quantity": "2", "size": "standard-2x"}])
    assert batch["web"] == formation.Change("web", formation.Quantity(2), "standard-2x")
