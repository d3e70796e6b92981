"""The transactional outbox: delivery rows written in the same transaction as their cause."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert

from hub.store.states import DeliveryState
from hub.store.tables import deliveries


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
) -> int:
    """Record a file to deliver to a partner; written out only after the commit."""
    result = conn.execute(
        insert(deliveries).values(
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
    )
    return result.inserted_primary_key[0]
