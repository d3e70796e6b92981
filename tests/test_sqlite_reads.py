"""On SQLite a reading connection takes a snapshot and never waits for the writer."""

from __future__ import annotations

import contextlib
import os
import threading

from sqlalchemy import event, func, select

from hub import config
from hub.bench.workload import generate, message_mix, prepare_workspace
from hub.runner import Hub
from hub.store.db import READ_ONLY, engine_for, make_engine, reading, side_engine
from hub.store.tables import deliveries, messages


def test_a_reader_answers_at_once_while_a_write_transaction_is_open(ws):
    engine = engine_for(config.load(ws), ws)
    count = select(func.count()).select_from(deliveries)
    with engine.begin() as writer:  # BEGIN IMMEDIATE: holds the write lock
        writer.exec_driver_sql(
            "INSERT INTO deliveries (partner_id, kind, msg_type, guid, file_name, body, state,"
            " attempts, created_at, next_attempt_at) VALUES ('p', 'receipt', 'CEB312Message',"
            " 'g', 'f.xml', x'00', 'pending', 0, '2026-11-26', '2026-11-26')"
        )
        with reading(engine) as conn:
            assert conn.execute(count).scalar() == 0  # the committed state, not the open write
            assert conn.in_transaction()  # BEGIN IMMEDIATE would have waited, then failed
    with reading(engine) as conn:
        assert conn.execute(count).scalar() == 1


def test_every_connection_keeps_64_mib_of_pages_and_leaves_checkpoints_to_the_hub(ws):
    """2 MiB (SQLite's default) held the indexes of ~20,000 messages; past that most look-ups
    read their page from the operating system."""
    engine = engine_for(config.load(ws), ws)
    with reading(engine) as one, reading(engine) as other:  # two connections of the pool
        for conn in (one, other):
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -64 * 1024
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 20_000


def _sqlite_temp_files() -> list[str]:
    """The files SQLite keeps open in its temporary directory (named etilqs_*, deleted)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            if "etilqs_" in os.readlink(f"/proc/self/fd/{fd}"):
                found.append(fd)
    return found


def test_a_batch_keeps_its_savepoints_undo_pages_in_memory_not_in_a_temporary_file(tmp_path):
    """Each message of a batch is applied under a savepoint. SQLite keeps the pages a
    savepoint may roll back in a statement journal, which by default spills to a file in
    /var/tmp once it passes 64 KiB: a file created for every batch, and a write per page."""
    ws = prepare_workspace(tmp_path / "ws")
    types, _ = message_mix()
    generate(ws, 120, types, seed=5)
    hub = Hub(ws)
    seen: list[list[str]] = []
    event.listen(hub.engine, "commit", lambda conn: seen.append(_sqlite_temp_files()))
    hub.run_once()
    hub.close()
    assert len(seen) >= 2  # the batch, the sweep
    assert seen == [[]] * len(seen)
    with hub.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(messages)) == 120


def test_the_hubs_writes_run_one_after_another_on_one_connection_so_its_page_cache_stays(
    tmp_path,
):
    """A SQLite connection that finds another has committed since its last transaction
    drops its whole page cache. The pool used to hand the main thread its two connections
    in turn, so every other batch began cold; the delivery thread's reads took one too."""
    ws = prepare_workspace(tmp_path / "ws")
    types, _ = message_mix()
    generate(ws, 400, types, seed=6)
    hub = Hub(ws)
    begun: list[tuple[str, int, bool]] = []

    def on_begin(conn):
        read_only = bool(conn.get_execution_options().get(READ_ONLY))
        begun.append((threading.current_thread().name, id(conn.connection.dbapi_connection),
                      read_only))  # fmt: skip

    event.listen(hub.engine, "begin", on_begin)
    event.listen(hub.side_engine, "begin", on_begin)
    hub.run_once()
    hub.close()
    writers = {conn for thread, conn, read_only in begun if not read_only}
    deliverer = {conn for thread, conn, _ in begun if thread == "deliverer"}
    assert len([b for b in begun if not b[2]]) >= 6 and len(writers) == 1
    assert deliverer and not deliverer & writers  # it read, on connections of its own
    with hub.engine.connect() as conn:
        delivered = select(func.count()).select_from(deliveries).where(
            deliveries.c.delivered_at.is_not(None)
        )  # fmt: skip
        assert conn.scalar(delivered) >= 400 * 3  # a receipt and two copies a message, at least


def test_only_a_sqlite_file_gets_a_side_engine():
    memory = make_engine("sqlite://")
    assert side_engine(memory) is memory
    postgres = make_engine("postgresql+psycopg://postgres@127.0.0.1/test")
    assert side_engine(postgres) is postgres
