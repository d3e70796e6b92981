"""Declaration lists (CEB621): stored under (agentCode, copNo) and handed to the clearance lifecycle."""

from __future__ import annotations

from collections import namedtuple
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, insert, select

from hub.clearance import actions
from hub.clearance.lifecycle import (
    Desk,
    NewMessage,
    Pending,
    pre_no_for,
    receipt_keys,
    update_list,
)
from hub.clearance.states import EDITABLE, ListState
from hub.clearance.tables import lists
from hub.clearance.tax import dutiable_value
from hub.codes import LIST_DECLARED, LIST_INVALID, Status
from hub.constants import APP_STATUS_DECLARE, APP_TYPE_CHANGE, APP_TYPE_DELETE, APP_TYPE_NEW
from hub.errors import RecordRejected
from hub.handlers.base import ApplyContext, RecordOutcome
from hub.messages.records import Record
from hub.messages.types import LIST
from hub.store.prepared import CONFLICT_DIALECTS, Prepared

RECEIPT_SUBSCRIPTIONS = ("ALL", "RET")  # BaseSubscribe statuses that want receipts


def list_columns(record: Record) -> dict[str, Any]:
    goods = sum((Decimal(x.get("totalPrice") or "0") for x in record.lines), Decimal(0))
    return {
        "guid": record.get("guid"),
        "app_status": record.get("appStatus") or "1",
        "app_time": record.get("appTime"),
        "head": record.stored_head(),
        "lines": record.stored_lines(),
        "ebp_code": record.get("ebpCode"),
        "ebc_code": record.get("ebcCode"),
        "order_no": record.get("orderNo"),
        "logistics_code": record.get("logisticsCode"),
        "logistics_no": record.get("logisticsNo"),
        "assure_code": record.get("assureCode"),
        "customs_code": record.get("customsCode"),
        "buyer_id_number": record.get("buyerIdNumber"),
        "buyer_name": record.get("buyerName"),
        "trade_mode": record.get("tradeMode"),
        "goods_value": goods,
        "dutiable_value": dutiable_value(record.head, record.lines),
    }


class InventoryHandler:
    """appType 1 saves or declares, 2 changes and 3 deletes a list while temporary or returned."""

    msg_type = LIST

    def apply(self, ctx: ApplyContext, record: Record) -> RecordOutcome:
        assert ctx.router is not None, "lists need the router to answer and route"
        # The list's log, receipt and delivery rows go in one statement per table, written
        # before the record's savepoint ends (a refusal raises before: none are written).
        new_message = None
        if ctx.message_body is not None:
            new_message = NewMessage(ctx.message_id, ctx.message_guid, ctx.message_body, ctx.routed)
        desk = Desk(
            ctx.conn, ctx.router, ctx.now, actor=ctx.partner.id, pending=Pending(),
            new_message=new_message,
        )  # fmt: skip
        outcome = self._apply(ctx, desk, record)
        desk.flush()
        return outcome

    def _apply(self, ctx: ApplyContext, desk: Desk, record: Record) -> RecordOutcome:
        key = f"agentCode {record.get('agentCode')}, copNo {record.get('copNo')}"
        if not record.get("copNo"):
            raise RecordRejected(
                LIST_INVALID, "copNo is required: receipts and the hub key lists by it"
            )
        app_type = record.get("appType") or APP_TYPE_NEW
        if app_type == APP_TYPE_NEW:  # nearly always a new key: inserted without a look-up
            row = self._insert_new(ctx, record)
            if row is not None:
                return self._declare_or_save(desk, record, row)
        row = _BY_KEY.first(
            ctx.conn, {"agent_code": record.get("agentCode"), "cop_no": record.get("copNo")}
        )
        live = row is not None and row.state != ListState.DELETED
        if app_type == APP_TYPE_NEW:
            if live:
                raise RecordRejected(
                    LIST_DECLARED, f"list {key} exists ({row.state}); send appType 2 to change it"
                )
        elif app_type in (APP_TYPE_CHANGE, APP_TYPE_DELETE):
            if not live:
                raise RecordRejected(
                    LIST_INVALID, f"list {key} not found: appType {app_type} needs one"
                )
            if ListState(row.state) not in EDITABLE:
                raise RecordRejected(
                    LIST_DECLARED,
                    f"list {key} is {row.state}; it may change only while temporary or returned",
                )
            if record.get("appTime") < row.app_time:
                raise RecordRejected(
                    LIST_INVALID,
                    f"appTime {record.get('appTime')} is older than the stored version's "
                    f"{row.app_time}; message ignored",
                )
        else:
            raise RecordRejected(LIST_INVALID, f"appType {app_type!r} is not 1, 2 or 3")
        if app_type == APP_TYPE_DELETE:
            row = actions.delete(desk, row)
            outcome = RecordOutcome(accepted=True, record_id=row.id, receipt_keys=receipt_keys(row))
            outcome.statuses.append((Status.DECLARING, f"删除申报成功[{record.get('guid')}]"))
            return outcome
        return self._declare_or_save(desk, record, self._store(ctx, record, row))

    @staticmethod
    def _declare_or_save(desk: Desk, record: Record, row: Any) -> RecordOutcome:
        if record.get("appStatus") == APP_STATUS_DECLARE:
            actions.declare(desk, row)
        else:
            actions.save(desk, row)
        # The lifecycle has answered with CEB622 receipts and routed the list itself; the
        # pipeline must neither answer again nor copy the message (a temporary list stays here).
        return RecordOutcome(accepted=False, record_id=row.id)

    def _store(self, ctx: ApplyContext, record: Record, row) -> Any:
        if row is not None:
            return update_list(ctx.conn, row.id, _values(ctx, record))
        return _numbered(ctx, _INSERT_LIST.scalar(ctx.conn, _new_row(ctx, record)))

    @staticmethod
    def _insert_new(ctx: ApplyContext, record: Record) -> Any | None:
        """A new list under its key, or None when the key is taken (the look-up follows).

        Its id is drawn first, so that one INSERT writes it whole, preNo included; the row
        is the values it bound (an UPDATE of the preNo reading the row back cost a list ~40 µs).
        """
        dialect = ctx.conn.dialect.name
        insert_new, next_id = _INSERT_NEW_LIST.get(dialect), _NEXT_LIST_ID.get(dialect)
        if insert_new is None or next_id is None:
            return None
        list_id = next_id.scalar(ctx.conn)
        values = {**_new_row(ctx, record), "id": list_id, "pre_no": pre_no_for(list_id, ctx.now)}
        if insert_new.scalar(ctx.conn, values) is None:
            return None
        return _ListRow(**{name: values.get(name) for name in _ListRow._fields})


def _values(ctx: ApplyContext, record: Record) -> dict[str, Any]:
    """What a declaration sets on its list, new or changed."""
    return {
        **list_columns(record),
        "partner_id": ctx.partner.id,
        "message_id": ctx.message_id,
        "updated_at": ctx.now,
        "subscribers": _subscribers(ctx),
        "waiting_since": None,
        "waiting_for": None,
    }


def _new_row(ctx: ApplyContext, record: Record) -> dict[str, Any]:
    return dict(
        agent_code=record.get("agentCode"),
        cop_no=record.get("copNo"),
        state="",
        created_at=ctx.now,
        refunded_value=Decimal(0),
        refunded_tax=Decimal(0),
        **_values(ctx, record),
    )


def _numbered(ctx: ApplyContext, list_id: int) -> Any:
    """A new list given its preNo, made from its id; the update hands back the whole row."""
    return update_list(ctx.conn, list_id, {"pre_no": pre_no_for(list_id, ctx.now)})


def _subscribers(ctx: ApplyContext) -> list[str]:
    """Partners the message's BaseSubscribe names for receipts (the entries are the
    message's own, kept with it: no cache keyed by message id, which a rolled-back
    savepoint lets SQLite give to the next message)."""
    by_dxp = {p.dxp_id: p.id for p in ctx.router.settings.partners.values() if p.dxp_id}
    return [
        by_dxp[s.dxp_address]
        for s in ctx.subscriptions()
        if s.status in RECEIPT_SUBSCRIPTIONS
        and s.dxp_address in by_dxp
        and by_dxp[s.dxp_address] != ctx.partner.id
    ]


# Once per list record: compiled once, run on the DBAPI cursor.
_BY_KEY = Prepared(
    select(lists).where(
        lists.c.agent_code == bindparam("agent_code"), lists.c.cop_no == bindparam("cop_no")
    )
)
_INSERT_LIST = Prepared(insert(lists).returning(lists.c.id))
# A new key inserts; a taken one (a live list, or a deleted one brought back) inserts nothing.
_INSERT_NEW_LIST = {
    name: Prepared(
        dialect.insert(lists)
        .on_conflict_do_nothing(index_elements=["agent_code", "cop_no"])
        .returning(lists.c.id)
    )
    for name, dialect in CONFLICT_DIALECTS.items()
}
# A new list's id, drawn before its insert. SQLite gives a new row max(id) + 1 itself (and
# the transaction holds the one write lock); PostgreSQL draws from the column's sequence.
_NEXT_LIST_ID = {
    "sqlite": Prepared(select(func.coalesce(func.max(lists.c.id), 0) + 1)),
    "postgresql": Prepared(select(func.nextval(func.pg_get_serial_sequence("lists", "id")))),
}
# A new list as its insert wrote it (the columns it left out are NULL).
_ListRow = namedtuple("ListRow", [c.name for c in lists.c])
INVENTORY_HANDLER = InventoryHandler()
