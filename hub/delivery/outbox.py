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


def file_name_for(msg_type: str, guid: str) -> str:
    """Deterministic outbound name: a re-delivery overwrites, never duplicates."""
    return f"{msg_type}_{guid}.xml"


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
    row = dict(
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
    return conn.execute(_INSERT[conn.dialect.name], row).scalar()
