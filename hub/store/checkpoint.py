"""SQLite's write-ahead log copied back into the database by a thread of its own."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

# How often the thread checkpoints while commits keep coming. A checkpoint copies each page
# that the commits since the last one wrote once, however many of them wrote it: the tables'
# last pages and the hot index pages are written by every commit. Every 50 ms it copied ~7.1
# pages a message, nearly one for each of the ~7.4 the log received; every second, fewer (the
# hub's process: 33 → 29 writes and 125 → 106 KiB written a message, at 10,000 messages). At
# 1,400 messages a second a second's log is ~10,000 pages, half `db.AUTOCHECKPOINT_PAGES`.
CHECKPOINT_SECONDS = 1.0
IDLE_SECONDS = 1.0  # and, at the most, while none come


class Checkpointer:
    """Checkpoints a SQLite database in WAL mode from its own thread and connection.

    SQLite otherwise checkpoints in the connection whose commit takes the log past
    `db.AUTOCHECKPOINT_PAGES`, in the middle of that commit: the hub's recording thread,
    which then reads back and writes again every page it has just written. This thread does
    it instead whenever the log has grown, with the interpreter lock released while SQLite
    works, so the copying runs beside the recording. Its checkpoints are PASSIVE: they
    never wait for, nor hold up, a reader or a writer; what they cannot copy yet (a
    reader still needs it) the next one copies. Durability does not depend on them: a
    commit is durable once its log frames are synced.
    """

    def __init__(self, database: Path, interval: float = CHECKPOINT_SECONDS) -> None:
        self.database = database
        self.wal = database.with_name(database.name + "-wal")
        self.interval = interval
        self.checkpoints = 0  # completed, for tests and metrics
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Checkpointer:
        """Start the thread (again, after a `stop`)."""
        if self._thread is None:
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name="checkpointer", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after one last checkpoint."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _run(self, stopping: threading.Event) -> None:
        """Checkpoint every `interval` while there is work, less often while there is none,
        and once more when stopped: what was committed by then is copied."""
        conn = None
        last = None
        wait = self.interval
        try:
            while True:
                stopped = stopping.wait(wait)
                wait = min(wait * 2, IDLE_SECONDS)
                if not self.wal.exists():
                    if stopped:
                        return
                    continue
                try:
                    if conn is None:
                        conn = sqlite3.connect(self.database, isolation_level=None, timeout=0)
                    # (busy, frames in the log, frames copied): the log restarts at 0 once all
                    # of it is copied and nobody reads it.
                    result = tuple(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
                except sqlite3.Error as exc:  # SQLite's own checkpoints go on meanwhile
                    log.warning("checkpoint of %s failed: %s", self.database.name, exc)
                    result = None
                if result is not None and result[1] > 0 and result != last:
                    self.checkpoints += 1
                    wait = self.interval  # commits are coming: look again soon
                last = result
                if stopped:
                    return
        finally:
            if conn is not None:
                conn.close()
