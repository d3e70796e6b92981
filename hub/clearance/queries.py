"""The queries behind the screens (design §6), shared by the console and the command line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, func, or_, select

from hub.clearance.states import EDITABLE, ListState
from hub.clearance.tables import list_log, lists, tax_bills
from hub.store.states import RecordState
from hub.store.tables import orders, payments, waybills

MAX_PAGE = 500
TO_DECLARE = "to-declare"  # the "list to be declared" screen: temporary and returned


@dataclass
class OrderFilter:
    order_no: str | None = None
    ebp_code: str | None = None
    ebc_code: str | None = None
    buyer: str | None = None  # name or ID number
    since: str | None = None  # YYYYMMDD[hhmmss], compared with appTime
    until: str | None = None
    status: str | None = None  # last receipt status


@dataclass
class ListFilter:
    status: str | None = None  # a ListState value, "to-declare", or "declared-any"
    pre_no: str | None = None
    cop_no: str | None = None
    order_no: str | None = None
    logistics_no: str | None = None
    invt_no: str | None = None
    buyer: str | None = None
    since: str | None = None
    until: str | None = None
    agent_codes: list[str] | None = None  # an operator sees only its own codes


def _page(conn: Connection, q: Select, page: int, size: int, order, shape) -> dict[str, Any]:
    size = max(1, min(size, MAX_PAGE))
    page = max(1, page)
    total = conn.execute(select(func.count()).select_from(q.subquery())).scalar()
    rows = conn.execute(q.order_by(*order).limit(size).offset((page - 1) * size)).all()
    return {"total": total, "page": page, "size": size, "rows": [shape(r) for r in rows]}


def _dates(q: Select, column, since: str | None, until: str | None) -> Select:
    if since:
        q = q.where(column >= since)
    if until:
        q = q.where(column <= until.ljust(14, "9"))
    return q


# ---------------------------------------------------------------- electronic orders


def order_query(conn: Connection, f: OrderFilter, *, page: int = 1, size: int = 50) -> dict:
    q = select(orders).where(orders.c.state == RecordState.ACTIVE)
    if f.order_no:
        q = q.where(orders.c.order_no == f.order_no)
    if f.ebp_code:
        q = q.where(orders.c.ebp_code == f.ebp_code)
    if f.ebc_code:
        q = q.where(orders.c.ebc_code == f.ebc_code)
    if f.buyer:
        q = q.where(or_(orders.c.buyer_name == f.buyer, orders.c.buyer_id_number == f.buyer))
    if f.status:
        q = q.where(orders.c.return_status == f.status)
    q = _dates(q, orders.c.app_time, f.since, f.until)
    return _page(conn, q, page, size, (orders.c.app_time.desc(), orders.c.id.desc()), _order_row)


def _order_row(r) -> dict[str, Any]:
    return {
        "orderNo": r.order_no,
        "ebpCode": r.ebp_code,
        "ebpName": r.head.get("ebpName"),
        "ebcCode": r.ebc_code,
        "ebcName": r.head.get("ebcName"),
        "buyerName": r.buyer_name,
        "buyerIdNumber": r.buyer_id_number,
        "goodsValue": str(r.goods_value),
        "acturalPaid": str(r.actural_paid),
        "status": r.return_status,
        "appTime": r.app_time,
    }


GOODS_FIELDS = (
    "gnum",
    "itemNo",
    "itemName",
    "gmodel",
    "qty",
    "unit",
    "price",
    "totalPrice",
    "country",
)


def order_details(conn: Connection, ebp_code: str | None, order_no: str) -> dict | None:
    """Order details (head) and its goods (lines)."""
    q = select(orders).where(orders.c.order_no == order_no, orders.c.state == RecordState.ACTIVE)
    if ebp_code:
        q = q.where(orders.c.ebp_code == ebp_code)
    r = conn.execute(q.limit(1)).first()
    if r is None:
        return None
    return {
        "head": dict(r.head),
        "status": r.return_status,
        "goods": [{k: line.get(k) for k in GOODS_FIELDS} for line in r.lines],
    }


# ---------------------------------------------------------------- lists


def list_query(conn: Connection, f: ListFilter, *, page: int = 1, size: int = 50) -> dict:
    """The list-to-be-declared query (status "to-declare") and the declared-list query."""
    q = select(lists).where(lists.c.state != ListState.DELETED)
    if f.status == TO_DECLARE:
        q = q.where(lists.c.state.in_([s.value for s in EDITABLE]))
    elif f.status == "declared-any":
        q = q.where(lists.c.state.not_in([s.value for s in EDITABLE]))
    elif f.status:
        q = q.where(lists.c.state == f.status)
    for column, value in (
        (lists.c.pre_no, f.pre_no),
        (lists.c.cop_no, f.cop_no),
        (lists.c.order_no, f.order_no),
        (lists.c.logistics_no, f.logistics_no),
        (lists.c.invt_no, f.invt_no),
    ):
        if value:
            q = q.where(column == value)
    if f.buyer:
        q = q.where(or_(lists.c.buyer_name == f.buyer, lists.c.buyer_id_number == f.buyer))
    if f.agent_codes is not None:
        q = q.where(lists.c.agent_code.in_(f.agent_codes))
    q = _dates(q, lists.c.app_time, f.since, f.until)
    return _page(conn, q, page, size, (lists.c.updated_at.desc(), lists.c.id.desc()), list_row)


def list_row(r) -> dict[str, Any]:
    """A list as the list screens show it (the API adds its id and leaves out the ID number)."""
    return {
        "preNo": r.pre_no,
        "copNo": r.cop_no,
        "orderNo": r.order_no,
        "logisticsNo": r.logistics_no,
        "invtNo": r.invt_no,
        "agentCode": r.agent_code,
        "buyerName": r.buyer_name,
        "buyerIdNumber": r.buyer_id_number,
        "total": None if r.dutiable_value is None else str(r.dutiable_value),
        "status": r.state,
        "returnStatus": r.return_status,
        "returnInfo": r.return_info,
        "riskRule": r.risk_rule,
        "savedAt": r.created_at,
        "updatedAt": r.updated_at,
    }


def list_details(
    conn: Connection, *, pre_no: str | None = None, list_id: int | None = None
) -> dict | None:
    """A list with its linked order / payment / waybill, its tax bill and operation log."""
    q = select(lists)
    q = q.where(lists.c.id == list_id) if list_id is not None else q.where(lists.c.pre_no == pre_no)
    r = conn.execute(q).first()
    if r is None:
        return None

    def live(table, *conds):
        doc = conn.execute(
            select(table).where(*conds, table.c.state == RecordState.ACTIVE).limit(1)
        ).first()
        return (
            None
            if doc is None
            else {"head": dict(doc.head), "lines": doc.lines, "status": doc.return_status}
        )

    bill = conn.execute(select(tax_bills).where(tax_bills.c.list_id == r.id)).first()
    log_rows = conn.execute(
        select(list_log).where(list_log.c.list_id == r.id).order_by(list_log.c.id)
    ).all()
    return {
        **list_row(r),
        "head": dict(r.head),
        "lines": r.lines,
        "tax": str(r.tax) if r.tax is not None else None,
        "routedTo": r.routed_to,
        "decisions": r.decisions,
        "waitingFor": r.waiting_for,
        "order": live(orders, orders.c.ebp_code == r.ebp_code, orders.c.order_no == r.order_no),
        "payment": live(
            payments, payments.c.ebp_code == r.ebp_code, payments.c.order_no == r.order_no
        ),
        "waybill": live(
            waybills,
            waybills.c.logistics_code == r.logistics_code,
            waybills.c.logistics_no == r.logistics_no,
        ),
        "taxBill": None
        if bill is None
        else {
            "taxNo": bill.tax_no,
            "status": bill.status,
            "customsTax": str(bill.customs_tax),
            "valueAddedTax": str(bill.value_added_tax),
            "consumptionTax": str(bill.consumption_tax),
            "lines": bill.lines,
        },
        "log": [
            {
                "at": x.at,
                "actor": x.actor,
                "from": x.from_state,
                "to": x.to_state,
                "code": x.code,
                "reasonCode": x.reason_code,
                "reason": x.reason,
            }
            for x in log_rows
        ],
    }
