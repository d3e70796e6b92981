"""The inbound pipeline: a batch's checks (hub.checks), then everything it causes in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from hub.checks import DECIDING_ROLES, Inbound, Stages, Validator, Verifier, check
from hub.clearance.waits import on_documents
from hub.clock import utcnow
from hub.config import Settings
from hub.constants import MAX_RECORDS_PER_MESSAGE, SCHEMA_SET_ID
from hub.errors import HubError, MessageRejected, RecordRejected
from hub.faults import crash_point
from hub.handlers import HANDLERS, ApplyContext, RecordOutcome
from hub.logsetup import clear_context, set_context
from hub.messages import records as rec
from hub.messages.receipts import (
    Receipt,
    ReceiptEntry,
    build_format_receipt,
    build_receipt,
    receipt_row,
)
from hub.metrics import count_messages, stage
from hub.routing import Router
from hub.store.prepared import ByDialect, Prepared, in_values, savepoint, values_param
from hub.store.states import MessageState
from hub.store.tables import messages, receipts

# The checks live in hub.checks (the checker process imports them without the database);
# these names are the pipeline's public face as before.
__all__ = ["DECIDING_ROLES", "Disposition", "Inbound", "Processor", "Stages", "Validator",
           "Verifier", "check"]  # fmt: skip

log = logging.getLogger(__name__)

RECEIPT_ENTRIES = 100  # `…Return` entries a receipt holds at most (spec §1.1: 1..100)


@dataclass
class Disposition:
    """What happens to the original file once the transaction has committed."""

    inbound: Inbound
    state: MessageState
    reason: str = ""

    @property
    def quarantine(self) -> bool:
        return self.state == MessageState.REJECTED


# ---------------------------------------------------------------- the transaction


class Processor:
    """Checks a batch of inbound files and records them, and everything they cause, atomically."""

    def __init__(self, settings: Settings, stages: Stages, router: Router) -> None:
        self.settings = settings
        self.stages = stages
        self.router = router

    def process(self, engine: Engine, items: Sequence[Inbound]) -> list[Disposition]:
        """Check a batch here, then record it."""
        self.check_all(items)
        return self.record(engine, items)

    def check_all(self, items: Sequence[Inbound]) -> None:
        """Every check that needs no database, in this process; an error is kept on its item."""
        new_batch = getattr(self.stages.verify, "new_batch", None)
        if new_batch is not None:
            new_batch()
        for item in items:
            set_context(partner=item.partner.id, claim=item.claim)  # on every log line
            if item.error is not None:  # refused before it was read
                continue
            try:
                check(item, self.settings, self.stages)
            except HubError as exc:
                item.error = exc
            except Exception as exc:  # a bug must not take the batch down with it
                log.exception("checking %s from %s failed", item.file_name, item.partner.id)
                item.error = HubError(f"internal error while checking: {exc!r}")
        clear_context()

    def record(self, engine: Engine, items: Sequence[Inbound]) -> list[Disposition]:
        """Record a checked batch, and everything it causes, in one transaction."""
        crash_point("after-parse")
        out: list[Disposition] = []
        now = utcnow()
        with stage("apply"), engine.begin() as conn:
            recorded = _recorded(conn, [item.claim for item in items])
            seen = _Accepted.look_up(conn, [i for i in items if i.claim not in recorded])
            for item in items:
                set_context(
                    partner=item.partner.id, claim=item.claim, guid=item.guid, stage="apply"
                )
                out.append(self._record_one(conn, item, now, recorded.get(item.claim), seen))
            crash_point("in-transaction")
        clear_context()
        count_messages(out)  # after the commit: only outcomes that happened
        for d in out:  # one log line per message, with its guid, partner and claim
            i = d.inbound
            ids = {"guid": i.guid, "partner": i.partner.id, "claim": i.claim, "stage": "done"}
            log.info("%s %s %s", i.type_name, d.state, d.reason[:300], extra=ids)
        return out

    def _record_one(
        self, conn: Connection, item: Inbound, now: datetime, earlier, seen: _Accepted
    ) -> Disposition:
        if earlier is not None:  # recorded before a crash: finish the file, nothing else
            return Disposition(item, MessageState(earlier.state), earlier.return_info or "")
        try:
            done = self._apply_isolated(conn, item, now, seen)
            if done.state == MessageState.ACCEPTED:  # its savepoint is released: it counts
                seen.add(item)
            return done
        except Exception as exc:
            if _transient(exc):
                # A deadlock or a lock that could not be had says nothing about the message:
                # the batch's transaction fails, and the batch is recorded in a later round.
                raise
            if _integrity_error(conn, exc):
                # Another worker recovered the same claim and recorded it first (its insert
                # committed while ours waited on the unique claim): finish the file like a
                # restart would. Any other constraint failure is a bug, answered as below.
                earlier = _recorded(conn, [item.claim]).get(item.claim)
                if earlier is not None:
                    log.info("%s was recorded by another worker; finishing it", item.claim)
                    state = MessageState(earlier.state)
                    return Disposition(item, state, earlier.return_info or "")
            log.exception("applying %s from %s failed", item.file_name, item.partner.id)
            item.error = HubError(f"internal error while applying: {exc!r}")
            with savepoint(conn):
                return self._reject(conn, item, now)

    def _insert_message(
        self,
        conn: Connection,
        item: Inbound,
        now: datetime,
        state: MessageState,
        status: str | None,
        info: str,
    ) -> int:
        return _INSERT_MESSAGE.scalar(
            conn,
            dict(
                partner_id=item.partner.id,
                claim=item.claim,
                file_name=item.file_name,
                sha256=item.sha256,
                size=item.size,
                msg_type=item.type_name,
                guid=_stored_guid(item),
                cop_msg_id=item.envelope.cop_msg_id if item.envelope else None,
                schema_set=SCHEMA_SET_ID if state != MessageState.REJECTED else None,
                state=state,
                return_status=status,
                return_info=info[:4000],
                signed_by=item.signed_by,
                received_at=item.received_at,
                processed_at=now,
                body=item.body if state != MessageState.REJECTED else None,
            ),
        )

    def _apply_isolated(
        self, conn: Connection, item: Inbound, now: datetime, seen: _Accepted
    ) -> Disposition:
        """`_apply` in the message's savepoint.

        A message of one record needs no second savepoint for it: if that record is refused,
        the message's savepoint is rolled back and the message recorded again with the
        refusal, which leaves exactly what a record savepoint would have left (the message
        row and its receipts, none of the record's writes). Refusals are rare; the common
        case saves a SAVEPOINT and a RELEASE per message.
        """
        try:
            with savepoint(conn):
                return self._apply(conn, item, now, seen)
        except _RefusedAlone as refused:
            with savepoint(conn):
                return self._apply(conn, item, now, seen, refusal=refused.error)

    def _apply(
        self,
        conn: Connection,
        item: Inbound,
        now: datetime,
        seen: _Accepted,
        refusal: RecordRejected | None = None,
    ) -> Disposition:
        if item.error is not None:
            return self._reject(conn, item, now)
        assert item.msg_type is not None and item.readable
        duplicate = seen.find(item)
        if duplicate is not None:
            return self._duplicate(conn, item, now, duplicate)
        message_id = self._insert_message(conn, item, now, MessageState.ACCEPTED, None, "")
        records = item.extracted()
        handler = HANDLERS[item.msg_type.root]
        ctx = ApplyContext(
            conn=conn, message_id=message_id, partner=item.partner, now=now, router=self.router,
            subscriptions=item.subscriptions, message_guid=_stored_guid(item),
            message_body=item.body,
        )  # fmt: skip
        # count_stage has already refused a message over the record limit.
        if refusal is not None:  # the only record was refused the first time round
            outcomes = [(records[0], self._refused(handler, records[0], refusal))]
        elif len(records) == 1:
            try:
                outcomes = [(records[0], handler.apply(ctx, records[0]))]
            except RecordRejected as exc:
                raise _RefusedAlone(exc) from exc
        else:
            outcomes = [(r, self._apply_record(conn, handler, ctx, r)) for r in records]
        on_documents(ctx, item.msg_type.root, [r for r, o in outcomes if o.accepted])
        writes = _Writes()
        self._answer(conn, item, message_id, outcomes, now, writes)
        if any(o.accepted for _, o in outcomes):
            self.router.route_copies(conn, item, message_id, now, writes.deliveries)
        self._write(conn, writes)
        return Disposition(item, MessageState.ACCEPTED)

    def _write(self, conn: Connection, writes: _Writes) -> None:
        """A message's receipts rows, then its delivery rows: one statement each."""
        if writes.receipts:
            _INSERT_RECEIPTS.execute_many(conn, writes.receipts)
        self.router.flush(conn, writes.deliveries)

    @staticmethod
    def _refused(handler, record: rec.Record, error: RecordRejected) -> RecordOutcome:
        keys = {n: record.get(n) for n in handler.msg_type.receipt_keys}
        return RecordOutcome(statuses=[(error.return_status, error.return_info)], receipt_keys=keys)

    def _apply_record(
        self, conn: Connection, handler, ctx: ApplyContext, record: rec.Record
    ) -> RecordOutcome:
        try:
            with savepoint(conn):
                return handler.apply(ctx, record)
        except RecordRejected as exc:
            return self._refused(handler, record, exc)

    def _answer(
        self,
        conn: Connection,
        item: Inbound,
        message_id: int,
        outcomes: list[tuple[rec.Record, RecordOutcome]],
        now: datetime,
        writes: _Writes,
    ) -> None:
        """The records' statuses in one receipt, step by step: every record's first status,
        then every second one (an order is 2 then 120); a receipt holds at most
        `RECEIPT_ENTRIES`, so a message of more records' statuses is answered in several."""
        assert item.msg_type is not None
        depth = max((len(o.statuses) for _, o in outcomes), default=0)
        entries, refs = [], []
        for step in range(depth):
            for record, outcome in outcomes:
                if step < len(outcome.statuses):
                    status, info = outcome.statuses[step]
                    entries.append(
                        ReceiptEntry(
                            status,
                            info,
                            outcome.receipt_keys,
                            guid=record.get("guid") or item.guid or "",
                        )
                    )
                    refs.append(outcome)
        for start in range(0, len(entries), RECEIPT_ENTRIES):
            part = slice(start, start + RECEIPT_ENTRIES)
            receipt = build_receipt(item.msg_type, entries[part], when=now)
            self._store_receipt(conn, item, message_id, receipt, refs[part], now, writes)

    def _store_receipt(
        self,
        conn: Connection,
        item: Inbound,
        message_id: int | None,
        receipt: Receipt,
        refs: list[RecordOutcome | None],
        now: datetime,
        writes: _Writes,
    ) -> None:
        """Collect a receipt's rows and its delivery rows; `_write` inserts them."""
        table = item.msg_type.table if item.msg_type else None
        rows = writes.receipts
        for entry, ref in zip(receipt.entries, refs, strict=True):
            rows.append(
                receipt_row(
                    receipt,
                    entry,
                    partner_id=item.partner.id,
                    message_id=message_id,
                    record_table=table if ref is not None and ref.record_id else None,
                    record_id=ref.record_id if ref is not None else None,
                    record_key="|".join(v for v in entry.keys.values() if v),
                    record_guid=entry.guid[:36] or None,
                    when=now,
                )
            )
        self.router.send_receipt(conn, item, message_id, receipt, now, writes.deliveries)

    def _reject(self, conn: Connection, item: Inbound, now: datetime) -> Disposition:
        error = item.error or HubError("rejected")
        info = error.return_info
        message_id = self._insert_message(
            conn, item, now, MessageState.REJECTED, error.return_status, info
        )
        if isinstance(error, MessageRejected) and item.readable:
            assert item.msg_type is not None
            records = item.extracted() or [rec.Record(1, {})]
            entries = [
                ReceiptEntry(
                    error.return_status,
                    info,
                    {n: r.get(n) for n in item.msg_type.receipt_keys},
                    guid=r.get("guid") or item.guid or "",
                )
                for r in records
            ]
            # A receipt holds at most 100 entries: a too-many message is answered in several.
            writes = _Writes()
            for start in range(0, len(entries), MAX_RECORDS_PER_MESSAGE):
                part = entries[start : start + MAX_RECORDS_PER_MESSAGE]
                receipt = build_receipt(item.msg_type, part, when=now)
                none = [None] * len(part)
                self._store_receipt(conn, item, message_id, receipt, none, now, writes)
            self._write(conn, writes)
            return Disposition(item, MessageState.REJECTED, f"{error.return_status} {info}")
        receipt = build_format_receipt(
            error.return_status,
            info,
            ori_cop_msg_id=item.cop_msg_id,
            ori_message_type=item.type_name,
            when=now,
        )
        writes = _Writes()
        none = [None] * len(receipt.entries)
        self._store_receipt(conn, item, message_id, receipt, none, now, writes)
        self._write(conn, writes)
        return Disposition(item, MessageState.REJECTED, f"{error.return_status} {info}")

    def _duplicate(self, conn: Connection, item: Inbound, now: datetime, earlier) -> Disposition:
        assert item.msg_type is not None and item.readable
        info = f"duplicate of message {item.guid} already received at {earlier.received_at:%Y-%m-%d %H:%M:%S}; no effect"
        message_id = self._insert_message(
            conn, item, now, MessageState.DUPLICATE, item.msg_type.codes.exists, info
        )
        records = item.extracted()
        entries = [
            ReceiptEntry(
                item.msg_type.codes.exists,
                info,
                {n: r.get(n) for n in item.msg_type.receipt_keys},
                guid=r.get("guid") or item.guid or "",
            )
            for r in records
        ]
        receipt = build_receipt(item.msg_type, entries, when=now)
        writes = _Writes()
        self._store_receipt(conn, item, message_id, receipt, [None] * len(entries), now, writes)
        self._write(conn, writes)
        return Disposition(item, MessageState.DUPLICATE, info)


# Run once or more per message: compiled once, run on the DBAPI cursor.
_INSERT_MESSAGE = Prepared(insert(messages).returning(messages.c.id))
_INSERT_RECEIPTS = Prepared(insert(receipts))


def _stored_guid(item: Inbound) -> str | None:
    """The guid as the messages row keeps it."""
    return (item.guid or "")[:64] or None


# Built once with bound parameters, so SQLAlchemy compiles each a single time.
_ACCEPTED = select(
    messages.c.id,
    messages.c.received_at,
    messages.c.partner_id,
    messages.c.msg_type,
    messages.c.guid,
).where(messages.c.state == MessageState.ACCEPTED)
# Served by the partial unique index ux_messages_accepted_guid.
_SAME_GUID = ByDialect(
    lambda dialect: _ACCEPTED.where(
        messages.c.partner_id == bindparam("partner_id"),
        messages.c.msg_type == bindparam("msg_type"),
        in_values(messages.c.guid, "guids", dialect),
    )
)
_RECORDED = ByDialect(
    lambda dialect: select(messages.c.claim, messages.c.state, messages.c.return_info).where(
        in_values(messages.c.claim, "claims", dialect)
    )
)
CLAIM_LOOKUP_CHUNK = 500  # claims (or guids) per look-up


class _RefusedAlone(Exception):
    """The only record of a message was refused: roll the message back, record the refusal."""

    def __init__(self, error: RecordRejected) -> None:
        super().__init__(error.return_info)
        self.error = error


@dataclass
class _Writes:
    """A message's receipts rows and delivery rows, inserted together at its end."""

    receipts: list[dict] = field(default_factory=list)
    deliveries: list = field(default_factory=list)  # routing.Queued


@dataclass(frozen=True)
class _Earlier:
    """An accepted message a new one may duplicate."""

    id: int | None
    received_at: datetime


@dataclass
class _Accepted:
    """The partners' accepted messages a batch may duplicate, by partner, type and guid.

    Read for the whole batch in a few queries, then kept up to date as the batch's own
    messages are accepted: the same answers as one look-up per message inside the transaction.
    The same bytes again are found this way too: an accepted message passed the XSD, which
    requires its root's guid, so the same bytes carry the same type and guid.
    """

    by_guid: dict[tuple[str, str, str], _Earlier] = field(default_factory=dict)

    @classmethod
    def look_up(cls, conn: Connection, items: Sequence[Inbound]) -> _Accepted:
        found = cls()
        groups: dict[tuple[str, str], set[str]] = {}
        for i in items:
            if i.error is None and i.msg_type is not None and i.guid:
                groups.setdefault((i.partner.id, i.type_name), set()).add(i.guid)
        rows = []
        same_guid = _SAME_GUID(conn)
        for (partner_id, msg_type), guids in groups.items():
            ordered = sorted(guids)
            for start in range(0, len(ordered), CLAIM_LOOKUP_CHUNK):
                chunk = values_param(conn, ordered[start : start + CLAIM_LOOKUP_CHUNK])
                params = {"partner_id": partner_id, "msg_type": msg_type, "guids": chunk}
                rows += same_guid.all(conn, params)
        for row in sorted(rows, key=lambda r: r.id):  # the first recorded wins, as LIMIT 1 did
            found._remember(row.partner_id, row.msg_type, row.guid, row)
        return found

    def _remember(self, partner: str, msg_type: str, guid: str | None, row) -> None:
        if guid:
            self.by_guid.setdefault((partner, msg_type, guid), _Earlier(row.id, row.received_at))

    def find(self, item: Inbound) -> _Earlier | None:
        """An accepted message of the partner with the same type and guid."""
        if not item.guid:
            return None
        return self.by_guid.get((item.partner.id, item.type_name, item.guid))

    def add(self, item: Inbound) -> None:
        """A message of this batch was just accepted (stored guid as the message row has it)."""
        stored_guid = (item.guid or "")[:64] or None
        earlier = _Earlier(None, item.received_at)
        self._remember(item.partner.id, item.type_name, stored_guid, earlier)


def _integrity_error(conn: Connection, exc: Exception) -> bool:
    """A constraint refused a write: through Core (SQLAlchemy's wrapper) or a `Prepared`
    statement (the driver's own exception)."""
    return isinstance(exc, (IntegrityError, conn.dialect.loaded_dbapi.IntegrityError))


# PostgreSQL: deadlock_detected, serialization_failure, lock_not_available; SQLite: busy.
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
TRANSIENT_SQLITE = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})


def _transient(exc: BaseException) -> bool:
    """A database error that another try may not meet (the driver's own, or SQLAlchemy's)."""
    error = getattr(exc, "orig", None) or exc
    return (
        getattr(error, "sqlstate", None) in TRANSIENT_SQLSTATES
        or getattr(error, "sqlite_errorname", None) in TRANSIENT_SQLITE
    )


def _recorded(conn: Connection, claims: Sequence[str]) -> dict:
    """The rows already recorded for these claims (a restart, or another worker), by claim."""
    found = {}
    recorded = _RECORDED(conn)
    for start in range(0, len(claims), CLAIM_LOOKUP_CHUNK):
        chunk = values_param(conn, claims[start : start + CLAIM_LOOKUP_CHUNK])
        found.update((row.claim, row) for row in recorded.all(conn, {"claims": chunk}))
    return found
