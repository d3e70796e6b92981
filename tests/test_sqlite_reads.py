"""On SQLite a reading connection takes a snapshot and never waits for the writer."""

from __future__ import annotations

import contextlib
import os

from sqlalchemy import event, func, select

from hub import config
from hub.bench.workload import generate, message_mix, prepare_workspace
from hub.runner import Hub
from hub.store.db import engine_for, reading
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
