"""Risk rules: which accepted lists go to manual review (configured in [clearance.risk])."""

from __future__ import annotations

import random
from decimal import Decimal

from sqlalchemy import Connection, Row, bindparam, func, literal, select

from hub.clearance.states import COUNTED
from hub.clearance.tables import lists
from hub.config import RiskSettings
from hub.store.prepared import Prepared

# The counted states are fixed values bound once (an expanding IN cannot be prepared).
_OTHERS = (
    select(func.count())
    .select_from(lists)
    .where(
        lists.c.id != bindparam("list_id"),
        lists.c.state.in_([literal(s.value) for s in sorted(COUNTED)]),
    )
)
_EARLIER = Prepared(_OTHERS.where(lists.c.buyer_id_number == bindparam("buyer")))
_EARLIER_NO_BUYER = Prepared(_OTHERS.where(lists.c.buyer_id_number.is_(None)))


def sampled(seed: int, pre_no: str, rate: float) -> bool:
    """A fixed draw per list: the same seed and preNo always give the same answer."""
    if rate <= 0:
        return False
    return random.Random(f"{seed}:{pre_no}").random() < rate


def fired_rule(conn: Connection, row: Row, value: Decimal, rules: RiskSettings) -> str | None:
    """The first rule that fires for the list, named for the review queue, or None."""
    for line in row.lines:
        gcode = line.get("gcode", "")
        for prefix in rules.hs_prefixes:
            if gcode.startswith(prefix):
                return f"hs:{prefix}"
    if rules.value_above is not None and value > rules.value_above:
        return f"value>{rules.value_above}"
    if rules.first_purchase and _first_purchase(conn, row):
        return "first-purchase"
    if sampled(rules.sampling_seed, row.pre_no or "", rules.sampling_rate):
        return "sampling"
    return None


def _first_purchase(conn: Connection, row: Row) -> bool:
    if row.buyer_id_number is None:  # as Core compiles `== None`: IS NULL
        earlier = _EARLIER_NO_BUYER.scalar(conn, {"list_id": row.id})
    else:
        earlier = _EARLIER.scalar(conn, {"buyer": row.buyer_id_number, "list_id": row.id})
    return not earlier
