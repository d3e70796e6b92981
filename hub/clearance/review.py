"""Electronic review (design §6 order) and the automatic steps after it: 120 → 300 or 399 → 800 → 899."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import Connection, Row, bindparam, delete, insert, select

from hub.clearance import guarantee, quota, risk
from hub.clearance import tax as taxes
from hub.clearance.identity import REGISTRY, id_number_problem
from hub.clearance.lifecycle import Desk, debit, invt_no_for, move, store, update_list
from hub.clearance.states import Decision, ListState
from hub.clearance.tables import tax_bills
from hub.clock import as_utc, stamp8
from hub.codes import LIST_ANNUAL_LIMIT, LIST_SINGLE_LIMIT, Status
from hub.messages.receipts import new_guid
from hub.store.prepared import Prepared
from hub.store.states import RecordState
from hub.store.tables import orders, payments, waybills

COUNTRY_CHINA = "142"
TRADE_BONDED = "1210"
ACCEPTED_STATUSES = (Status.DECLARING, Status.ACCEPTED, Status.CONCLUDED)  # order/payment/waybill


class Reason(StrEnum):
    """Stable codes of the review's return reasons; they lead returnInfo and the log's reason."""

    CONSIGNEE = "R1"  # consignee filing abnormal
    THREE_ORDERS = "R2"  # three orders do not match
    PERSONAL = "R3"  # personal information verification failed
    COUNTRY = "R4"  # country inconsistent
    GUARANTEE = "R5"  # guarantee cannot cover the tax
    SINGLE_LIMIT = "L1"  # over the single-transaction limit
    ANNUAL_LIMIT = "L2"  # over the buyer's annual limit
    OFFICER = "M1"  # returned in manual review


TITLES = {
    Reason.CONSIGNEE: "consignee filing abnormal",
    Reason.THREE_ORDERS: "three orders do not match",
    Reason.PERSONAL: "personal information verification failed",
    Reason.COUNTRY: "country inconsistent",
    Reason.GUARANTEE: "guarantee balance insufficient",
    Reason.SINGLE_LIMIT: "over the single-transaction limit",
    Reason.ANNUAL_LIMIT: "over the buyer's annual limit",
    Reason.OFFICER: "returned in manual review",
}


def reason_text(reason: Reason, detail: str) -> str:
    return f"[{reason}] {TITLES[reason]}: {detail}"


@dataclass
class Failure:
    reason: Reason
    detail: str
    code: str = Status.RETURNED

    @property
    def text(self) -> str:
        return reason_text(self.reason, self.detail)


@dataclass
class Documents:
    order: Row | None
    payment: Row | None
    waybill: Row | None
    missing: list[str]


def _live(table, *columns: str) -> Prepared:
    """The active record of `table` whose `columns` equal the parameters of the same names."""
    conds = [table.c[c] == bindparam(c) for c in columns]
    return Prepared(select(table).where(*conds, table.c.state == RecordState.ACTIVE).limit(1))


_ORDER = _live(orders, "ebp_code", "order_no")
_PAYMENT_OF_ORDER = _live(payments, "ebp_code", "order_no")
_PAYMENT_OF_TRANSACTION = _live(payments, "pay_code", "pay_transaction_id")
_WAYBILL = _live(waybills, "logistics_code", "logistics_no")
_DELETE_TAX_BILL = Prepared(delete(tax_bills).where(tax_bills.c.list_id == bindparam("list_id")))
_INSERT_TAX_BILL = Prepared(insert(tax_bills))


def documents(conn: Connection, row: Row) -> Documents:
    """The order, payment and waybill the list names; `missing` says what is not there yet."""
    h = row.head
    by_order = {"ebp_code": row.ebp_code, "order_no": row.order_no}
    order = _ORDER.first(conn, by_order)
    if order is not None and order.head.get("payCode") and order.head.get("payTransactionId"):
        payment = _PAYMENT_OF_TRANSACTION.first(
            conn,
            {
                "pay_code": order.head["payCode"],
                "pay_transaction_id": order.head["payTransactionId"],
            },
        )
    else:
        payment = _PAYMENT_OF_ORDER.first(conn, by_order)
    waybill = _WAYBILL.first(
        conn, {"logistics_code": row.logistics_code, "logistics_no": row.logistics_no}
    )
    missing = []
    for name, doc, key in (
        ("order", order, f"ebpCode {row.ebp_code} orderNo {row.order_no}"),
        ("payment", payment, f"for orderNo {h.get('orderNo')}"),
        ("waybill", waybill, f"logisticsCode {row.logistics_code} logisticsNo {row.logistics_no}"),
    ):
        if doc is None:
            missing.append(f"{name} {key} not received")
        elif doc.return_status not in ACCEPTED_STATUSES:
            missing.append(f"{name} {key} not accepted (status {doc.return_status})")
    return Documents(order, payment, waybill, missing)


def _dec(text: str | None) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except ArithmeticError:
        return None


def check_consignee(row: Row, docs: Documents) -> Failure | None:
    o, w = docs.order.head, docs.waybill.head
    for field in ("consignee", "consigneeTelephone", "consigneeAddress"):
        if o.get(field, "") != w.get(field, ""):
            return Failure(
                Reason.CONSIGNEE,
                f"order {field} {o.get(field)!r} differs from the waybill's {w.get(field)!r}",
            )
    if row.head.get("consigneeAddress", "") != o.get("consigneeAddress", ""):
        return Failure(
            Reason.CONSIGNEE,
            f"list consigneeAddress {row.head.get('consigneeAddress')!r} differs from the "
            f"order's {o.get('consigneeAddress')!r}",
        )
    return None


def check_three_orders(row: Row, docs: Documents) -> Failure | None:
    h, o, p, w = row.head, docs.order.head, docs.payment.head, docs.waybill.head

    def fail(detail: str) -> Failure:
        return Failure(Reason.THREE_ORDERS, detail)

    if o.get("ebcCode") != h.get("ebcCode"):
        return fail(f"list ebcCode {h.get('ebcCode')} differs from the order's {o.get('ebcCode')}")
    if w.get("orderNo") != h.get("orderNo"):
        return fail(
            f"waybill orderNo {w.get('orderNo')} differs from the list's {h.get('orderNo')}"
        )
    if _dec(p.get("amountPaid")) != _dec(o.get("acturalPaid")):
        return fail(
            f"payment amountPaid {p.get('amountPaid')} differs from the order's acturalPaid "
            f"{o.get('acturalPaid')}"
        )
    for field in ("buyerIdNumber", "buyerName", "buyerTelephone"):
        if h.get(field) != o.get(field):
            return fail(f"list {field} {h.get(field)!r} differs from the order's {o.get(field)!r}")
    mine = {x.get("gnum"): x for x in row.lines}
    theirs = {x.get("gnum"): x for x in docs.order.lines}
    if set(mine) != set(theirs):
        return fail(
            f"list lines gnum {sorted(mine)} do not correspond 1:1 to the order's {sorted(theirs)}"
        )
    for gnum, line in mine.items():
        ol = theirs[gnum]
        if line.get("gname") != ol.get("itemName"):
            return fail(
                f"line {gnum}: gname {line.get('gname')!r} differs from the order's itemName "
                f"{ol.get('itemName')!r}"
            )
        for field in ("qty", "price"):
            if _dec(line.get(field)) != _dec(ol.get(field)):
                return fail(
                    f"line {gnum}: {field} {line.get(field)} differs from the order's {ol.get(field)}"
                )
    return None


def check_personal(conn: Connection, row: Row, docs: Documents) -> Failure | None:
    h, p = row.head, docs.payment.head
    number, name = h.get("buyerIdNumber", ""), h.get("buyerName", "")
    problem = id_number_problem(number)
    if problem:
        return Failure(Reason.PERSONAL, problem)
    registered = REGISTRY.name_of(conn, number)
    if registered is not None and registered != name:
        return Failure(
            Reason.PERSONAL,
            f"buyerName {name!r} does not match the real-name registry for ID {number}",
        )
    if registered is None and (
        p.get("payerIdNumber") != number or p.get("payerName") != name
    ):  # unverified buyers must pay themselves (GACC 2018 No.194 art. 9)
        return Failure(
            Reason.PERSONAL,
            f"buyer {name} ({number}) is not the payer {p.get('payerName')} "
            f"({p.get('payerIdNumber')}) and the buyer's identity is not verified",
        )
    return None


def check_country(row: Row, docs: Documents) -> Failure | None:
    theirs = {x.get("gnum"): x for x in docs.order.lines}
    for line in row.lines:
        ol = theirs.get(line.get("gnum"), {})
        if line.get("country") != ol.get("country"):
            return Failure(
                Reason.COUNTRY,
                f"line {line.get('gnum')}: country {line.get('country')} differs from the "
                f"order's {ol.get('country')}",
            )
    if row.head.get("tradeMode") == TRADE_BONDED and row.head.get("country") != COUNTRY_CHINA:
        return Failure(
            Reason.COUNTRY,
            f"a 1210 list's country must be {COUNTRY_CHINA}, not {row.head.get('country')}",
        )
    return None


def check_limits(desk: Desk, row: Row, value: Decimal, year: str) -> Failure | None:
    s = desk.settings.clearance
    if value > s.single_limit:
        return Failure(
            Reason.SINGLE_LIMIT,
            f"dutiable value {value} CNY is above the {s.single_limit} CNY single-transaction limit",
            LIST_SINGLE_LIMIT,
        )
    used = quota.year_total(desk.conn, row.buyer_id_number or "", year, exclude=row.id)
    if used + value > s.annual_limit:
        return Failure(
            Reason.ANNUAL_LIMIT,
            f"buyer {row.buyer_id_number} has used {used} CNY of {year}; with this {value} CNY "
            f"the year total would exceed {s.annual_limit} CNY",
            LIST_ANNUAL_LIMIT,
        )
    return None


# ---------------------------------------------------------------- the review


def review(desk: Desk, row: Row, *, stored: Row | None = None) -> Row:
    """Review a list that reached customs (3); returns it accepted and beyond, returned, or waiting.

    `stored`: the list as its row is written, when `row` carries moves made with
    `write=False` (the sweep's move to 3): the review writes them with its own, in one UPDATE.
    """
    assert row.state == ListState.SENT, row.state
    stored = row if stored is None else stored
    docs = documents(desk.conn, row)
    if docs.missing:
        return _wait(desk, store(desk, stored, row), "; ".join(docs.missing))
    for failure in (
        check_consignee(row, docs),
        check_three_orders(row, docs),
        check_personal(desk.conn, row, docs),
        check_country(row, docs),
    ):
        if failure:
            return _return(desk, row, failure, stored)
    value = taxes.dutiable_value(row.head, row.lines)
    year = stamp8(desk.now)[:4]
    failure = check_limits(desk, row, value, year)
    if failure:
        return _return(desk, row, failure, stored)
    table = taxes.load_table(desk.path(desk.settings.clearance.tax_file))
    bill = taxes.compute(row.head, row.lines, table)
    code = row.assure_code or ""
    if not debit(desk, code, bill.total, row.id):
        have = guarantee.balance(desk.conn, code)
        detail = (
            f"no guarantee is lodged for assureCode {code}"
            if have is None
            else f"assureCode {code} balance {have} cannot cover the tax {bill.total}"
        )
        return _return(desk, row, Failure(Reason.GUARANTEE, detail), stored)
    invt_no = invt_no_for(row, desk.now)
    _record_tax_bill(desk, row, invt_no, bill)
    # From here on nothing reads the list's own row back: its moves are written once, at the end.
    row = move(
        desk,
        row,
        ListState.ACCEPTED,
        info=f"海关入库: electronic review passed; invtNo {invt_no}; tax {bill.total} debited "
        f"from guarantee {code}",
        values=dict(
            invt_no=invt_no,
            tax=bill.total,
            dutiable_value=value,
            year=year,
            refunded_value=0,
            refunded_tax=0,
            refunded={},
            waiting_since=None,
            waiting_for=None,
        ),
        write=False,
    )
    rule = risk.fired_rule(desk.conn, row, value, desk.settings.clearance.risk)
    if rule:
        row = move(
            desk,
            row,
            ListState.MANUAL_REVIEW,
            info=f"人工审核: risk rule {rule} fired",
            values={"risk_rule": rule},
            write=False,
        )
    else:
        row = _release_without_review(desk, row)
    return store(desk, stored, row)


def _release_without_review(desk: Desk, row: Row) -> Row:
    """A list no risk rule picked: concluded, released by every authority, closed (the caller
    writes the row: `store`)."""
    row = move(desk, row, ListState.CONCLUDED, info="海关审结: no risk; tax assessed", write=False)
    row = move(
        desk,
        row,
        ListState.RELEASED,
        info="放行",
        values={"decisions": {a: Decision.RELEASE.value for a in row.routed_to or []}},
        write=False,
    )
    return move(desk, row, ListState.CLOSED, info="结关", write=False)


def _return(desk: Desk, row: Row, failure: Failure, stored: Row) -> Row:
    returned = move(
        desk,
        row,
        ListState.RETURNED,
        info=failure.text,
        code=failure.code,
        reason_code=failure.reason,
        values={"waiting_since": None, "waiting_for": None},
        write=False,
    )
    return store(desk, stored, returned)


def _wait(desk: Desk, row: Row, missing: str) -> Row:
    """Keep the list at 3 until the missing document arrives; after the wait, reason 2."""
    since = as_utc(row.waiting_since) if row.waiting_since is not None else None
    wait = timedelta(seconds=desk.settings.clearance.wait_seconds)
    after = None
    if since is None:
        since = desk.now
        after = update_list(desk.conn, row.id, {"waiting_since": since, "waiting_for": missing})
    if desk.now - since >= wait:
        detail = f"{missing} within {desk.settings.clearance.wait_seconds:g} s of the declaration"
        written = after if after is not None else row
        return _return(desk, written, Failure(Reason.THREE_ORDERS, detail), written)
    if after is None and row.waiting_for != missing:
        after = update_list(desk.conn, row.id, {"waiting_for": missing})
    return after if after is not None else row  # as written: nothing to read back


def _record_tax_bill(desk: Desk, row: Row, invt_no: str, bill: taxes.ListTax) -> None:
    """The CEB816 tax bill (status 1, generated) the acceptance produces."""
    _DELETE_TAX_BILL.execute(desk.conn, {"list_id": row.id})
    _INSERT_TAX_BILL.execute(
        desk.conn,
        dict(
            list_id=row.id,
            guid=new_guid(),
            invt_no=invt_no,
            tax_no=f"T{invt_no}",
            customs_tax=bill.customs_tax,
            value_added_tax=bill.value_added_tax,
            consumption_tax=bill.consumption_tax,
            status="1",
            assure_code=row.assure_code,
            ebc_code=row.ebc_code,
            logistics_code=row.logistics_code,
            agent_code=row.agent_code,
            customs_code=row.customs_code,
            lines=[
                {
                    "gnum": x.gnum,
                    "gcode": x.gcode,
                    "taxPrice": str(x.tax_price),
                    "customsTax": str(x.customs_tax),
                    "valueAddedTax": str(x.value_added_tax),
                    "consumptionTax": str(x.consumption_tax),
                }
                for x in bill.lines
            ],
            created_at=desk.now,
            updated_at=desk.now,
        ),
    )
