"""What an agent does to a list — save, declare, delete, cancel, refund — as lifecycle moves."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Row, bindparam, select

from hub.clearance import guarantee
from hub.clearance.lifecycle import Desk, move, routing, send_copies, void_tax_bill
from hub.clearance.review import review
from hub.clearance.states import CANCELLABLE, EDITABLE, REFUNDABLE, ListState
from hub.clearance.tables import lists, tax_bills
from hub.clock import as_utc
from hub.codes import (
    CANCEL_STATE,
    LIST_DECLARED,
    REFUND_LIST_STATE,
    REFUND_NOT_IN_LIST,
    REFUND_QTY_OVER,
)
from hub.errors import RecordRejected
from hub.store.prepared import Prepared

_TAX_BILL = Prepared(select(tax_bills).where(tax_bills.c.list_id == bindparam("list_id")))


def save(desk: Desk, row: Row) -> Row:
    """Temporary save (receipt 1): shown in the list to be declared."""
    return move(desk, row, ListState.TEMPORARY, info="暂存")


def declare(desk: Desk, row: Row) -> Row:
    """Declare (2) and route to customs; without an endpoint to deliver to, 3 follows at once."""
    if row.state and ListState(row.state) not in EDITABLE | {ListState.DELETED}:
        raise RecordRejected(
            LIST_DECLARED,
            f"list {row.cop_no} is {row.state}; only temporary or returned lists can be declared",
        )
    # The routing columns go with the move: one update of the list, then the copies.
    row = move(
        desk,
        row,
        ListState.DECLARED,
        info=f"新增申报成功[{row.guid}]",
        values={"declared_at": desk.now, "risk_rule": None, **routing(desk, row)},
    )
    if send_copies(desk, row):
        return row  # 3 once the copy is delivered (sweep)
    sent = move(desk, row, ListState.SENT, info="发送海关成功", write=False)
    return review(desk, sent, stored=row)


def delete(desk: Desk, row: Row) -> Row:
    if ListState(row.state) not in EDITABLE:
        raise RecordRejected(
            LIST_DECLARED,
            f"list {row.cop_no} is {row.state}; only temporary or returned lists can be deleted",
        )
    return move(desk, row, ListState.DELETED, info="删除")


def cancel(desk: Desk, row: Row, reason: str) -> Row:
    """An approved CEB623: the list is withdrawn; tax and quota come back."""
    if ListState(row.state) not in CANCELLABLE:
        raise RecordRejected(
            CANCEL_STATE, f"list {row.invt_no} is {row.state}; it cannot be cancelled"
        )
    return move(desk, row, ListState.CANCELLED, info=f"撤销: {reason}", code=None)


def refund(desk: Desk, row: Row, returned: list[dict[str, str]], reason: str) -> Row:
    """An approved CEB625: returned quantities give back their share of tax and quota."""
    if ListState(row.state) not in REFUNDABLE:
        raise RecordRejected(
            REFUND_LIST_STATE,
            f"list {row.invt_no} is {row.state}; only released lists can be refunded",
        )
    released = as_utc(row.released_at) if row.released_at is not None else None
    days = desk.settings.clearance.refund_days
    if released is None or (desk.now - released).days >= days:
        raise RecordRejected(
            REFUND_LIST_STATE, f"list {row.invt_no} was released over {days} days ago"
        )
    lines = {x.get("gnum"): x for x in row.lines}
    done = {str(k): Decimal(v) for k, v in (row.refunded or {}).items()}
    bill = _TAX_BILL.first(desk.conn, {"list_id": row.id})
    line_tax = {
        x["gnum"]: Decimal(x["valueAddedTax"]) + Decimal(x["consumptionTax"])
        for x in (bill.lines if bill else [])
    }
    line_value = {x["gnum"]: Decimal(x["taxPrice"]) for x in (bill.lines if bill else [])}
    value_back = tax_back = Decimal(0)
    for item in returned:
        gnum = item.get("gnum", "")
        line = lines.get(gnum)
        if line is None or line.get("gcode") != item.get("gcode"):
            raise RecordRejected(
                REFUND_NOT_IN_LIST,
                f"line {gnum} gcode {item.get('gcode')} is not in list {row.invt_no}",
            )
        qty, declared = Decimal(item.get("qty") or "0"), Decimal(line.get("qty") or "0")
        if qty <= 0 or done.get(gnum, Decimal(0)) + qty > declared:
            raise RecordRejected(
                REFUND_QTY_OVER,
                f"line {gnum}: returning {qty} with {done.get(gnum, 0)} returned before exceeds "
                f"the {declared} declared",
            )
        done[gnum] = done.get(gnum, Decimal(0)) + qty
        share = qty / declared
        value_back += line_value.get(gnum, Decimal(0)) * share
        tax_back += line_tax.get(gnum, Decimal(0)) * share
    tax_back = min(tax_back.quantize(Decimal("0.01")), (row.tax or 0) - (row.refunded_tax or 0))
    value_back = value_back.quantize(Decimal("0.01"))
    if row.assure_code and tax_back > 0:
        guarantee.restore(
            desk.conn, row.assure_code, tax_back, row.id, desk.now, f"refund of list {row.invt_no}"
        )
    full = all(done.get(g, 0) >= Decimal(x.get("qty") or "0") for g, x in lines.items())
    if full:
        void_tax_bill(desk.conn, row.id, desk.now)
    return move(
        desk,
        row,
        ListState.REFUNDED,
        info=f"退货: {reason}",
        values={
            "refunded": {k: str(v) for k, v in done.items()},
            "refunded_value": (row.refunded_value or 0) + value_back,
            "refunded_tax": (row.refunded_tax or 0) + tax_back,
        },
    )


__all__ = ["cancel", "declare", "delete", "lists", "refund", "save"]
