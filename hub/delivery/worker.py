"""The delivery worker: writes committed delivery rows through their partner's transport."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Protocol

from sqlalchemy import Engine, select, update

from hub.clock import utcnow
from hub.config import DeliverySettings
from hub.delivery.backoff import retry_delay
from hub.faults import crash_point
from hub.store.states import DeliveryState
from hub.store.tables import deliveries

log = logging.getLogger(__name__)

BATCH = 500  # rows fetched per round


class Sink(Protocol):
    """A transport that can put a file where a partner will find it."""

    def deliver(self, partner_id: str, file_name: str, body: bytes) -> None: ...

    def flush(self) -> None:
        """Make the round's writes durable (one fsync per folder, not per file)."""


class TransportError(Exception):
    """A delivery attempt failed; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def due_ids(engine: Engine, limit: int = BATCH) -> list[int]:
    now = utcnow()
    q = (
        select(deliveries.c.id)
        .where(deliveries.c.state == DeliveryState.PENDING, deliveries.c.next_attempt_at <= now)
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return list(conn.execute(q).scalars())


def deliver_due(
    engine: Engine, sinks: Mapping[str, Sink], default: Sink, policy: DeliverySettings
) -> int:
    """Attempt every due delivery once; returns how many were attempted."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                deliveries.c.id,
                deliveries.c.partner_id,
                deliveries.c.file_name,
                deliveries.c.body,
                deliveries.c.attempts,
            )
            .where(
                deliveries.c.state == DeliveryState.PENDING,
                deliveries.c.next_attempt_at <= utcnow(),
            )
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(BATCH)
        ).all()
    if not rows:
        return 0
    done: list[int] = []
    failed: list[tuple[int, int, str, bool]] = []
    used: set[int] = set()
    broken: dict[str, str] = {}  # a partner whose transport failed this round is skipped
    for row in rows:
        sink = sinks.get(row.partner_id, default)
        if row.partner_id in broken:
            failed.append((row.id, row.attempts, broken[row.partner_id], True))
            continue
        try:
            crash_point("during-delivery")
            sink.deliver(row.partner_id, row.file_name, row.body)
            used.add(id(sink))
            done.append(row.id)
        except TransportError as exc:
            log.warning("delivery %s to %s failed: %s", row.file_name, row.partner_id, exc)
            broken[row.partner_id] = str(exc)
            failed.append((row.id, row.attempts, str(exc), exc.retryable))
        except OSError as exc:
            log.warning("delivery %s to %s failed: %s", row.file_name, row.partner_id, exc)
            broken[row.partner_id] = str(exc)
            failed.append((row.id, row.attempts, str(exc), True))
    for sink in {id(s): s for s in (*sinks.values(), default)}.values():
        if id(sink) in used:
            sink.flush()
    crash_point("after-delivery-write")
    _record(engine, done, failed, policy)
    return len(rows)


def _record(
    engine: Engine,
    done: list[int],
    failed: list[tuple[int, int, str, bool]],
    policy: DeliverySettings,
) -> None:
    now = utcnow()
    with engine.begin() as conn:
        if done:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id.in_(done))
                .values(
                    state=DeliveryState.DELIVERED,
                    delivered_at=now,
                    attempts=deliveries.c.attempts + 1,
                    last_error=None,
                )
            )
        for delivery_id, attempts, error, retryable in failed:
            attempt = attempts + 1
            dead = attempt >= policy.max_attempts or not retryable
            wait = retry_delay(attempt, policy.backoff_seconds, policy.backoff_cap_seconds)
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(
                    attempts=attempt,
                    last_error=error[:2000],
                    state=DeliveryState.DEAD if dead else DeliveryState.PENDING,
                    next_attempt_at=now + timedelta(seconds=wait),
                )
            )
