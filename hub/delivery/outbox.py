"""The transactional outbox: delivery rows written in the same transaction as their cause."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Select, bindparam, func, select

from hub.store.prepared import CONFLICT_DIALECTS, Prepared
from hub.store.states import DeliveryState
from hub.store.tables import deliveries, messages

# A route copy without an envelope is its message exactly as stored: the row keeps body NULL
# and refers to the message by `message_id`, so the bytes are in the database once, not three
# times. Whatever reads a delivery's bytes reads BODY from WITH_MESSAGE (`select_with_body`).
BODY = func.coalesce(deliveries.c.body, messages.c.body).label("body")
WITH_MESSAGE = deliveries.outerjoin(messages, messages.c.id == deliveries.c.message_id)

# A taken (partner, file name) inserts nothing instead of failing the transaction; the caller
# then picks another name. The unique index stays the guard, also between concurrent workers.
_INSERT = {
    name: Prepared(d.insert(deliveries).on_conflict_do_nothing().returning(deliveries.c.id))
    for name, d in CONFLICT_DIALECTS.items()
}
# The columns of a `delivery_row`, in its order.
_COLUMNS = (
    "partner_id", "kind", "msg_type", "guid", "file_name", "body", "state", "attempts",
    "next_attempt_at", "message_id", "created_at",
)  # fmt: skip
# Several rows in one multi-row INSERT (as SQLAlchemy's "insertmanyvalues" did), compiled
# once per dialect and row count: one statement a message for its usual two to five files.
MANY_ROWS = 8
_NAMES = [tuple((f"{c}_{i}", c) for c in _COLUMNS) for i in range(MANY_ROWS)]  # row i's binds
_INSERT_MANY: dict[tuple[str, int], Prepared] = {}


def select_with_body(*columns: ColumnElement) -> Select:
    """`columns` of deliveries and the delivery's bytes as `body`, its own or its message's."""
    return select(*columns, BODY).select_from(WITH_MESSAGE)


def file_name_for(msg_type: str, guid: str) -> str:
    """Deterministic outbound name: a re-delivery overwrites, never duplicates."""
    return f"{msg_type}_{guid}.xml"


def delivery_row(
    *,
    partner_id: str,
    kind: str,
    msg_type: str,
    guid: str,
    body: bytes | None,
    message_id: int | None,
    now: datetime,
) -> dict:
    """The deliveries row of one file to send, pending from `now`.

    `body` None: the file is exactly the stored body of message `message_id`.
    """
    if body is None and message_id is None:
        raise ValueError("a delivery without a body of its own needs the message it copies")
    return dict(
        partner_id=partner_id,
        kind=kind,
        msg_type=msg_type,
        guid=guid,
        file_name=file_name_for(msg_type, guid),
        body=body,
        state=DeliveryState.PENDING,
        attempts=0,
        next_attempt_at=now,
        message_id=message_id,
        created_at=now,
    )


def enqueue_many(conn: Connection, rows: list[dict]) -> list[bool]:
    """Insert `delivery_row`s, up to `MANY_ROWS` in a statement; per row, whether it went in.

    A row whose (partner, file name) is taken — before, or by an earlier row of the same
    call — is not inserted, exactly as `enqueue` returning None.
    """
    if not rows:
        return []
    if len(rows) == 1:
        return [enqueue_row(conn, rows[0]) is not None]
    inserted: set[tuple[str, str]] = set()
    for start in range(0, len(rows), MANY_ROWS):
        part = rows[start : start + MANY_ROWS]
        binds = zip(part, _NAMES[: len(part)], strict=True)
        params = {name: row[k] for row, names in binds for name, k in names}
        inserted.update(
            tuple(r) for r in _insert_many(conn.dialect.name, len(part)).all(conn, params)
        )
    out = []
    for row in rows:
        key = (row["partner_id"], row["file_name"])
        out.append(key in inserted)
        inserted.discard(key)  # a second row with the same name was the one skipped
    return out


def enqueue_row(conn: Connection, row: dict) -> int | None:
    """Insert one `delivery_row`; its id, or None when the name is taken."""
    return _INSERT[conn.dialect.name].scalar(conn, row)


def _insert_many(dialect: str, count: int) -> Prepared:
    """`count` rows in one INSERT; the rows that went in come back by (partner, file name),
    since a taken name returns none."""
    stmt = _INSERT_MANY.get((dialect, count))
    if stmt is None:
        values = [
            {c: bindparam(name, type_=deliveries.c[c].type) for name, c in names}
            for names in _NAMES[:count]
        ]
        insert = (
            CONFLICT_DIALECTS[dialect].insert(deliveries).values(values).on_conflict_do_nothing()
        )
        stmt = Prepared(insert.returning(deliveries.c.partner_id, deliveries.c.file_name))
        _INSERT_MANY[(dialect, count)] = stmt
    return stmt


def enqueue(
    conn: Connection,
    *,
    partner_id: str,
    kind: str,
    msg_type: str,
    guid: str,
    body: bytes | None,
    message_id: int | None,
    now: datetime,
) -> int | None:
    """Record a file to deliver to a partner; written out only after the commit.

    Returns the row's id, or None when the partner already has a file of that name.
    """
    row = delivery_row(
        partner_id=partner_id, kind=kind, msg_type=msg_type, guid=guid, body=body,
        message_id=message_id, now=now,
    )  # fmt: skip
    return enqueue_row(conn, row)
