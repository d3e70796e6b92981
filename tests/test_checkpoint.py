"""The checkpoint thread copies SQLite's log back into the database while others write."""

from __future__ import annotations

import sqlite3
import threading
import time

from hub.runner import Hub
from hub.store.checkpoint import Checkpointer
from tests.helpers import drop_orders


def _writer(path):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # only the thread checkpoints
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
    return conn


def _wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_what_is_committed_reaches_the_database_file_while_the_writer_goes_on(tmp_path):
    db = tmp_path / "hub.db"
    writer = _writer(db)
    writer.execute("INSERT INTO t (body) VALUES (zeroblob(4000))")
    before = db.stat().st_size
    checkpointer = Checkpointer(db, interval=0.01).start()
    try:
        for _ in range(10):  # commits keep coming while it works
            writer.execute("BEGIN")
            writer.executemany(
                "INSERT INTO t (body) VALUES (zeroblob(4000))", [()] * 50
            )  # fmt: skip
            writer.execute("COMMIT")
        _wait_for(lambda: db.stat().st_size >= 500 * 4000)
    finally:
        checkpointer.stop()
    assert before < 500 * 4000 and checkpointer.checkpoints >= 1
    busy, logged, copied = writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert (busy, logged) == (0, copied)  # nothing was left for this one to copy
    assert writer.execute("SELECT count(*) FROM t").fetchone() == (501,)


def test_a_checkpoint_that_fails_is_logged_and_the_thread_goes_on(tmp_path, caplog):
    db = tmp_path / "hub.db"
    db.mkdir()  # a database that cannot be opened, with a log that has grown
    (tmp_path / "hub.db-wal").write_bytes(b"x")
    checkpointer = Checkpointer(db, interval=0.01).start()
    try:
        _wait_for(lambda: "checkpoint of hub.db failed" in caplog.text)
        (tmp_path / "hub.db-wal").unlink()
        db.rmdir()
        writer = _writer(db)  # the database is back, and written to
        writer.execute("INSERT INTO t (body) VALUES (zeroblob(4000))")
        _wait_for(lambda: checkpointer.checkpoints >= 1)
    finally:
        checkpointer.stop()


def test_the_hub_checkpoints_from_its_own_thread_and_stops_it_when_done(hub_ws, keys):
    drop_orders(hub_ws, keys, 20)
    hub = Hub(hub_ws)
    assert hub.checkpointer is not None

    hub.run_once()

    assert hub.checkpointer.checkpoints >= 1
    assert "checkpointer" not in {t.name for t in threading.enumerate()}


def test_a_hub_run_twice_checkpoints_both_times(hub_ws, keys):
    hub = Hub(hub_ws)
    drop_orders(hub_ws, keys, 5, seed=1)
    hub.run_once()
    first = hub.checkpointer.checkpoints
    drop_orders(hub_ws, keys, 5, seed=2)

    hub.run_once()

    assert first >= 1 and hub.checkpointer.checkpoints > first
