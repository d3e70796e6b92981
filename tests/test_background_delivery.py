"""The run loops deliver from their own thread: files are written while the next batch is processed."""

from __future__ import annotations

import sys
import threading

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.pool import Pool

from adapters.directory import DirectoryOutbox
from hub import config
from hub.clearance import sweep as sweep_module
from hub.clearance.tables import lists
from hub.delivery.background import Deliverer
from hub.runner import LOCK_SWITCH_SECONDS, Hub
from hub.store.db import reading
from hub.store.tables import deliveries
from tests.clearance_support import db, purchase, send_documents, send_list, set_guarantee
from tests.helpers import dispose_all, drop_orders, statuses


def test_run_once_writes_every_file_from_the_deliverer_and_lists_still_reach_release(
    hub_ws, keys, monkeypatch
):
    doc = config.read_document(hub_ws)
    doc["hub"]["batch_size"] = 2  # several rounds: deliveries overlap later batches
    config.write_document(hub_ws, doc)
    set_guarantee(hub_ws, "100000")
    bought = [purchase(seed) for seed in (11, 12, 13)]
    for p in bought:
        send_documents(hub_ws, keys, [p])
        send_list(hub_ws, keys, [p])

    writers: list[str] = []
    real = DirectoryOutbox.deliver

    def spy(self, partner_id, file_name, body):
        writers.append(threading.current_thread().name)
        return real(self, partner_id, file_name, body)

    monkeypatch.setattr(DirectoryOutbox, "deliver", spy)
    Hub(hub_ws).run_once()

    assert writers and set(writers) == {"deliverer"}
    with db(hub_ws).connect() as conn:
        assert conn.execute(select(lists.c.state)).scalars().all() == ["closed"] * 3
        pending = select(func.count()).where(deliveries.c.state != "delivered")
        assert conn.execute(pending).scalar() == 0
        assert conn.execute(select(func.count()).select_from(deliveries)).scalar() == len(writers)
    # Each list was answered at every step, in order: 2, 3, 120, 399, 800, 899.
    assert sorted(statuses(hub_ws.outbox_of("agent"), "CEB622Message")) == sorted(
        ["2", "3", "120", "399", "800", "899"] * 3
    )


def test_drain_waits_for_a_pass_after_the_kick_and_counts_what_it_attempted():
    rounds = iter([500, 120, 0, 3])  # a full batch asks for another round at once
    seen = []

    def deliver() -> int:
        attempted = next(rounds)
        seen.append(attempted)
        return attempted

    woken = threading.Event()
    deliverer = Deliverer(deliver, on_delivered=woken.set).start()
    try:
        assert deliverer.drain() == 620
        assert seen == [500, 120] and woken.is_set()
        assert deliverer.drain() == 0
        assert deliverer.drain() == 3
    finally:
        deliverer.stop()


def test_a_failed_round_is_logged_and_the_next_kick_tries_again(caplog):
    calls = []

    def deliver() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk full")
        return 2

    deliverer = Deliverer(deliver, on_delivered=lambda: None).start()
    try:
        assert deliverer.drain() == 0
        assert "delivery round failed" in caplog.text
        assert deliverer.drain() == 2
    finally:
        deliverer.stop()


def test_while_batches_keep_coming_the_sweep_waits_its_interval_and_lists_still_close(
    hub_ws, keys, monkeypatch
):
    """A busy hub sweeps at most every SWEEP_WHILE_BUSY_SECONDS (here: never while busy, after
    the first round); the first round without input sweeps, and the lists get to release."""
    from hub import runner

    doc = config.read_document(hub_ws)
    doc["hub"]["batch_size"] = 2
    config.write_document(hub_ws, doc)
    set_guarantee(hub_ws, "100000")
    for p in [purchase(seed) for seed in (21, 22, 23)]:
        send_documents(hub_ws, keys, [p])
        send_list(hub_ws, keys, [p])
    monkeypatch.setattr(runner, "SWEEP_WHILE_BUSY_SECONDS", 3600.0)
    rounds: list[str] = []
    real_claim_all, real_sweep = Hub._claim_all, runner.sweep

    def claim_all(self) -> bool:
        claimed = real_claim_all(self)
        rounds.append("busy" if claimed else "idle")
        return claimed

    def sweep(*args, **kwargs) -> int:
        rounds[-1] += "+sweep"
        return real_sweep(*args, **kwargs)

    monkeypatch.setattr(Hub, "_claim_all", claim_all)
    monkeypatch.setattr(runner, "sweep", sweep)
    Hub(hub_ws).run_once()

    busy = [r for r in rounds if r.startswith("busy")]
    assert len(busy) >= 6  # twelve files, two a batch
    assert busy[0] == "busy+sweep" and set(busy[1:]) == {"busy"}
    assert all(r == "idle+sweep" for r in rounds if r.startswith("idle"))
    with db(hub_ws).connect() as conn:
        assert conn.execute(select(lists.c.state)).scalars().all() == ["closed"] * 3


def _one_order(ws, keys):
    from tests.helpers import drop_orders

    drop_orders(ws, keys, 1)
    hub = Hub(ws)
    hub.process_claims(hub.inbox.claim(10))  # recorded: a receipt and two copies pending
    return hub


def _outbox_files(ws) -> int:
    from tests.helpers import files

    return len(files(ws.outbox, "*/*.xml"))


def _states(ws) -> list[str]:
    with reading(db(ws)) as conn:  # does not wait for a writer
        return conn.execute(select(deliveries.c.state).order_by(deliveries.c.id)).scalars().all()


def test_the_delivery_thread_writes_files_while_another_writer_holds_the_database(hub_ws, keys):
    """On SQLite the main thread holds the write lock for a whole batch; the delivery thread
    does not wait for it: what it wrote to folders is marked delivered by the main thread."""
    hub = _one_order(hub_ws, keys)
    n = len(_states(hub_ws))
    holder = db(hub_ws).connect()
    holder.begin()  # BEGIN IMMEDIATE: the write lock, as a batch being recorded holds it
    deliverer = hub._deliverer()
    try:
        # While the lock is held: the old thread waited for it, failed after 30 s, and
        # drain counted nothing.
        assert deliverer.drain() == n
        assert _outbox_files(hub_ws) == n
        assert _states(hub_ws) == ["pending"] * n  # written, not yet marked
    finally:
        holder.rollback()
        holder.close()
        hub._stop_deliverer(deliverer)  # marks what it handed over
        hub.close()
    assert _states(hub_ws) == ["delivered"] * n


def test_files_written_but_not_yet_marked_are_written_once_again_at_the_next_start(hub_ws, keys):

    hub = _one_order(hub_ws, keys)
    n = len(_states(hub_ws))
    deliverer = hub._deliverer()
    assert deliverer.drain() == n
    deliverer.stop()  # stopped before the main thread marked them: as if the hub died
    hub.close()
    assert _states(hub_ws) == ["pending"] * n

    Hub(hub_ws).run_once()

    assert _states(hub_ws) == ["delivered"] * n
    assert _outbox_files(hub_ws) == n  # replaced, not duplicated


def test_while_the_delivery_thread_runs_the_main_thread_gets_the_interpreter_lock_back_soon(
    hub_ws, keys, monkeypatch
):
    """Another thread that takes the lock while the main thread is in SQLite keeps it for at
    most the switch interval: 1 ms while the hub's threads run, Python's own value after."""
    drop_orders(hub_ws, keys, 3)
    seen: list[float] = []
    real = DirectoryOutbox.deliver

    def spy(self, partner_id, file_name, body):
        seen.append(sys.getswitchinterval())
        return real(self, partner_id, file_name, body)

    monkeypatch.setattr(DirectoryOutbox, "deliver", spy)
    before = sys.getswitchinterval()
    Hub(hub_ws).run_once()
    assert len(seen) >= 3 and set(seen) == {LOCK_SWITCH_SECONDS} and LOCK_SWITCH_SECONDS <= 0.001
    assert sys.getswitchinterval() == before


def _transactions(statements: list[tuple[int, str]]) -> list[list[str]]:
    """The write transactions of traced (connection, SQL) pairs, each as its statements."""
    open_: dict[int, list[str]] = {}
    done = []
    for conn, sql in statements:
        word = sql.lstrip().split(None, 1)[0].upper()
        if word == "BEGIN":
            open_[conn] = []
        elif word in ("COMMIT", "ROLLBACK"):
            done.append(open_.pop(conn, []))
        elif conn in open_:
            open_[conn].append(sql)
    return done


def test_the_files_the_delivery_thread_wrote_are_marked_in_the_sweeps_first_transaction(
    hub_ws, keys
):
    """One commit a round fewer: the marks and the moves they allow go in together."""
    send_list(hub_ws, keys, [purchase(21)])  # declared: sent (3) once its copies are out
    statements: list[tuple[int, str]] = []

    def on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.set_trace_callback(lambda sql: statements.append((id(dbapi_conn), sql)))

    dispose_all()
    event.listen(Pool, "connect", on_connect)
    try:
        Hub(hub_ws).run_once()
    finally:
        event.remove(Pool, "connect", on_connect)
        dispose_all()

    with db(hub_ws).connect() as conn:
        assert conn.execute(select(lists.c.state)).scalar() == "sent"
    marking = [
        t for t in _transactions(statements) if any(s.startswith("UPDATE deliveries") for s in t)
    ]
    assert marking, "no transaction marked a file delivered"
    moved = [s for t in marking for s in t if s.startswith("UPDATE lists SET state='sent'")]
    assert moved, marking


def test_a_sweep_that_fails_leaves_the_written_files_to_be_marked_by_the_next(hub_ws, keys):
    hub = _one_order(hub_ws, keys)
    n = len(_states(hub_ws))
    deliverer = hub._deliverer()
    try:
        assert deliverer.drain() == n  # written and handed over
        real = sweep_module._chunks
        sweep_module._chunks = lambda conn, deadline: 1 / 0
        try:
            with pytest.raises(ZeroDivisionError):
                hub._sweep()
        finally:
            sweep_module._chunks = real
        assert _states(hub_ws) == ["pending"] * n  # rolled back with the sweep
        hub._sweep()
        assert _states(hub_ws) == ["delivered"] * n
    finally:
        hub._stop_deliverer(deliverer)
        hub.close()
    assert _outbox_files(hub_ws) == n  # each written once
