"""Declaration lists for the console: scoped queries, the three-order match, and actions."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, Engine, Row, and_, func, or_, select, update

from hub.clearance import actions, queries
from hub.clearance.lifecycle import Desk, get, log
from hub.clearance.manual import decide
from hub.clearance.review import TITLES, Reason
from hub.clearance.states import EDITABLE, UNDER_REVIEW, Authority, Decision, ListState
from hub.clearance.tables import list_log, lists
from hub.clock import utcnow
from hub.console.auth import Principal, UserRole
from hub.console.records import PAGE_SIZE, day_bound
from hub.console.scope import limit
from hub.errors import RecordRejected

# States the declared-list query offers (design §6), in lifecycle order.
DECLARED_STATES = (
    ListState.DECLARED,
    ListState.SENT,
    ListState.ACCEPTED,
    ListState.MANUAL_REVIEW,
    ListState.CONCLUDED,
    ListState.INSPECTION,
    ListState.RELEASED,
    ListState.CLOSED,
    ListState.RETURNED,
)
STATE_LABELS = {
    "temporary": "暂存 temporary",
    "declared": "申报中 declared",
    "sent": "发送海关成功 sent",
    "returned": "退单 returned",
    "accepted": "入库 accepted",
    "manual_review": "人工审核 manual review",
    "concluded": "审结 concluded",
    "inspection": "查验 inspection",
    "released": "放行 released",
    "closed": "结关 closed",
    "refunded": "退货 refunded",
    "cancelled": "撤销 cancelled",
    "deleted": "删除 deleted",
}
# Head fields an operator may modify on a temporary or returned list, with their spec lengths.
EDITABLE_FIELDS = {"consigneeAddress": 200, "buyerTelephone": 30, "note": 1000}
CONDITIONS = ("preNo", "copNo", "orderNo", "logisticsNo", "invtNo", "buyer", "dateFrom", "dateTo")
_COLUMNS = {
    "preNo": "pre_no",
    "copNo": "cop_no",
    "orderNo": "order_no",
    "logisticsNo": "logistics_no",
    "invtNo": "invt_no",
}


def state_label(state: str | None) -> str:
    return STATE_LABELS.get(state or "", state or "—")


def reason_words(code: str | None) -> str:
    """A review reason code (R1…R5, L1, L2, M1) in plain words."""
    try:
        return TITLES[Reason(code)] if code else ""
    except ValueError:
        return code or ""


def query(
    conn: Connection, who: Principal, screen: str, given: dict[str, str], page: int = 1
) -> tuple[list[Row], int]:
    """The list-to-be-declared ("pending") or declared-list ("declared") query, one page."""
    where = []
    if screen == "pending":
        where.append(lists.c.state.in_([s.value for s in EDITABLE]))
    else:
        wanted = given.get("status") or ""
        states = [s.value for s in DECLARED_STATES]
        where.append(lists.c.state.in_([wanted] if wanted in states else states))
    for param, column in _COLUMNS.items():
        if value := (given.get(param) or "").strip():
            where.append(lists.c[column].contains(value, autoescape=True))
    if buyer := (given.get("buyer") or "").strip():
        where.append(
            or_(
                lists.c.buyer_name.contains(buyer, autoescape=True),
                lists.c.buyer_id_number == buyer,
            )
        )
    if since := day_bound(given.get("dateFrom") or "", False):
        where.append(lists.c.app_time >= since)
    if until := day_bound(given.get("dateTo") or "", True):
        where.append(lists.c.app_time <= until)
    base = limit(select(lists).where(and_(*where)), lists, who)
    total = conn.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    page = max(1, page)
    rows = conn.execute(
        base.order_by(lists.c.updated_at.desc(), lists.c.id.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    return rows, total


def find(conn: Connection, who: Principal, list_id: int) -> Row | None:
    """A list the principal may see; deleted lists are gone for the console."""
    q = select(lists).where(lists.c.id == list_id, lists.c.state != ListState.DELETED)
    return conn.execute(limit(q, lists, who)).first()


def details(conn: Connection, who: Principal, list_id: int) -> dict[str, Any] | None:
    if find(conn, who, list_id) is None:
        return None
    return queries.list_details(conn, list_id=list_id)


def review_queue(conn: Connection, given: dict[str, str]) -> list[Row]:
    wanted = given.get("status") or ""
    states = [s.value for s in UNDER_REVIEW]
    q = select(lists).where(lists.c.state.in_([wanted] if wanted in states else states))
    if rule := (given.get("riskRule") or "").strip():
        q = q.where(lists.c.risk_rule.contains(rule, autoescape=True))
    if since := day_bound(given.get("dateFrom") or "", False):
        q = q.where(lists.c.app_time >= since)
    if until := day_bound(given.get("dateTo") or "", True):
        q = q.where(lists.c.app_time <= until)
    return conn.execute(q.order_by(lists.c.updated_at, lists.c.id).limit(500)).all()


# ------------------------------------------------------------------ the three-order match


@dataclass
class MatchRow:
    """One field that must agree across the list and its order, payment and waybill."""

    field: str
    values: list[str | None]  # list, order, payment, waybill; None: not a field of that one

    @property
    def ok(self) -> bool:
        present = [v for v in self.values if v is not None]
        return len({_norm(v) for v in present}) <= 1


def _norm(value: str) -> str:
    try:
        return str(Decimal(value).normalize())
    except (InvalidOperation, ValueError):
        return value.strip()


# (label field, list field, order field, payment field, waybill field)
MATCHES = (
    ("orderNo", "orderNo", "orderNo", "orderNo", "orderNo"),
    ("ebpCode", "ebpCode", "ebpCode", "ebpCode", None),
    ("ebcCode", "ebcCode", "ebcCode", None, None),
    ("logisticsNo", "logisticsNo", None, None, "logisticsNo"),
    ("logisticsCode", "logisticsCode", None, None, "logisticsCode"),
    ("buyerName", "buyerName", "buyerName", "payerName", None),
    ("buyerIdNumber", "buyerIdNumber", "buyerIdNumber", "payerIdNumber", None),
    ("buyerTelephone", "buyerTelephone", "buyerTelephone", None, None),
    ("consignee", None, "consignee", None, "consignee"),
    ("consigneeTelephone", None, "consigneeTelephone", None, "consigneeTelephone"),
    ("consigneeAddress", "consigneeAddress", "consigneeAddress", None, "consigneeAddress"),
    ("acturalPaid", None, "acturalPaid", "amountPaid", None),
)


def match_rows(data: dict[str, Any]) -> list[MatchRow]:
    docs = [{"head": data["head"]}, data.get("order"), data.get("payment"), data.get("waybill")]
    out = []
    for label, *names in MATCHES:
        values = []
        for doc, name in zip(docs, names, strict=True):
            values.append(None if name is None or doc is None else doc["head"].get(name, ""))
        out.append(MatchRow(label, values))
    return out


# ------------------------------------------------------------------ actions


@dataclass
class Outcome:
    """What became of one list the user acted on."""

    list_id: int
    ok: bool
    text: str
    pre_no: str | None = None
    cop_no: str | None = None
    state: str | None = None
    missing: bool = False  # no such list, or not the principal's: the caller answers 404

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.list_id,
            "ok": self.ok,
            "info": self.text,
            "preNo": self.pre_no,
            "copNo": self.cop_no,
            "state": self.state,
        }


def _desk(conn: Connection, console, actor: str) -> Desk:
    return Desk(conn, console.router, utcnow(), actor=actor, root=console.ws.root)


def _act(engine: Engine, who: Principal, list_id: int, work) -> Outcome:
    """Run one action on one list in its own transaction; refusals become the outcome."""
    try:
        with engine.begin() as conn:
            row = find(conn, who, list_id)
            if row is None:
                return Outcome(list_id, False, "没有这个清单 no such list", missing=True)
            row = work(conn, row)
            return Outcome(list_id, True, row.return_info or "", row.pre_no, row.cop_no, row.state)
    except RecordRejected as exc:
        return Outcome(list_id, False, f"{exc.return_status} {exc.info}")


def declare(console, who: Principal, list_ids: list[int]) -> list[Outcome]:
    def work(conn, row):
        return actions.declare(_desk(conn, console, who.name), row)

    return [_act(console.engine, who, i, work) for i in list_ids]


def delete(console, who: Principal, list_id: int) -> Outcome:
    def work(conn, row):
        return actions.delete(_desk(conn, console, who.name), row)

    return _act(console.engine, who, list_id, work)


def modify(console, who: Principal, list_id: int, changes: dict[str, str]) -> Outcome:
    """Change a few head fields of a temporary or returned list and save it (receipt 1)."""
    for name, value in changes.items():
        if name not in EDITABLE_FIELDS:
            raise ValueError(f"{name} cannot be modified here")
        if len(value) > EDITABLE_FIELDS[name]:
            raise ValueError(f"{name} is at most {EDITABLE_FIELDS[name]} characters")
    if not changes.get("consigneeAddress", "x").strip():
        raise ValueError("consigneeAddress is required")

    def work(conn, row):
        if ListState(row.state) not in EDITABLE:
            raise RecordRejected("-621004", f"list {row.cop_no} is {row.state}; it cannot change")
        desk = _desk(conn, console, who.name)
        head = dict(row.head)
        changed = [n for n, v in changes.items() if head.get(n, "") != v]
        head.update(changes)
        conn.execute(
            update(lists).where(lists.c.id == row.id).values(head=head, updated_at=desk.now)
        )
        log(desk, row.id, row.state, row.state, None, f"修改 modified: {', '.join(changed) or '-'}")
        return actions.save(desk, get(conn, row.id))

    return _act(console.engine, who, list_id, work)


def authority_of(who: Principal, asked: str | None) -> Authority | None:
    """The authority an officer decides as: its own; an admin names one."""
    if who.role == UserRole.CUSTOMS:
        return Authority.CUSTOMS
    if who.role == UserRole.INSPECTION:
        return Authority.INSPECTION
    if who.role == UserRole.ADMIN and asked in {a.value for a in Authority}:
        return Authority(asked)
    return None


def review(
    console, who: Principal, list_id: int, authority: Authority, decision: Decision, reason: str
) -> Outcome:
    def work(conn, row):
        desk = _desk(conn, console, f"{authority} officer {who.name}")
        return decide(desk, row, authority, decision, reason)

    return _act(console.engine, who, list_id, work)


def log_rows(conn: Connection, list_id: int) -> list[Row]:
    return conn.execute(
        select(list_log).where(list_log.c.list_id == list_id).order_by(list_log.c.id)
    ).all()
