"""The transactional outbox: delivery rows written in the same transaction as their cause."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from hub.store.states import DeliveryState
from hub.store.tables import deliveries

# Built once: the same statement object each time lets SQLAlchemy reuse its compiled form.
# A taken (partner, file name) inserts nothing instead of failing the transaction; the caller
# then picks another name. The unique index stays the guard, also between concurrent workers.
_INSERT = {
    "sqlite": sqlite.insert(deliveries).on_conflict_do_nothing().returning(deliveries.c.id),
    "postgresql": postgresql.insert(deliveries).on_conflict_do_nothing().returning(deliveries.c.id),
}
# Several rows in one statement (SQLAlchemy's "insertmanyvalues": one multi-row INSERT);
# the rows that went in come back by (partner, file name), since a taken name returns none.
_INSERT_MANY = {
    name: stmt.returning(deliveries.c.partner_id, deliveries.c.file_name)
    for name, stmt in (
        ("sqlite", sqlite.insert(deliveries).on_conflict_do_nothing()),
        ("postgresql", postgresql.insert(deliveries).on_conflict_do_nothing()),
    )
}


def file_name_for(msg_type: str, guid: str) -> str:
    """Deterministic outbound name: a re-delivery overwrites, never duplicates."""
    return f"{msg_type}_{guid}.xml"


def delivery_row(
    *,
    partner_id: str,
    kind: str,
    msg_type: str,
    guid: str,
    body: bytes,
    message_id: int | None,
    now: datetime,
) -> dict:
    """The deliveries row of one file to send, pending from `now`."""
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
    """Insert `delivery_row`s in one statement; per row, whether it went in.

    A row whose (partner, file name) is taken — before, or by an earlier row of the same
    call — is not inserted, exactly as `enqueue` returning None.
    """
    if not rows:
        return []
    if len(rows) == 1:
        return [enqueue_row(conn, rows[0]) is not None]
    inserted = {tuple(r) for r in conn.execute(_INSERT_MANY[conn.dialect.name], rows)}
    out = []
    for row in rows:
        key = (row["partner_id"], row["file_name"])
        out.append(key in inserted)
        inserted.discard(key)  # a second row with the same name was the one skipped
    return out


def enqueue_row(conn: Connection, row: dict) -> int | None:
    """Insert one `delivery_row`; its id, or None when the name is taken."""
    return conn.execute(_INSERT[conn.dialect.name], row).scalar()


def enqueue(
    conn: Connection,
    *,
    partner_id: str,
    kind: str,
    msg_type: str,
    guid: str,
    body: bytes,
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
