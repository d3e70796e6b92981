"""Personal quota: a buyer's year total over released and pending lists, less refunds."""

from __future__ import annotations

import itertools
from decimal import Decimal

from sqlalchemy import Connection, bindparam, func, literal, select

from hub.clearance.states import COUNTED
from hub.clearance.tables import lists
from hub.store.prepared import Prepared

# The counted states are fixed values bound once (an expanding IN cannot be prepared).
_TOTAL = select(func.coalesce(func.sum(lists.c.dutiable_value - lists.c.refunded_value), 0)).where(
    lists.c.state.in_([literal(s.value) for s in sorted(COUNTED)])
)


def _statement(buyer: bool, year: bool, exclude: bool) -> Prepared:
    """The year total with the given parameters; a missing one is IS NULL (as Core's `== None`)."""
    q = _TOTAL.where(
        lists.c.buyer_id_number == bindparam("buyer")
        if buyer
        else lists.c.buyer_id_number.is_(None),
        lists.c.year == bindparam("year") if year else lists.c.year.is_(None),
    )
    return Prepared(q.where(lists.c.id != bindparam("exclude")) if exclude else q)


_STATEMENTS = {k: _statement(*k) for k in itertools.product((True, False), repeat=3)}


def year_total(
    conn: Connection, buyer_id_number: str, year: str, *, exclude: int | None = None
) -> Decimal:
    """What the buyer has used of the year's quota: every counted list's value less refunds.

    Derived from the lists rather than kept as a running counter, so returns, cancellations
    and refunds restore it exactly by changing the list they concern.
    """
    given = {"buyer": buyer_id_number, "year": year, "exclude": exclude}
    params = {k: v for k, v in given.items() if v is not None}
    key = tuple(v is not None for v in given.values())
    total = _STATEMENTS[key].scalar(conn, params)
    return Decimal(str(total or 0))
