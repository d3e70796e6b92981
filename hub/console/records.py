"""Queries behind the transaction-data screens and API: orders, payments, waybills."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, Table, and_, func, or_, select

from hub.console.auth import Principal
from hub.console.scope import limit
from hub.store.states import RecordState
from hub.store.tables import messages, orders, payments, receipts, waybills

PAGE_SIZE = 20


@dataclass(frozen=True)
class Filter:
    """One query condition of a screen: a form field and how it narrows the rows."""

    param: str  # form/query parameter, a spec field name where there is one
    how: str  # "eq", "like", "person" (name like or ID number equal), "from", "to", "status"
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Kind:
    """A record screen: its table, title, conditions and list columns (design §6)."""

    name: str  # URL segment: orders, payments, waybills
    table: Table
    title: tuple[str, str]
    key: str  # the spec field that names a record on screen
    filters: tuple[Filter, ...]
    columns: tuple[str, ...]  # head fields shown in the paged list
    lines_title: tuple[str, str] | None = None
    line_columns: tuple[str, ...] = ()


_DATES = (Filter("dateFrom", "from"), Filter("dateTo", "to"), Filter("returnStatus", "status"))

KINDS: dict[str, Kind] = {
    "orders": Kind(
        "orders",
        orders,
        ("电子订单查询", "Electronic order query"),
        "orderNo",
        (
            Filter("orderNo", "like", ("order_no",)),
            Filter("ebpCode", "eq", ("ebp_code",)),
            Filter("ebcCode", "eq", ("ebc_code",)),
            Filter("buyer", "person", ("buyer_name", "buyer_id_number")),
            *_DATES,
        ),
        ("orderNo", "ebpName", "ebcName", "buyerName", "goodsValue", "acturalPaid"),
        ("订单商品", "Order goods"),
        ("gnum", "itemNo", "itemName", "gmodel", "qty", "unit", "price", "totalPrice", "country"),
    ),
    "payments": Kind(
        "payments",
        payments,
        ("支付单查询", "Payment query"),
        "payTransactionId",
        (
            Filter("payTransactionId", "like", ("pay_transaction_id",)),
            Filter("orderNo", "like", ("order_no",)),
            Filter("payCode", "eq", ("pay_code",)),
            Filter("ebpCode", "eq", ("ebp_code",)),
            Filter("payer", "person", ("payer_name", "payer_id_number")),
            *_DATES,
        ),
        ("payTransactionId", "orderNo", "payName", "ebpName", "payerName", "amountPaid"),
    ),
    "waybills": Kind(
        "waybills",
        waybills,
        ("运单查询", "Waybill query"),
        "logisticsNo",
        (
            Filter("logisticsNo", "like", ("logistics_no",)),
            Filter("orderNo", "like", ("order_no",)),
            Filter("logisticsCode", "eq", ("logistics_code",)),
            Filter("consignee", "like", ("consignee",)),
            *_DATES,
        ),
        ("logisticsNo", "orderNo", "logisticsName", "consignee", "weight", "freight"),
    ),
}


def day_bound(value: str, end: bool) -> str | None:
    """A date from the form (YYYY-MM-DD or YYYYMMDD) as an appTime bound."""
    digits = value.replace("-", "").strip()
    if len(digits) != 8 or not digits.isdigit():
        return None
    return digits + ("235959" if end else "000000")


def conditions(table: Table, filters: tuple[Filter, ...], given: dict[str, str]) -> list[Any]:
    out = []
    for f in filters:
        value = (given.get(f.param) or "").strip()
        if not value:
            continue
        cols = [table.c[c] for c in f.columns]
        if f.how == "eq":
            out.append(cols[0] == value)
        elif f.how == "like":
            out.append(cols[0].contains(value, autoescape=True))
        elif f.how == "person":
            out.append(or_(cols[0].contains(value, autoescape=True), cols[1] == value))
        elif f.how in ("from", "to") and (bound := day_bound(value, f.how == "to")):
            col = table.c.app_time
            out.append(col >= bound if f.how == "from" else col <= bound)
        elif f.how == "status":
            out.append(table.c.return_status == value)
    return out


def query(
    conn: Connection, kind: Kind, who: Principal, given: dict[str, str], page: int = 1
) -> tuple[list[Row], int]:
    """One page of the kind's active records matching the conditions, newest first."""
    t = kind.table
    where = and_(t.c.state == RecordState.ACTIVE, *conditions(t, kind.filters, given))
    base = limit(select(t).where(where), t, who)
    total = conn.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    page = max(1, page)
    rows = conn.execute(
        base.order_by(t.c.app_time.desc(), t.c.id.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    return rows, total


def get(conn: Connection, table: Table, who: Principal, record_id: int) -> Row | None:
    """One record by id, or None when it does not exist or is not the principal's."""
    q = limit(select(table).where(table.c.id == record_id), table, who)
    return conn.execute(q).first()


def receipts_of(conn: Connection, table: Table, record_id: int) -> list[Row]:
    return conn.execute(
        select(receipts)
        .where(receipts.c.record_table == table.name, receipts.c.record_id == record_id)
        .order_by(receipts.c.id)
    ).all()


def message_body(conn: Connection, message_id: int) -> bytes | None:
    return conn.execute(select(messages.c.body).where(messages.c.id == message_id)).scalar()


def as_dict(row: Row) -> dict[str, Any]:
    """A record for the API: id, state, status, head and lines with spec names."""
    return {
        "id": row.id,
        "state": row.state,
        "appStatus": row.app_status,
        "appTime": row.app_time,
        "returnStatus": row.return_status,
        "updatedAt": row.updated_at.isoformat() if row.updated_at else None,
        "head": row.head,
        "lines": row.lines,
    }
