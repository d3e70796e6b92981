"""Lists waiting for their order, payment or waybill are reviewed the moment it is accepted."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, or_, select

from hub.clearance.lifecycle import Desk, get
from hub.clearance.review import review
from hub.clearance.states import ListState
from hub.clearance.tables import lists
from hub.messages.records import Record

# Which list columns a newly accepted record of each type can unblock, and from which fields.
LINKS: dict[str, tuple[tuple[str, str], ...]] = {
    "CEB311Message": (("ebp_code", "ebpCode"), ("order_no", "orderNo")),
    "CEB411Message": (("ebp_code", "ebpCode"), ("order_no", "orderNo")),
    "CEB511Message": (("logistics_code", "logisticsCode"), ("logistics_no", "logisticsNo")),
}


def on_documents(ctx, msg_root: str, accepted: Sequence[Record]) -> int:
    """Called by the pipeline after a message's records are applied, in the same transaction.

    Reviews every list that sits at 3 waiting for one of the accepted records; returns how many.
    """
    link = LINKS.get(msg_root)
    if not link or not accepted or ctx.router is None:
        return 0
    keys = {tuple(r.get(field) for _, field in link) for r in accepted}
    match = or_(
        *(and_(*(lists.c[col] == v for (col, _), v in zip(link, key, strict=True))) for key in keys)
    )
    ids = (
        ctx.conn.execute(
            select(lists.c.id).where(
                lists.c.state == ListState.SENT, lists.c.waiting_since.is_not(None), match
            )
        )
        .scalars()
        .all()
    )
    desk = Desk(ctx.conn, ctx.router, ctx.now, actor="hub")
    for list_id in ids:
        review(desk, get(ctx.conn, list_id))
    return len(ids)
