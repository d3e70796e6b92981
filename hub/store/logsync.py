"""SQLite commits made durable beside the writer: the log synced by whoever acts on them."""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path

from sqlalchemy import Engine

_registry: dict[Path, LogSync] = {}
_registry_lock = threading.Lock()
_by_engine: weakref.WeakKeyDictionary[Engine, LogSync] = weakref.WeakKeyDictionary()


class LogSync:
    """The write-ahead log of one SQLite database, and how much of the writer's work is durable.

    The hub's main thread commits with `synchronous=NORMAL`: a commit writes its log frames
    and returns without waiting for the disk. What it committed is durable once the log is
    synced, and nothing leaves the hub before that: the delivery thread syncs the log before
    it writes the files it read (`sync_log`), and a batch's claims are archived only once a
    sync that began after the batch's commit has ended (`wait`). The main thread then goes on
    to the next batch instead of waiting for each commit's sync itself (docs/performance.md,
    round 15). Commits of the main thread are numbered as they happen (`committed`, called
    by the connection: `db.writer_engine`); a sync makes durable every commit numbered
    before it began.
    """

    def __init__(self, database: Path) -> None:
        self.wal = database.with_name(database.name + "-wal")
        self._lock = threading.Lock()
        self._latest = 0  # the number of the last commit noted
        self._synced = 0  # every commit up to this number is durable

    @classmethod
    def of(cls, database: Path) -> LogSync:
        """The one LogSync of a database file in this process."""
        key = database.resolve()
        with _registry_lock:
            found = _registry.get(key)
            if found is None:
                found = _registry[key] = cls(key)
            return found

    def committed(self) -> None:
        """Note a commit of the writer (after it returned)."""
        with self._lock:
            self._latest += 1

    @property
    def latest(self) -> int:
        """The number of the last commit noted: `wait(latest)` waits for it and all before."""
        with self._lock:
            return self._latest

    def durable(self, number: int) -> bool:
        with self._lock:
            return self._synced >= number

    def sync(self) -> None:
        """Make every commit made so far durable: the log's data synced to the disk."""
        with self._lock:
            target = self._latest
        sync_file(self.wal)
        with self._lock:
            self._synced = max(self._synced, target)

    def wait(self, number: int) -> None:
        """Return once commit `number` is durable: at once if a sync has covered it, else
        after a sync of this thread's own."""
        if not self.durable(number):
            self.sync()


def sync_file(path: Path) -> None:
    """fdatasync a file if it exists. SQLite's log is written through SQLite's descriptor;
    syncing any descriptor of the file makes all of its written data durable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # no log: every commit is in the database file, synced
        return
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def sync_log(engine: Engine) -> None:
    """Before acting outside the database on what was read from it (writing a delivery,
    serving the pull feed): make everything committed so far durable. On SQLite, a sync of
    the log, which covers commits made with `synchronous=NORMAL` by any process; elsewhere
    nothing (PostgreSQL's commits are durable when they return)."""
    if engine.dialect.name != "sqlite":
        return
    log = _by_engine.get(engine)
    if log is None:
        from hub.store.db import sqlite_path

        path = sqlite_path(engine.url.render_as_string(hide_password=False))
        if path is None:  # in memory
            return
        log = _by_engine[engine] = LogSync.of(path)  # resolved once, not at every round
    log.sync()
