"""Formation updates as Heroku's clients send them, checked before anything is applied.

Heroku's API takes a quantity as a number or a numeric string: "2" sets it, "+1" and "-1"
(what `heroku ps:scale worker+1` sends) move it from where it is. Sizes come in Heroku's
names in any case (paas.domain.sizes.canonical). A batch is checked whole first, so a bad
update anywhere leaves every type as it was.

Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from paas.domain import sizes, validation
from paas.domain.errors import InvalidParams
from paas.domain.validation import MAX_QUANTITY

_QUANTITY = re.compile(r"\s*([+-]?)(\d{1,6})\s*")


@dataclass(frozen=True)
class Quantity:
    value: int
    relative: bool = False  # value is a change (+1, -2) from the current quantity

    def applied_to(self, current: int) -> int:
        return validation.quantity(current + self.value if self.relative else self.value)


@dataclass(frozen=True)
class Change:
    type: str
    quantity: Quantity | None
    size: str | None


def quantity(value: object) -> Quantity:
    """2, "2", "+1" or "-1"; anything else is InvalidParams."""
    if isinstance(value, int) and not isinstance(value, bool):
        return Quantity(validation.quantity(value))
    match = _QUANTITY.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidParams(
            f"invalid quantity {value!r}: give a whole number from 0 to {MAX_QUANTITY} "
            "(or +N / -N to change it)"
        )
    sign, digits = match.groups()
    if sign:
        return Quantity(int(digits) * (-1 if sign == "-" else 1), relative=True)
    return Quantity(validation.quantity(int(digits)))


def change(update: object, kind: object = None) -> Change:
    """One update {type, quantity, size} (type given by the path when `kind` is)."""
    if not isinstance(update, dict) or not ({"quantity", "size"} & set(update)):
        raise InvalidParams("each formation update needs a type and a quantity or size")
    given = update.get("quantity")
    size = update.get("size")
    return Change(
        validation.process_type(update.get("type") if kind is None else kind),
        None if given is None else quantity(given),
        None if size is None else sizes.canonical(size),
    )


def changes(updates: object) -> dict[str, Change]:
    """A batch: each type once (the last update of a type wins, as Heroku does)."""
    if not isinstance(updates, list) or not updates:
        raise InvalidParams(
            'formation updates must be a list such as [{"type": "web", "quantity": 2}]'
        )
    checked = [change(update) for update in updates]
    return {c.type: c for c in checked}
