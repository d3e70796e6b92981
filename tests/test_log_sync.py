"""The writer commits without waiting for the disk; nothing leaves before its log is synced."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from adapters.directory import DirectoryInbox, DirectoryOutbox
from hub import config, runner
from hub.runner import Hub
from hub.store import logsync
from hub.store.db import engine_for, log_sync_of, writer_engine
from hub.store.logsync import LogSync
from tests.clearance_support import purchase, send_documents, send_list, set_guarantee


def test_a_sync_makes_durable_the_commits_noted_before_it_began(tmp_path, monkeypatch):
    database = tmp_path / "x.db"
    log = LogSync(database)
    log.wal.write_bytes(b"frames")
    log.committed()
    first = log.latest
    assert first == 1 and not log.durable(first)

    synced = []

    def commit_during_the_first_sync(fd):  # a commit lands while the disk works: not covered
        if not synced:
            log.committed()
        synced.append(fd)

    monkeypatch.setattr(logsync.os, "fdatasync", commit_during_the_first_sync)
    log.sync()
    assert log.durable(first) and not log.durable(log.latest)
    log.wait(first)  # durable already: no sync
    assert len(synced) == 1
    log.wait(log.latest)  # not yet durable: it syncs here
    assert log.durable(log.latest) and len(synced) == 2


def test_a_database_with_no_log_has_nothing_to_sync(tmp_path):
    log = LogSync(tmp_path / "none.db")
    log.committed()
    log.sync()  # no -wal file: every commit is in the database file
    assert log.durable(1)


def test_only_the_hubs_writer_commits_without_waiting(hub_ws):
    engine = engine_for(config.load(hub_ws), hub_ws)
    writer = writer_engine(engine)
    assert writer is not engine and writer_engine(engine) is writer
    assert log_sync_of(writer) is LogSync.of(hub_ws.database_file)
    assert log_sync_of(engine) is None
    with writer.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    noted = log_sync_of(writer).latest
    with writer.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x)")
    assert log_sync_of(writer).latest == noted + 1  # the connection numbers its commits


class _Disk:
    """What a power cut would keep of the database: the database file and the log as they
    were when a sync of the log began (no checkpoint runs meanwhile: the test stops them)."""

    def __init__(self, database: Path, scratch: Path) -> None:
        self.database = database
        self.wal = database.with_name(database.name + "-wal")
        self.scratch = scratch
        self.kept: tuple[bytes, bytes] | None = None
        self.syncs = 0
        self.take()

    def take(self) -> None:
        wal = self.wal.read_bytes() if self.wal.exists() else b""
        self.kept = (self.database.read_bytes(), wal)

    def holds(self, sql: str, *params: object) -> bool:
        """Whether the database a power cut would leave answers `sql` with a row."""
        assert self.kept is not None
        self.syncs += 1
        copy = self.scratch / f"cut-{self.syncs}.db"
        copy.write_bytes(self.kept[0])
        copy.with_name(copy.name + "-wal").write_bytes(self.kept[1])
        conn = sqlite3.connect(copy)
        try:
            return conn.execute(sql, params).fetchone() is not None
        finally:
            conn.close()


def test_a_claim_is_archived_and_a_file_delivered_only_once_a_power_cut_would_keep_them(
    hub_ws, keys, monkeypatch, tmp_path
):
    """The writer's commits return before the disk has them. At each archive of a claim and
    each file delivered, the database that a power cut at that moment would leave (the log as
    of the last sync) must already hold the message and the delivery: else the partner would
    have an answer, or the hub an archived file, that the database forgot."""
    set_guarantee(hub_ws, "100000")
    bought = [purchase(seed) for seed in (301, 302, 303)]
    send_documents(hub_ws, keys, bought)
    send_list(hub_ws, keys, bought)
    monkeypatch.setattr(runner, "_checkpointer", lambda engine: None)
    scratch = tmp_path / "cuts"
    scratch.mkdir()
    hub = Hub(hub_ws)
    disk = _Disk(hub_ws.database_file, scratch)
    real_sync = logsync.sync_file

    def sync_file(path):
        disk.take()  # what was written before the sync began is what it makes durable
        real_sync(path)

    checked = {"archived": [], "delivered": []}
    real_archive, real_quarantine = DirectoryInbox.archive, DirectoryInbox.quarantine
    real_deliver = DirectoryOutbox.deliver

    def archive(self, claim):
        assert disk.holds("SELECT 1 FROM messages WHERE claim = ?", claim.name), claim.name
        checked["archived"].append(claim.name)
        return real_archive(self, claim)

    def quarantine(self, claim, reason):
        assert disk.holds("SELECT 1 FROM messages WHERE claim = ?", claim.name), claim.name
        checked["archived"].append(claim.name)
        return real_quarantine(self, claim, reason)

    def deliver(self, partner_id, file_name, body):
        kept = disk.holds(
            "SELECT 1 FROM deliveries WHERE partner_id = ? AND file_name = ?", partner_id, file_name
        )
        assert kept, file_name
        checked["delivered"].append(file_name)
        return real_deliver(self, partner_id, file_name, body)

    monkeypatch.setattr(logsync, "sync_file", sync_file)
    monkeypatch.setattr(DirectoryInbox, "archive", archive)
    monkeypatch.setattr(DirectoryInbox, "quarantine", quarantine)
    monkeypatch.setattr(DirectoryOutbox, "deliver", deliver)
    hub.run_once()

    assert len(checked["archived"]) == 4  # order, payment, waybill and list messages
    assert not list((hub_ws.claims / "agent").iterdir())
    delivered = checked["delivered"]
    assert len(delivered) >= 4 * 2 + 3 + 3  # copies to customs and inspection, receipts
    assert any(name.startswith("CEB622Message") for name in delivered)  # the list's moves
    out = {p.name for p in hub_ws.outbox.rglob("*.xml")}
    assert set(delivered) <= out
    shutil.rmtree(scratch)


def test_with_no_delivery_to_sync_the_log_a_claim_waits_at_most_one_batch(hub_ws, keys):
    """Rounds of the main thread alone (no delivery thread syncs the log): a batch's claims
    stay until the next batch is recorded, then the main thread syncs the log itself (which
    makes that next batch durable too); none is archived before it is durable, and none
    waits longer."""
    from tests.helpers import drop_orders

    doc = config.read_document(hub_ws)
    doc["hub"]["batch_size"] = 3
    doc["hub"]["check_processes"] = 0
    config.write_document(hub_ws, doc)
    drop_orders(hub_ws, keys, 9, seed=310)
    hub = Hub(hub_ws)
    claimed = []
    try:
        for _ in range(3):
            assert hub._claim_all()
            claimed.append(len(list((hub_ws.claims / "platform").iterdir())))
            assert all(hub.log_sync.durable(r.commit) is False for r in hub._recorded)
        assert not hub._claim_all()
        hub._archive_durable(keep=0)  # as a round that finds nothing to claim ends
    finally:
        hub.close()
    assert claimed == [3, 0, 3]  # round 2 synced for round 1, and both were archived
    assert not list((hub_ws.claims / "platform").iterdir())
    assert len(list((hub_ws.archive).rglob("*.xml"))) == 9
