"""On SQLite a reading connection takes a snapshot and never waits for the writer."""

from __future__ import annotations

from sqlalchemy import func, select

from hub import config
from hub.store.db import engine_for, reading
from hub.store.tables import deliveries


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
