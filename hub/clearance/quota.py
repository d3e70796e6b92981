"""Personal quota: a buyer's year total over released and pending lists, less refunds."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, func, select

from hub.clearance.states import COUNTED
from hub.clearance.tables import lists


def year_total(
    conn: Connection, buyer_id_number: str, year: str, *, exclude: int | None = None
) -> Decimal:
    """What the buyer has used of the year's quota: every counted list's value less refunds.

    Derived from the lists rather than kept as a running counter, so returns, cancellations
    and refunds restore it exactly by changing the list they concern.
    """
    q = select(func.coalesce(func.sum(lists.c.dutiable_value - lists.c.refunded_value), 0)).where(
        lists.c.buyer_id_number == buyer_id_number,
        lists.c.year == year,
        lists.c.state.in_([s.value for s in COUNTED]),
    )
    if exclude is not None:
        q = q.where(lists.c.id != exclude)
    return Decimal(str(conn.execute(q).scalar() or 0))
