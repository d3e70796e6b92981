"""The clearance sweep the runner calls each round: 2 → 3 once delivered, and waits that ran out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, Engine, bindparam, or_, select

from hub import metrics
from hub.clearance.guarantee import DeferredDebits, GuaranteeMoved
from hub.clearance.lifecycle import (
    Desk,
    Pending,
    move,
    send_receipt,
    update_list,
)
from hub.clearance.lifecycle import log as log_step
from hub.clearance.review import review
from hub.clearance.states import ListState
from hub.clearance.tables import lists
from hub.clock import utcnow
from hub.codes import Status
from hub.routing import Router
from hub.store.db import reading
from hub.store.prepared import Prepared, savepoint
from hub.store.states import DeliveryState
from hub.store.tables import deliveries

log = logging.getLogger(__name__)

CHUNK = 100  # lists per transaction; each list in its own savepoint
Step = Callable[[Desk, int], int]  # what the sweep does with one list: 1 if it looked at it


def _route_copies(*conds):
    """Whether the list has a routed copy (deliveries of its route message) meeting `conds`."""
    return (
        select(deliveries.c.id)
        .where(
            deliveries.c.message_id == lists.c.route_message_id,
            deliveries.c.kind == "route",
            *conds,
        )
        .exists()
    )


_UNDELIVERED = _route_copies(deliveries.c.state != DeliveryState.DELIVERED)
# Only the declared lists whose routed copies are all out: the others would be read and
# passed over every round. `_sent` checks again inside its transaction.
_DECLARED = Prepared(
    select(lists.c.id)
    .where(lists.c.state == ListState.DECLARED, ~_UNDELIVERED)
    .order_by(lists.c.id)
)
_FAILED = Prepared(
    select(lists.c.id)
    .where(
        lists.c.state == ListState.DECLARED,
        _route_copies(deliveries.c.state == DeliveryState.DEAD),
        lists.c.return_status != Status.SEND_FAILED,
    )
    .order_by(lists.c.id)
)
_OVERDUE = Prepared(
    select(lists.c.id)
    .where(
        lists.c.state == ListState.SENT,
        or_(lists.c.waiting_since.is_(None), lists.c.waiting_since <= bindparam("deadline")),
    )
    .order_by(lists.c.id)
)
# The list and, in the same read, whether its routed copies are all out (`route_delivered`:
# true without a route message or without copies). Every step locks the list it reads, and
# passes over one another worker holds (PostgreSQL: SKIP LOCKED; SQLite has one writer):
# two workers sweeping the same lists would otherwise wait on each other's list rows while
# holding the guarantee row, which PostgreSQL ends as a deadlock, one second a list.
_DECLARED_LIST = Prepared(
    select(lists, (~_UNDELIVERED).label("copies_out"))
    .where(lists.c.id == bindparam("list_id"))
    .with_for_update(of=lists, skip_locked=True)
)
_LIST = Prepared(
    select(lists).where(lists.c.id == bindparam("list_id")).with_for_update(skip_locked=True)
)


def sweep(
    engine: Engine,
    router: Router,
    root: Path | None = None,
    *,
    first: Callable[[Connection], Callable[[], object]] | None = None,
) -> int:
    """Move what time or a delivery has unblocked; returns how many lists were looked at.

    `first` runs at the start of the sweep's first transaction, before the look-ups (the
    runner marks there the files its delivery thread wrote: one commit a round fewer); what
    it returns is called once that transaction has committed.
    """
    now = utcnow()
    deadline = now - timedelta(seconds=router.settings.clearance.wait_seconds)
    moved: list[tuple[str, str | None]] = []  # a transaction's moves, counted once it commits
    if first is None:
        with reading(engine) as conn:
            chunks = _chunks(conn, deadline)
        done = 0
    else:
        with engine.begin() as conn:
            committed = first(conn)
            chunks = _chunks(conn, deadline)
            done = _sweep_chunk(conn, router, root, *chunks.pop(0), moved) if chunks else 0
        committed()
        _count(moved)
    for ids, step in chunks:
        with engine.begin() as conn:
            done += _sweep_chunk(conn, router, root, ids, step, moved)
        _count(moved)
    return done


def _count(moved: list[tuple[str, str | None]]) -> None:
    metrics.lists_moved(moved)
    moved.clear()


def _chunks(conn: Connection, deadline: datetime) -> list[tuple[list[int], Step]]:
    """The lists to look at, by step, in transactions of `CHUNK` lists."""
    declared = [r.id for r in _DECLARED.all(conn)]
    failed = [r.id for r in _FAILED.all(conn)]
    overdue = [r.id for r in _OVERDUE.all(conn, {"deadline": deadline})]
    return [
        (ids[start : start + CHUNK], step)
        for ids, step in ((declared, _sent), (failed, _send_failed), (overdue, _review))
        for start in range(0, len(ids), CHUNK)
    ]


def _sweep_chunk(
    conn: Connection,
    router: Router,
    root: Path | None,
    ids: list[int],
    step: Step,
    moved: list[tuple[str, str | None]],
) -> int:
    """The lists' steps, their guarantee debits taken at the end (`DeferredDebits`); if a
    guarantee was drawn on meanwhile and no longer covers them, the steps are done again
    with each debit made at once (and the first attempt's moves are not counted)."""
    mark = len(moved)
    try:
        with savepoint(conn, "clearance_chunk"):
            return _steps(conn, router, root, ids, step, DeferredDebits(), moved)
    except GuaranteeMoved as drawn:
        del moved[mark:]
        log.info("guarantee %s was drawn on during the sweep; its lists are done again", drawn)
        return _steps(conn, router, root, ids, step, None, moved)


def _steps(
    conn: Connection,
    router: Router,
    root: Path | None,
    ids: list[int],
    step: Step,
    deferred: DeferredDebits | None,
    moved: list[tuple[str, str | None]],
) -> int:
    # A list's log, receipt and delivery rows go in one statement per table.
    desk = Desk(
        conn, router, utcnow(), actor="hub", root=root, pending=Pending(), deferred=deferred,
        moved=moved,
    )  # fmt: skip
    done = 0
    for list_id in ids:
        try:
            with savepoint(conn, "clearance_sweep"):
                done += step(desk, list_id)
                desk.flush()
        except Exception:  # one bad list must not hold up the others
            desk.discard()  # its savepoint is rolled back: so are its rows
            log.exception("clearance sweep failed for list %s", list_id)
    if deferred is not None:
        deferred.apply(conn, desk.now)
    return done


def _sent(desk: Desk, list_id: int) -> int:
    row = _DECLARED_LIST.first(desk.conn, {"list_id": list_id})
    if row is None or row.state != ListState.DECLARED or not row.copies_out:
        return 0  # another worker has it, or moved it on already
    # The move to 3 is written with the review's moves: one UPDATE of the list.
    sent = move(desk, row, ListState.SENT, info="发送海关成功", write=False)
    review(desk, sent, stored=row)
    return 1


def _send_failed(desk: Desk, list_id: int) -> int:
    """A routed copy was dead-lettered: tell the agent (4) once; a resend picks it up again."""
    row = _LIST.first(desk.conn, {"list_id": list_id})
    if row is None or row.state != ListState.DECLARED or row.return_status == Status.SEND_FAILED:
        return 0
    error = desk.conn.execute(
        select(deliveries.c.partner_id, deliveries.c.last_error)
        .where(
            deliveries.c.message_id == row.route_message_id,
            deliveries.c.kind == "route",
            deliveries.c.state == DeliveryState.DEAD,
        )
        .limit(1)
    ).first()
    if error is None:
        return 0
    info = f"发送海关失败: delivery to {error.partner_id} failed: {error.last_error or 'unknown'}"
    # The list stays declared: a `cebhub resend` of the copy moves it on to sent (3).
    log_step(desk, row.id, ListState.DECLARED, ListState.DECLARED, Status.SEND_FAILED, info[:1000])
    row = update_list(
        desk.conn,
        row.id,
        {"return_status": Status.SEND_FAILED, "return_info": info[:1000], "updated_at": desk.now},
    )
    send_receipt(desk, row, Status.SEND_FAILED, info)
    return 1


def _review(desk: Desk, list_id: int) -> int:
    row = _LIST.first(desk.conn, {"list_id": list_id})
    if row is None or row.state != ListState.SENT:
        return 0
    after = review(desk, row)
    return int(after.state != ListState.SENT)
