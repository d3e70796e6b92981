"""The keyed-record handler: appType 1/2/3 rules for a declaration with a business key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection, Row, Table, bindparam, insert, select, update

from hub.codes import Status
from hub.config import Partner
from hub.constants import (
    APP_STATUS_DECLARE,
    APP_STATUS_TEMPORARY,
    APP_TYPE_CHANGE,
    APP_TYPE_DELETE,
    APP_TYPE_NEW,
)
from hub.errors import RecordRejected
from hub.messages.records import Record, Subscription
from hub.messages.types import MessageType
from hub.store.prepared import CONFLICT_DIALECTS, Prepared
from hub.store.states import RecordState

if TYPE_CHECKING:
    from hub.routing import Router


@dataclass
class ApplyContext:
    """What a handler may use while applying one message's records."""

    conn: Connection
    message_id: int
    partner: Partner
    now: datetime
    router: Router | None = None  # for handlers whose effects send receipts or route (lists)
    # The message's BaseSubscribe entries, as read from the verified tree (never re-parsed).
    subscriptions: Callable[[], list[Subscription]] = list
    # The message as its row keeps them (guid, stored body), for handlers that route it; and
    # the partners its records have routed it to so far in this transaction (lists).
    message_guid: str | None = None
    message_body: bytes | None = None
    routed: set[str] = field(default_factory=set)


@dataclass
class RecordOutcome:
    """The receipts one record earns, in the order they are sent, and whether it took effect."""

    statuses: list[tuple[str, str]] = field(default_factory=list)  # (returnStatus, returnInfo)
    accepted: bool = False
    record_id: int | None = None
    receipt_keys: dict[str, str] = field(default_factory=dict)


class Handler(Protocol):
    msg_type: MessageType

    def apply(self, ctx: ApplyContext, record: Record) -> RecordOutcome: ...


def is_temporary(record: Record) -> bool:
    """appStatus 1 (暂存): saved, not declared; answered with receipt status 1 only."""
    return record.get("appStatus") == APP_STATUS_TEMPORARY


# A guard looks at the stored row of a change or delete and raises RecordRejected to refuse it.
Guard = Callable[[Connection, Row], None]
Columns = Callable[[Record], dict[str, Any]]


class KeyedRecordHandler:
    """Stores records of one type under their business key with the spec's appType rules."""

    def __init__(
        self,
        msg_type: MessageType,
        table: Table,
        key_columns: tuple[str, ...],
        columns: Columns,
        guard: Guard | None = None,
    ) -> None:
        assert msg_type.codes is not None and len(key_columns) == len(msg_type.keys)
        self.msg_type = msg_type
        self.table = table
        self.key_columns = key_columns
        self.columns = columns
        self.guard = guard
        self.codes = msg_type.codes
        # Once or more per record: compiled once, run on the DBAPI cursor. The columns set
        # are the parameters given, except `row_id`, the row an update or delete changes.
        key = [table.c[col] == bindparam(col) for col in key_columns]
        self._find = Prepared(select(table).where(*key))
        self._insert = Prepared(insert(table).returning(table.c.id))
        self._update = Prepared(update(table).where(table.c.id == bindparam("row_id")))
        # A new record is inserted first: nearly every appType 1 is new, and the key's
        # unique constraint says so without a look-up. A key taken (by a live record, or a
        # deleted one that the record brings back) inserts nothing, and the look-up follows.
        self._insert_new = {
            name: Prepared(
                dialect.insert(table)
                .on_conflict_do_nothing(index_elements=list(key_columns))
                .returning(table.c.id)
            )
            for name, dialect in CONFLICT_DIALECTS.items()
        }

    def describe_key(self, record: Record) -> str:
        return ", ".join(
            f"{n} {v}"
            for n, v in zip(self.msg_type.keys, record.key(self.msg_type.keys), strict=True)
        )

    def receipt_keys(self, record: Record) -> dict[str, str]:
        return {name: record.get(name) for name in self.msg_type.receipt_keys}

    def find(self, conn: Connection, record: Record) -> Row | None:
        key = record.key(self.msg_type.keys)
        return self._find.first(conn, dict(zip(self.key_columns, key, strict=True)))

    def apply(self, ctx: ApplyContext, record: Record) -> RecordOutcome:
        app_type = record.get("appType") or APP_TYPE_NEW
        guid = record.get("guid")
        if app_type == APP_TYPE_NEW:
            insert_new = self._insert_new.get(ctx.conn.dialect.name)
            if insert_new is not None:
                values = {"created_at": ctx.now, **self._values(ctx, record)}
                record_id = insert_new.scalar(ctx.conn, values)
                if record_id is not None:
                    return self._accepted(record, record_id, f"新增申报成功[{guid}]")
        row = self.find(ctx.conn, record)
        live = row is not None and row.state == RecordState.ACTIVE
        if app_type == APP_TYPE_NEW:
            if live:
                raise RecordRejected(
                    self.codes.exists,
                    f"{self.describe_key(record)} already exists; send appType 2 to change it",
                )
            record_id = self._store(ctx, record, row)
            return self._accepted(record, record_id, f"新增申报成功[{guid}]")
        if not live:
            raise RecordRejected(
                self.codes.unknown,
                f"{self.describe_key(record)} not found: appType {app_type} needs a stored record",
            )
        assert row is not None
        if record.get("appTime") < row.app_time:
            raise RecordRejected(
                self.codes.stale,
                f"appTime {record.get('appTime')} is older than the stored version's {row.app_time}; message ignored",
            )
        if self.guard:
            self.guard(ctx.conn, row)
        if app_type == APP_TYPE_CHANGE:
            record_id = self._store(ctx, record, row)
            return self._accepted(record, record_id, f"变更申报成功[{guid}]")
        if app_type == APP_TYPE_DELETE:
            deleted = {
                "row_id": row.id,
                "state": RecordState.DELETED,
                "updated_at": ctx.now,
                "app_time": record.get("appTime"),
                "message_id": ctx.message_id,
            }
            self._update.execute(ctx.conn, deleted)
            outcome = RecordOutcome(
                accepted=True, record_id=row.id, receipt_keys=self.receipt_keys(record)
            )
            outcome.statuses.append((Status.DECLARING, f"删除申报成功[{guid}]"))
            return outcome
        raise RecordRejected(self.codes.parameter, f"appType {app_type!r} is not 1, 2 or 3")

    def _accepted(self, record: Record, record_id: int, info: str) -> RecordOutcome:
        outcome = RecordOutcome(
            accepted=True, record_id=record_id, receipt_keys=self.receipt_keys(record)
        )
        if is_temporary(record):  # saved, not declared: nothing goes on to customs' checks
            outcome.statuses.append((Status.TEMPORARY, "暂存"))
            return outcome
        outcome.statuses.append((Status.DECLARING, info))
        outcome.statuses.append((Status.ACCEPTED, "海关入库: stored, logic checks passed"))
        return outcome

    def _store(self, ctx: ApplyContext, record: Record, row: Row | None) -> int:
        values = self._values(ctx, record)
        if row is not None:
            self._update.execute(ctx.conn, {"row_id": row.id, **values})
            return row.id
        return self._insert.scalar(ctx.conn, {"created_at": ctx.now, **values})

    def _values(self, ctx: ApplyContext, record: Record) -> dict[str, Any]:
        """The columns a stored record has, but for `created_at` (its first store's time)."""
        return {
            "guid": record.get("guid"),
            "state": RecordState.ACTIVE,
            "app_status": record.get("appStatus") or APP_STATUS_DECLARE,
            "app_time": record.get("appTime"),
            "return_status": Status.TEMPORARY if is_temporary(record) else Status.ACCEPTED,
            "partner_id": ctx.partner.id,
            "message_id": ctx.message_id,
            "updated_at": ctx.now,
            "head": record.stored_head(),
            "lines": record.stored_lines(),
            **dict(zip(self.key_columns, record.key(self.msg_type.keys), strict=True)),
            **self.columns(record),
        }
