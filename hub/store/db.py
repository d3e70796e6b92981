"""Engine set-up: SQLite in WAL mode with immediate write transactions, or PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from enum import StrEnum
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event

from hub.config import Settings
from hub.store.logsync import LogSync
from hub.workspace import Workspace

SQLITE_BUSY_TIMEOUT_MS = 30_000  # writers wait for each other rather than fail
# Pages a connection keeps (SQLite's default is 2 MiB). Past ~20,000 messages the indexes
# keyed by partners' guids no longer fit in 2 MiB, and most look-ups and inserts read their
# page from the operating system: ~1 MB read a message at 100,000 messages.
SQLITE_CACHE_KIB = 64 * 1024
# Log pages after which a commit checkpoints (SQLite's default is 1,000). A running hub
# checkpoints from its own thread (hub.store.checkpoint) long before; this is the backstop.
AUTOCHECKPOINT_PAGES = 20_000
# Execution option of a connection that only reads: on SQLite its transaction is a plain
# (deferred) BEGIN, so it neither takes nor waits for the write lock.
READ_ONLY = "hub_read_only"


def reading(engine: Engine) -> Connection:
    """A connection for reads only (SQLite: no write lock; elsewhere an ordinary one)."""
    return engine.connect().execution_options(**{READ_ONLY: True})


def database_url(settings: Settings, ws: Workspace) -> str:
    return settings.hub.database_url or f"sqlite:///{ws.database_file}"


def _as_is(value: object) -> object:
    return value


def _register_sqlite_adapters() -> None:
    """Adapters for the parameter types the hub binds that sqlite3 would otherwise look up.

    sqlite3 adapts every parameter that is not exactly an int, float, str or bytearray. For
    a type with no adapter registered it first asks its own PrepareProtocol class for
    `__adapt__`, which raises an AttributeError, formats its message and drops it: ~1,300
    instructions for each None, blob and state a statement binds, some 50 a message. With
    one registered it is a dict look-up and a call, and the value is bound as before.
    Enumerations defined later (none on the hot path) take the slow way.
    """
    for kind in (type(None), bytes, memoryview):
        sqlite3.register_adapter(kind, _as_is)
    pending = [StrEnum]
    while pending:  # every StrEnum (states, codes) loaded by now, bound as its plain value
        for kind in pending.pop().__subclasses__():
            sqlite3.register_adapter(kind, str.__str__)
            pending.append(kind)


def _configure_sqlite(engine: Engine, deferred_sync: bool = False) -> None:
    _register_sqlite_adapters()
    # A committed message survives power loss: each commit syncs the log, or (the hub's
    # writer, `writer_engine`) the log is synced by whoever acts on the commit (LogSync).
    synchronous = "NORMAL" if deferred_sync else "FULL"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # Let SQLAlchemy's "begin" below issue BEGIN itself (pysqlite would defer it).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cur.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        # The pages a savepoint may roll back (one savepoint a message) stay in memory: by
        # default past 64 KiB they go to a new file in /var/tmp, a write a page.
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")  # a snapshot: WAL readers never wait for the writer
            return
        # Take the write lock up front so two writers never deadlock on upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


_engines: dict[str, Engine] = {}
_side_engines: dict[str, Engine] = {}
_writer_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _noting_commits(log: LogSync) -> type[sqlite3.Connection]:
    """A sqlite3 connection class that numbers its commits in `log`."""

    class NotingCommits(sqlite3.Connection):
        def commit(self) -> None:
            super().commit()
            log.committed()

    return NotingCommits


def make_engine(url: str, deferred_sync: bool = False) -> Engine:
    if url.startswith("sqlite"):
        # Each SQLite connection has its own page cache, and a connection that finds another
        # has committed since its last transaction drops all of it. The writer's connection
        # keeps its cache warm only if its transactions run on it, one after the other: the
        # pool hands out the connection given back last (the default is the one given back
        # first, which alternated the writer between two connections), and other threads use
        # a side engine (`side_engine`).
        path = sqlite_path(url)
        lifo = {"pool_use_lifo": True} if path else {}  # memory: one connection
        connect_args: dict = {"check_same_thread": False, "timeout": 30}
        deferred_sync = deferred_sync and path is not None
        if deferred_sync:
            assert path is not None
            connect_args["factory"] = _noting_commits(LogSync.of(path))
        engine = create_engine(url, connect_args=connect_args, **lifo)
        _configure_sqlite(engine, deferred_sync)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine


def engine_for(settings: Settings, ws: Workspace) -> Engine:
    """The (cached) engine of a workspace, migrated to the current schema."""
    url = database_url(settings, ws)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            from hub.store.migrate import upgrade

            engine = make_engine(url)
            upgrade(engine)
            _engines[url] = engine
        return engine


def side_engine(engine: Engine) -> Engine:
    """For a thread beside the hub's main one, on SQLite: the same database through
    connections of its own, so that its reads never take the connection the main thread's
    writes keep warm. Elsewhere (PostgreSQL keeps one cache for all) the engine itself."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name != "sqlite" or sqlite_path(url) is None:  # or in memory: one only
        return engine
    with _lock:
        side = _side_engines.get(url)
        if side is None:
            side = _side_engines[url] = make_engine(url)
        return side


def writer_engine(engine: Engine) -> Engine:
    """For the hub's main thread, on a SQLite file: the same database through connections
    that commit without waiting for the disk (`synchronous=NORMAL`) and number their commits
    (`LogSync.of(path)`), whose log the hub syncs before anything leaves it. Elsewhere the
    engine itself. Other threads and commands keep `engine`, whose commits wait."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name != "sqlite" or sqlite_path(url) is None:
        return engine
    with _lock:
        writer = _writer_engines.get(url)
        if writer is None:
            writer = _writer_engines[url] = make_engine(url, deferred_sync=True)
        return writer


def log_sync_of(engine: Engine) -> LogSync | None:
    """The LogSync of a `writer_engine` (None for an engine whose commits wait)."""
    url = engine.url.render_as_string(hide_password=False)
    path = sqlite_path(url)
    if path is None or _writer_engines.get(url) is not engine:
        return None
    return LogSync.of(path)


def dispose_all() -> None:
    with _lock:
        for engine in [*_engines.values(), *_side_engines.values(), *_writer_engines.values()]:
            engine.dispose()
        _engines.clear()
        _side_engines.clear()
        _writer_engines.clear()


def sqlite_path(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
