"""Lists waiting for their order, payment or waybill are reviewed the moment it is accepted."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, bindparam, or_, select

from hub.clearance.lifecycle import Desk, Pending, get
from hub.clearance.review import review
from hub.clearance.states import ListState
from hub.clearance.tables import lists
from hub.messages.records import Record
from hub.store.prepared import Prepared

# Which list columns a newly accepted record of each type can unblock, and from which fields.
LINKS: dict[str, tuple[tuple[str, str], ...]] = {
    "CEB311Message": (("ebp_code", "ebpCode"), ("order_no", "orderNo")),
    "CEB411Message": (("ebp_code", "ebpCode"), ("order_no", "orderNo")),
    "CEB511Message": (("logistics_code", "logisticsCode"), ("logistics_no", "logisticsNo")),
}
# The lists' query per link and number of keys (one per record of a message, up to its
# record limit): compiled once, run on the DBAPI cursor.
_WITH_KEYS: dict[tuple[tuple[tuple[str, str], ...], int], Prepared] = {}


def on_documents(ctx, msg_root: str, accepted: Sequence[Record]) -> int:
    """Called by the pipeline after a message's records are applied, in the same transaction.

    Reviews every list that sits at 3 waiting for one of the accepted records; returns how many.
    """
    link = LINKS.get(msg_root)
    if not link or not accepted or ctx.router is None:
        return 0
    keys = {tuple(r.get(field) for _, field in link) for r in accepted}
    params = {
        f"{col}_{i}": v for i, key in enumerate(keys) for (col, _), v in zip(link, key, strict=True)
    }
    ids = [
        row.id
        for row in _with_keys(link, len(keys)).all(ctx.conn, params)
        if row.state == ListState.SENT and row.waiting_since is not None
    ]
    # A list's receipts of its review go in one CEB622 (`Desk.flush`), written before the next.
    desk = Desk(ctx.conn, ctx.router, ctx.now, actor="hub", pending=Pending())
    for list_id in ids:
        review(desk, get(ctx.conn, list_id))
        desk.flush()
    return len(ids)


def _with_keys(link: tuple[tuple[str, str], ...], count: int) -> Prepared:
    """Lists with any of `count` keys of `link`, and whether they wait.

    Only the keys are in the query, so that it is answered from the key's index. With the
    state in it too, SQLite chose the state's index instead and read every list at 3 for
    each accepted order, payment and waybill: with a few hundred lists waiting, that one
    look-up was a tenth of the hub's time.
    """
    stmt = _WITH_KEYS.get((link, count))
    if stmt is None:
        match = or_(
            *(
                and_(*(lists.c[col] == bindparam(f"{col}_{i}") for col, _ in link))
                for i in range(count)
            )
        )
        stmt = _WITH_KEYS[(link, count)] = Prepared(
            select(lists.c.id, lists.c.state, lists.c.waiting_since).where(match)
        )
    return stmt
