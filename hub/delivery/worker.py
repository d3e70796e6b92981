"""The delivery worker: writes committed delivery rows through their partner's transport."""

from __future__ import annotations

import logging
import threading
from collections import namedtuple
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import ColumnElement, Connection, Engine, bindparam, func, select, update

from hub import metrics
from hub.clock import utcnow
from hub.config import DeliverySettings
from hub.delivery.backoff import retry_delay
from hub.delivery.outbox import select_with_body
from hub.faults import crash_point
from hub.store.db import reading
from hub.store.logsync import sync_log
from hub.store.prepared import ByDialect, in_values, values_param
from hub.store.states import DeliveryState
from hub.store.tables import deliveries

log = logging.getLogger(__name__)

BATCH = 500  # rows fetched per round


class Sink(Protocol):
    """A transport that can put a file where a partner will find it."""

    def deliver(self, partner_id: str, file_name: str, body: bytes) -> None: ...

    def flush(self) -> dict[tuple[str, str], str] | None:
        """Make the round's writes durable (one sync, not one per file); a sink that writes
        only now returns the (partner id, file name) it could not write, with the reason."""


class TransportError(Exception):
    """A delivery attempt failed; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Handover:
    """Rows a delivery thread wrote to folders, whose outcome another thread records (SQLite).

    On SQLite the delivery thread would otherwise wait for the write lock, held by the hub's
    main thread for a whole batch, to mark what it delivered: a third of its time at
    100,000 messages, while the files behind it piled up. It hands the rows over instead,
    and the main thread marks them delivered in its next transaction. Until then they are
    "in flight": still pending in the table, never fetched again. Only folder deliveries
    are handed over: if the hub stops before they are marked, they are written again under
    the same name, which replaces the file with the same bytes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._written: list[tuple[list[int], datetime]] = []  # (ids, when they were durable)
        self._in_flight: set[int] = set()

    def put(self, ids: list[int], written_at: datetime) -> None:
        with self._lock:
            self._written.append((ids, written_at))
            self._in_flight.update(ids)

    def in_flight(self) -> list[int]:
        with self._lock:
            return list(self._in_flight)

    def record(self, engine: Engine, policy: DeliverySettings) -> int:
        """Mark what was handed over delivered, in a transaction of the caller's thread."""
        mark = self.marking(policy)
        if mark is None:
            return 0
        try:
            with engine.begin() as conn:
                landed = mark(conn)
        except BaseException:
            mark.give_back()
            raise
        return landed()

    def marking(self, policy: DeliverySettings) -> _Marking | None:
        """What was handed over so far, to mark delivered in a transaction of the caller's
        (None if nothing was): after the commit, call what `mark(conn)` returned; if the
        transaction fails, `give_back()` (the next call marks them)."""
        with self._lock:
            written, self._written = self._written, []
        return _Marking(self, written, policy) if written else None

    def _landed(self, written: list[tuple[list[int], datetime]]) -> int:
        with self._lock:
            for ids, _ in written:
                self._in_flight.difference_update(ids)
        return sum(len(ids) for ids, _ in written)

    def _give_back(self, written: list[tuple[list[int], datetime]]) -> None:
        with self._lock:  # still in flight
            self._written[:0] = written


class _Marking:
    """Handed-over rows being marked delivered (`Handover.marking`)."""

    def __init__(
        self,
        handover: Handover,
        written: list[tuple[list[int], datetime]],
        policy: DeliverySettings,
    ) -> None:
        self._handover, self._written, self._policy = handover, written, policy
        self._committed_already = False

    def __call__(self, conn: Connection) -> Callable[[], int]:
        for ids, written_at in self._written:
            _record(conn, ids, [], self._policy, written_at)
        return self._committed

    def _committed(self) -> int:
        self._committed_already = True
        return self._handover._landed(self._written)

    def give_back(self) -> None:
        """The transaction failed: the rows are marked by a later call (none once landed)."""
        if not self._committed_already:
            self._handover._give_back(self._written)


def next_due(conn: Connection, in_flight: list[int] | None = None) -> datetime | None:
    """When the earliest pending delivery that is not in flight comes due."""
    return _NEXT_DUE(conn).scalar(conn, {"in_flight": values_param(conn, in_flight or [])})


def _not_in_flight(dialect: str) -> ColumnElement:
    """Rows not handed over (`in_flight`: their ids)."""
    return ~in_values(deliveries.c.id, "in_flight", dialect)


_NEXT_DUE = ByDialect(
    lambda dialect: select(func.min(deliveries.c.next_attempt_at)).where(
        deliveries.c.state == DeliveryState.PENDING, _not_in_flight(dialect)
    )
)


# A due row as a plain named tuple: each attribute of SQLAlchemy's Row costs an
# AttributeError built and dropped (its generic look-up fails before the key is tried),
# ~2,000 instructions, and the delivery thread read ~9 a file, holding the interpreter lock.
_Due = namedtuple("_Due", "id partner_id file_name attempts body")


def _due_rows(dialect: str):
    q = (
        select_with_body(
            deliveries.c.id,
            deliveries.c.partner_id,
            deliveries.c.file_name,
            deliveries.c.attempts,
        )
        .where(
            deliveries.c.state == DeliveryState.PENDING,
            deliveries.c.next_attempt_at
            <= bindparam("now", type_=deliveries.c.next_attempt_at.type),
            ~in_values(deliveries.c.partner_id, "skip", dialect),
            _not_in_flight(dialect),
        )
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        .limit(bindparam("batch"))
    )
    if dialect == "postgresql":
        # Several workers share the table: each takes rows nobody else holds. Only the
        # deliveries rows are locked, not the messages a routed copy reads its bytes from.
        q = q.with_for_update(skip_locked=True, of=deliveries)
    return q


_DUE = ByDialect(_due_rows)
_DELIVERED = ByDialect(
    lambda dialect: (
        update(deliveries)
        .where(in_values(deliveries.c.id, "ids", dialect))
        .values(
            state=DeliveryState.DELIVERED,
            delivered_at=bindparam("now", type_=deliveries.c.delivered_at.type),
            attempts=deliveries.c.attempts + 1,
            last_error=None,
        )
    )
)


def _due(conn: Connection, skip: frozenset[str], in_flight: list[int] | None = None) -> list:
    """Due rows, oldest first, but those of the partners in `skip` and those in flight."""
    params = {
        "now": utcnow(),
        "batch": BATCH,
        "skip": values_param(conn, sorted(skip)),
        "in_flight": values_param(conn, in_flight or []),
    }
    return [_Due._make(row) for row in _DUE(conn).all(conn, params)]


def deliver_due(
    engine: Engine,
    sinks: Mapping[str, Sink],
    default: Sink,
    policy: DeliverySettings,
    skip: frozenset[str] = frozenset(),
    handover: Handover | None = None,
) -> int:
    """Attempt every due delivery once, except for the partners in `skip` (they pull).

    With `handover` (SQLite), what went to folders is handed over to be recorded elsewhere.
    """
    if engine.dialect.name == "postgresql":
        # The row locks are held until the outcome is recorded, in the same transaction.
        with engine.begin() as conn:
            rows = _due(conn, skip)
            if rows:
                done, failed = _attempt(rows, sinks, default)
                _record(conn, done, failed, policy, utcnow())
            return len(rows)
    with reading(engine) as conn:  # the write lock only to record the outcome
        rows = _due(conn, skip, handover.in_flight() if handover is not None else None)
    if not rows:
        return 0
    sync_log(engine)  # what the rows answer may not be durable yet (the hub's writer)
    done, failed = _attempt(rows, sinks, default)
    written_at = utcnow()  # the files are durable now; the write lock may take a while
    if handover is not None:
        to_folders = {r.id for r in rows if r.partner_id not in sinks}
        handed = [i for i in done if i in to_folders]
        if handed:
            handover.put(handed, written_at)
            done = [i for i in done if i not in to_folders]
    if done or failed:
        with engine.begin() as conn:
            _record(conn, done, failed, policy, written_at)
    return len(rows)


def _attempt(
    rows, sinks: Mapping[str, Sink], default: Sink
) -> tuple[list[int], list[tuple[int, int, str, bool]]]:
    """Write each row through its sink, then flush each sink once: (done ids, failures)."""
    written: dict[int, list] = {}  # id(sink) -> rows it took
    failed: list[tuple[int, int, str, bool]] = []
    broken: dict[str, str] = {}  # a partner whose transport failed this round is skipped
    for row in rows:
        sink = sinks.get(row.partner_id, default)
        if row.partner_id in broken:
            failed.append((row.id, row.attempts, broken[row.partner_id], True))
            continue
        try:
            crash_point("during-delivery")
            sink.deliver(row.partner_id, row.file_name, row.body)
            written.setdefault(id(sink), []).append(row)
        except TransportError as exc:
            log.warning("delivery %s to %s failed: %s", row.file_name, row.partner_id, exc)
            broken[row.partner_id] = str(exc)
            failed.append((row.id, row.attempts, str(exc), exc.retryable))
        except OSError as exc:
            log.warning("delivery %s to %s failed: %s", row.file_name, row.partner_id, exc)
            broken[row.partner_id] = str(exc)
            failed.append((row.id, row.attempts, str(exc), True))
    done: list[int] = []
    for sink in {id(s): s for s in (*sinks.values(), default)}.values():
        taken = written.get(id(sink))
        if not taken:
            continue
        try:
            refused = sink.flush() or {}  # a sink that writes at flush: what it could not
        except (OSError, TransportError) as exc:
            # Nothing of this round is known to be durable there: all of it is tried again.
            log.warning("delivery round failed to flush: %s", exc)
            discard = getattr(sink, "discard", None)
            if discard is not None:
                discard()
            failed.extend((row.id, row.attempts, str(exc), True) for row in taken)
            continue
        for row in taken:
            error = refused.get((row.partner_id, row.file_name))
            if error is None:
                done.append(row.id)
            else:
                log.warning("delivery %s to %s failed: %s", row.file_name, row.partner_id, error)
                failed.append((row.id, row.attempts, error, True))
    crash_point("after-delivery-write")
    return done, failed


def _record(
    conn: Connection,
    done: list[int],
    failed: list[tuple[int, int, str, bool]],
    policy: DeliverySettings,
    now: datetime,
) -> None:
    """The round's outcome; `now` is when it ended, which is when its files were delivered."""
    metrics.delivery("delivered", len(done))
    if done:
        _DELIVERED(conn).execute(conn, {"ids": values_param(conn, done), "now": now})
    for delivery_id, attempts, error, retryable in failed:
        attempt = attempts + 1
        dead = attempt >= policy.max_attempts
        metrics.delivery("dead" if dead else "retry")
        # A refusal that needs a fix on the partner's side (permissions, host key, credentials)
        # is still retried, but at the longest interval: ops can fix it and `cebhub resend`.
        wait = (
            retry_delay(attempt, policy.backoff_seconds, policy.backoff_cap_seconds)
            if retryable
            else policy.backoff_cap_seconds
        )
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
