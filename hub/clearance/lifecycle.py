"""The only thing that moves a list: state, operation log, CEB622 receipts and routing together."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Connection, Row, bindparam, insert, null, select, update
from sqlalchemy.exc import NoResultFound

from hub import metrics
from hub.clearance import guarantee
from hub.clearance.states import COUNTED, RECEIPT_STATUS, TRANSITIONS, Authority, ListState
from hub.clearance.tables import list_log, lists, tax_bills
from hub.clock import stamp8
from hub.codes import LIST_DECLARED
from hub.config import Role, Settings
from hub.errors import RecordRejected
from hub.messages.receipts import ReceiptEntry, build_receipt, receipt_row
from hub.messages.types import LIST
from hub.routing import Queued, Router
from hub.store.prepared import Prepared
from hub.store.states import DeliveryState
from hub.store.tables import deliveries, messages, receipts
from hub.workspace import Workspace

TAX_VOIDED = "3"  # CEB816 tax bill status: voided on return or cancellation
DECIDING_ROLES = {Role.CUSTOMS: Authority.CUSTOMS, Role.INSPECTION: Authority.INSPECTION}


class TransitionRefused(RecordRejected):
    """A move the transition table does not allow; carries the list's "state" code."""


@dataclass
class Pending:
    """Log, receipt and delivery rows of a desk's moves, kept for one statement per table."""

    logs: list[dict] = field(default_factory=list)
    receipts: list[dict] = field(default_factory=list)
    deliveries: list[Queued] = field(default_factory=list)
    routed: list[str] = field(default_factory=list)  # partners given the new message's copy
    # CEB622 entries of the moves, sent at the flush: a list's in one message (`Desk.flush`).
    answers: list[tuple[Row, ReceiptEntry]] = field(default_factory=list)
    debits: list[tuple[str, Decimal]] = field(default_factory=list)  # deferred (`Desk.deferred`)
    moves: list[tuple[str, str | None]] = field(default_factory=list)  # (state, reason) to count


@dataclass
class NewMessage:
    """The message a desk's lists came in, recorded in the desk's own transaction.

    Its routed copies are the ones its records have queued, so `send_copies` knows them (and
    the message's guid and body) without asking the database. `routed` is shared by the desks
    of the message's records and grows only once a record's rows are written (`Desk.flush`):
    a record rolled back leaves it as it was.
    """

    id: int
    guid: str | None  # as the messages row keeps it
    body: bytes  # the stored body
    routed: set[str] = field(default_factory=set)


@dataclass
class Desk:
    """What a transition needs: the open transaction, the router, the time and who acts.

    With `pending`, the rows its moves add are kept until `flush` (which the holder must call
    before the transaction or savepoint they belong to ends; `discard` after a failure);
    without, each is written at once.
    """

    conn: Connection
    router: Router
    now: datetime
    actor: str
    root: Path | None = None  # the workspace, for workspace-relative reference files
    pending: Pending | None = None
    new_message: NewMessage | None = None  # with `pending` only
    # With `pending`: guarantee debits taken at the end of the transaction (the sweep's).
    deferred: guarantee.DeferredDebits | None = None
    # With `pending`: where `flush` puts the moves written, for the holder to count once its
    # transaction has committed (`metrics.lists_moved`); without, `flush` counts them.
    moved: list[tuple[str, str | None]] | None = None

    def flush(self) -> None:
        """Write the kept rows: the log, the receipts, then the delivery rows.

        The receipts of a list's moves since the last flush go in one CEB622, an
        InventoryReturn a move in their order (the spec allows 1..100 a message): a review
        that accepts, concludes, releases and closes a list answers with one file, not four.
        """
        p = self.pending
        if p is None:
            return
        latest: dict[int, Row] = {}  # a list's row after its last move: its addressees
        entries: dict[int, list[ReceiptEntry]] = {}
        for row, entry in p.answers:
            latest[row.id] = row
            entries.setdefault(row.id, []).append(entry)
        for list_id, listed in entries.items():
            _send(self, latest[list_id], listed)
        _INSERT_LOG.execute_many(self.conn, p.logs)
        _INSERT_RECEIPT.execute_many(self.conn, p.receipts)
        if p.deliveries:
            self.router.flush(self.conn, p.deliveries)
        if p.routed and self.new_message is not None:
            self.new_message.routed.update(p.routed)
        if self.deferred is not None:
            self.deferred.take(p.debits)
        if self.moved is not None:
            self.moved.extend(p.moves)
        else:
            metrics.lists_moved(p.moves)
        self.discard()

    def discard(self) -> None:
        """Forget the kept rows (their savepoint was rolled back)."""
        if self.pending is not None:
            self.pending.logs.clear()
            self.pending.receipts.clear()
            self.pending.deliveries.clear()
            self.pending.routed.clear()
            self.pending.answers.clear()
            self.pending.debits.clear()
            self.pending.moves.clear()

    @property
    def settings(self) -> Settings:
        return self.router.settings

    def path(self, name: str) -> Path:
        """A workspace-relative file: in the desk's or the router's workspace; without either
        (a desk made by hand), $CEBHUB_HOME's or the current directory's."""
        p = Path(name)
        if p.is_absolute():
            return p
        return (self.root or self.router.root or Workspace.locate().root) / p


# The statements every list goes through, compiled once (hub.store.prepared).
_GET = Prepared(select(lists).where(lists.c.id == bindparam("list_id")))
# One statement for every update of a list that needs the row afterwards: the columns set
# are the parameters given (a plan per set of columns); RETURNING gives the row as `get`
# would read it (SQLite >= 3.35, PostgreSQL).
_UPDATE_LIST = Prepared(update(lists).where(lists.c.id == bindparam("list_id")).returning(*lists.c))
# The same without reading back: `move` has the row, and the values it sets.
_SET_LIST = Prepared(update(lists).where(lists.c.id == bindparam("list_id")))
_COLUMNS = tuple(c.name for c in lists.c if c.name != "id")
_INSERT_LOG = Prepared(insert(list_log))
_INSERT_RECEIPT = Prepared(insert(receipts))
_ROUTED_MESSAGE = Prepared(
    select(messages.c.guid, messages.c.body).where(messages.c.id == bindparam("message_id"))
)
_ROUTED_GUID = Prepared(  # a bare copy refers to the stored body: no need to read it
    select(messages.c.guid, null().label("body")).where(messages.c.id == bindparam("message_id"))
)
_ROUTED_TO = Prepared(  # the partners that have the message's routed copy already
    select(deliveries.c.partner_id).where(
        deliveries.c.kind == "route", deliveries.c.message_id == bindparam("message_id")
    )
)
_ROUTE_STATES = Prepared(
    select(deliveries.c.state).where(
        deliveries.c.kind == "route", deliveries.c.message_id == bindparam("message_id")
    )
)
_VOID_TAX_BILL = Prepared(
    update(tax_bills)
    .where(tax_bills.c.list_id == bindparam("bill_of"))  # not "list_id": that is a column
    .values(status=TAX_VOIDED, updated_at=bindparam("now", type_=tax_bills.c.updated_at.type))
)


def _required(row: Row | None) -> Row:
    if row is None:  # as Core's Result.one() says it
        raise NoResultFound("No row was found when one was required")
    return row


def get(conn: Connection, list_id: int) -> Row:
    return _required(_GET.first(conn, {"list_id": list_id}))


def update_list(conn: Connection, list_id: int, values: dict) -> Row:
    """Set `values` on the list and return it as stored now."""
    return _required(_UPDATE_LIST.first(conn, {"list_id": list_id, **values}))


def _updated(conn: Connection, row: Row, values: dict) -> Row:
    """`update_list` for a row of ours (a named tuple read in this transaction): the row is
    updated in place of being read back, so nothing but the UPDATE runs."""
    if not hasattr(row, "_replace"):
        return update_list(conn, row.id, values)
    if _SET_LIST.execute(conn, {"list_id": row.id, **values}).rowcount != 1:
        _required(None)
    return row._replace(**values)


def find(
    conn: Connection,
    *,
    pre_no: str | None = None,
    cop_no: str | None = None,
    invt_no: str | None = None,
    agent_code: str | None = None,
) -> Row | None:
    """A list by preNo, invtNo or copNo (optionally of one agent)."""
    q = select(lists)
    if pre_no:
        q = q.where(lists.c.pre_no == pre_no)
    elif invt_no:
        q = q.where(lists.c.invt_no == invt_no)
    elif cop_no:
        q = q.where(lists.c.cop_no == cop_no)
    else:
        return None
    if agent_code:
        q = q.where(lists.c.agent_code == agent_code)
    return conn.execute(q.order_by(lists.c.id).limit(1)).first()


def move(
    desk: Desk,
    row: Row,
    to: ListState,
    *,
    info: str = "",
    code: str | None = None,
    reason_code: str | None = None,
    values: dict | None = None,
    write: bool = True,
) -> Row:
    """Move a list to `to`: state, log row, receipt (to the agent and subscribers) at once.

    `code` overrides the returnStatus the receipt carries (a limit's negative code); states
    without a CEB622 status send none. Leaving the counted states gives the tax back.
    `write=False` leaves the list's own row to `store`: several moves in a row, one UPDATE.
    """
    before = ListState(row.state) if row.state else None
    if to not in TRANSITIONS.get(before, frozenset()):
        raise TransitionRefused(
            LIST_DECLARED,
            f"list {row.cop_no} is {before or 'new'}; it cannot become {to}",
        )
    status = code or RECEIPT_STATUS.get(to)
    changes = dict(values or {})
    if before in COUNTED and to not in COUNTED:
        _give_back(desk, row, f"list {row.pre_no} {to}")
    if to == ListState.RELEASED:
        changes["released_at"] = desk.now
    params = {
        "state": to,
        "updated_at": desk.now,
        **({"return_status": status} if status else {}),
        **({"return_info": info} if info else {}),
        **changes,
    }
    row = _updated(desk.conn, row, params) if write else row._replace(**params)
    log(desk, row.id, before, to, status, info, reason_code)
    if desk.pending is not None:  # counted once written (`Desk.flush`), not if rolled back
        desk.pending.moves.append((to, reason_code))
    else:
        metrics.list_moved(to, reason_code)
    if status:
        send_receipt(desk, row, status, info or to.value)
    return row


def store(desk: Desk, before: Row, after: Row) -> Row:
    """Write what moves made with `write=False` changed, from `before` to `after`, at once."""
    changed = {c: getattr(after, c) for c in _COLUMNS if getattr(after, c) != getattr(before, c)}
    if changed and _SET_LIST.execute(desk.conn, {"list_id": after.id, **changed}).rowcount != 1:
        _required(None)
    return after


def log(
    desk: Desk,
    list_id: int,
    before: ListState | str | None,
    to: ListState | str,
    code: str | None,
    reason: str,
    reason_code: str | None = None,
) -> None:
    """One operation-log row (also used for a decision recorded without a move)."""
    row = dict(
        list_id=list_id,
        at=desk.now,
        actor=desk.actor[:64],
        from_state=str(before) if before else None,
        to_state=str(to),
        code=code,
        reason_code=reason_code,
        reason=reason,
    )
    if desk.pending is not None:
        desk.pending.logs.append(row)
    else:
        _INSERT_LOG.execute(desk.conn, row)


def receipt_keys(row: Row) -> dict[str, str]:
    return {
        "customsCode": row.customs_code or "",
        "ebpCode": row.ebp_code,
        "ebcCode": row.ebc_code,
        "agentCode": row.agent_code,
        "copNo": row.cop_no,
        "preNo": row.pre_no or "",
        "invtNo": row.invt_no or "",
    }


def debit(desk: Desk, code: str, amount: Decimal, list_id: int) -> bool:
    """Take a list's tax off its guarantee: at once, or with the desk's deferred debits."""
    if desk.deferred is None or desk.pending is None or amount <= 0:
        return guarantee.debit(desk.conn, code, amount, list_id, desk.now)
    return desk.deferred.debit(desk.conn, code, amount, list_id, desk.now, desk.pending.debits)


def send_receipt(desk: Desk, row: Row, status: str, info: str) -> None:
    """A CEB622 for one list to its agent and to the subscribers that want receipts; with a
    desk's `pending`, an entry of the one its flush sends."""
    entry = ReceiptEntry(status, info, receipt_keys(row), guid=row.guid)
    if desk.pending is not None:
        desk.pending.answers.append((row, entry))
    else:
        _send(desk, row, [entry])


def _send(desk: Desk, row: Row, entries: list[ReceiptEntry]) -> None:
    """One CEB622 of `entries` (all of list `row`): a receipts row an entry, a file an addressee."""
    receipt = build_receipt(LIST, entries, when=desk.now)
    stored = [
        receipt_row(
            receipt,
            entry,
            partner_id=row.partner_id,
            message_id=row.message_id,
            record_table="lists",
            record_id=row.id,
            record_key=f"{row.agent_code}|{row.cop_no}",
            record_guid=row.guid,
            when=desk.now,
        )
        for entry in entries
    ]
    pending = desk.pending
    if pending is not None:
        pending.receipts.extend(stored)
    else:
        _INSERT_RECEIPT.execute_many(desk.conn, stored)
    settings = desk.settings
    for partner_id in [row.partner_id, *(row.subscribers or [])]:
        partner = settings.partner(partner_id)
        if partner is None:  # removed since: the receipts row still records the answer
            continue
        desk.router._enqueue(
            desk.conn,
            partner,
            "receipt",
            receipt.msg_type,
            receipt.guid,
            receipt.body,
            row.message_id,
            desk.now,
            Router.envelope_receiver(partner),
            pending.deliveries if pending is not None else None,
        )


# ---------------------------------------------------------------- numbers


def pre_no_for(list_id: int, now: datetime) -> str:
    """18 characters in the e-port's form: B + declaration date + 9-digit serial."""
    return f"B{stamp8(now)}{list_id % 10**9:09d}"


def invt_no_for(row: Row, now: datetime) -> str:
    """Spec §2.7: customs district (4) + year (4) + I + 9-digit serial."""
    district = (row.customs_code or "0000")[:4].rjust(4, "0")
    return f"{district}{stamp8(now)[:4]}I{row.id % 10**9:09d}"


# ---------------------------------------------------------------- routing


def authorities(settings: Settings) -> list[str]:
    """The authorities lists are routed to; the hub itself stands in for customs if none."""
    found = {
        DECIDING_ROLES[p.role].value
        for p in settings.route_targets(LIST.root)
        if p.role in DECIDING_ROLES
    }
    return sorted(found) or [Authority.CUSTOMS.value]


def route(desk: Desk, row: Row) -> bool:
    """Route the list's message to customs / inspection; False when there is nobody to send to.

    Lists of one message share one routed copy (the message exactly as signed).
    """
    update_list(desk.conn, row.id, routing(desk, row))
    return send_copies(desk, row)


def _targets(desk: Desk, row: Row) -> list:
    return [p for p in desk.settings.route_targets(LIST.root) if p.id != row.partner_id]


def routing(desk: Desk, row: Row) -> dict:
    """The list columns `route` sets (a declaration sets them with its move: one update)."""
    return {
        "route_message_id": row.message_id if _targets(desk, row) else None,
        "routed_to": authorities(desk.settings),
        "decisions": {},
    }


def send_copies(desk: Desk, row: Row) -> bool:
    """`route` once the list's `routing` columns are set: queue the copies not queued yet."""
    targets = _targets(desk, row)
    if not targets:
        return False
    new = desk.new_message
    if new is not None and new.id == row.message_id and desk.pending is not None:
        have, guid, body = new.routed | set(desk.pending.routed), new.guid, new.body
        desk.pending.routed.extend(p.id for p in targets if p.id not in have)
    else:
        have = {r.partner_id for r in _ROUTED_TO.all(desk.conn, {"message_id": row.message_id})}
        guid, body = None, None
        if any(partner.id not in have for partner in targets):
            wrapped = any(Router.envelope_receiver(p) for p in targets if p.id not in have)
            read = _ROUTED_MESSAGE if wrapped else _ROUTED_GUID
            msg = _required(read.first(desk.conn, {"message_id": row.message_id}))
            guid, body = msg.guid, msg.body
    for partner in targets:
        if partner.id in have:
            continue
        desk.router._enqueue(
            desk.conn,
            partner,
            "route",
            LIST.root,
            guid or str(row.message_id),
            body,
            row.message_id,
            desk.now,
            Router.envelope_receiver(partner),
            desk.pending.deliveries if desk.pending is not None else None,
            stored=True,  # body is the stored body of row.message_id
        )
    return True


def route_delivered(conn: Connection, row: Row) -> bool:
    """Every routed copy of the list's message has been written to its endpoint."""
    if row.route_message_id is None:
        return True
    states = _ROUTE_STATES.all(conn, {"message_id": row.route_message_id})
    return all(s.state == DeliveryState.DELIVERED for s in states)


# ---------------------------------------------------------------- tax held on the guarantee


def _give_back(desk: Desk, row: Row, note: str) -> None:
    held = (row.tax or Decimal(0)) - (row.refunded_tax or Decimal(0))
    if row.assure_code and held > 0:
        guarantee.restore(desk.conn, row.assure_code, held, row.id, desk.now, note)
    void_tax_bill(desk.conn, row.id, desk.now)


def void_tax_bill(conn: Connection, list_id: int, now: datetime) -> None:
    """The list's CEB816 tax bill no longer stands (returned, cancelled, fully refunded)."""
    _VOID_TAX_BILL.execute(conn, {"bill_of": list_id, "now": now})
