"""The hub at work: adapters, pipeline and delivery in one loop, for `cebhub run`."""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from adapters.base import FolderSource, QueueSource, Source, sink_status, write_status
from adapters.directory import DirectoryOutbox, Reservation
from hub import config
from hub.checker import Checker
from hub.checks import build_stages, too_big, unreadable
from hub.clearance.sweep import sweep
from hub.config import Settings
from hub.delivery.background import Deliverer
from hub.delivery.worker import Handover, Sink, deliver_due, next_due
from hub.errors import HubError
from hub.faults import crash_point
from hub.pipeline import Disposition, Inbound, Processor
from hub.routing import Router
from hub.scheduler import DELIVERY_JOB, Scheduler, prune_archive
from hub.store.checkpoint import Checkpointer
from hub.store.db import engine_for, log_sync_of, reading, side_engine, writer_engine
from hub.store.tables import messages
from hub.workers import is_console_worker
from hub.workspace import Workspace

log = logging.getLogger(__name__)

ONCE_QUEUE_WAIT = 0.5  # `run --once`: seconds a queue may take to send its first message
SWEEP_WHILE_BUSY_SECONDS = 0.2  # at most this long between sweeps while batches keep coming
# While the delivery thread runs beside the main one: a thread that takes the interpreter lock
# while the main thread is inside SQLite may keep it for the whole switch interval (Python's
# default 5 ms) before the main thread, the hub's bottleneck, gets it back. At 700 msg/s the
# main thread spent ~11 % of its time waiting so; with 1 ms the median latency fell in each of
# five paired runs (docs/performance.md, round 8).
LOCK_SWITCH_SECONDS = 0.001
UNFINISHED_RETRY_SECONDS = 60.0  # a claim that could not be archived or quarantined waits this
UNFINISHED_TRIES = 10  # then it is left to the next start's recovery
# Batches of reserved files a round tries when each one's files had all gone to another worker
# (or could not be moved: they stay in the inbox, and a rescan would list them again).
RESERVE_TRIES = 8


def envelope_signer(ws: Workspace):
    from hub import trust

    return trust.hub_envelope_signer(ws)


class Hub:
    """One hub process over one workspace."""

    def __init__(self, ws: Workspace, settings: Settings | None = None) -> None:
        self.ws = ws
        self.settings = settings or config.load(ws)
        # The main thread's commits do not wait for the disk (SQLite): a batch's claims are
        # archived once the log is synced after its commit (`_recorded`, `_archive_durable`).
        self.engine = writer_engine(engine_for(self.settings, ws))
        self.log_sync = log_sync_of(self.engine)
        self.side_engine = side_engine(self.engine)  # the delivery thread's connections
        self.router = Router(self.settings, sign_envelope=envelope_signer(ws), root=ws.root)
        self.processor = Processor(self.settings, build_stages(ws, self.settings), self.router)
        self.checker = Checker(ws.root, self.settings, self.settings.hub.checkers())
        self._checking: list[_Batch] = []  # claimed, in the checker, recorded next round
        folder_partners = [
            (p.id, p.ready) for p in self.settings.partners.values() if p.transport == "directory"
        ]
        self.folder = FolderSource(ws, folder_partners)
        self.inbox = self.folder.inbox  # the directory inbox
        self.outbox = DirectoryOutbox(ws, writer_process=self.settings.hub.file_writer())
        self.sinks: dict[str, Sink] = {}
        # Pull partners fetch their files over /api/feed; their rows stay pending until acked.
        self.pulled = frozenset(
            p.id for p in self.settings.partners.values() if p.transport == "pull"
        )
        self.sources: list[Source] = [self.folder]
        self.transport_sinks: dict[str, Any] = {}  # SFTP and AMQP sinks, for their status
        self._add_transports()
        self.wakeup = threading.Event()
        self.scheduler = self._build_scheduler()
        self._status_written: Any = None
        self._swept_at = float("-inf")  # time.monotonic() of the last clearance sweep
        self._keeping_up = False  # this round's batches are recorded at its end (`_round`)
        self._unfinished: list[_Unfinished] = []  # recorded, but not archived or quarantined
        self._recorded: list[_Recorded] = []  # committed, archived once durable
        self._given_up: set[str] = set()  # claims whose finishing failed too often
        self.checkpointer = _checkpointer(self.engine)
        # While the delivery thread runs (SQLite), the main thread records its folder files.
        self._handover = Handover() if self.engine.dialect.name == "sqlite" else None
        self._handing_over = False
        self._switch_was = sys.getswitchinterval()

    def _add_transports(self) -> None:
        """A source and a sink per SFTP and per AMQP partner; imported only when configured."""
        partners = list(self.settings.partners.values())
        if any(p.transport == "sftp" for p in partners):
            from adapters.sftp_sink import sinks_for
            from adapters.sftp_source import sources_for

            limit = self.settings.hub.max_message_bytes
            self.sources += sources_for(self.ws, partners, self.recorded, limit)
            self.transport_sinks.update(sinks_for(self.ws, partners))
        if any(p.transport == "amqp" for p in partners):
            from adapters.amqp import inboxes_for, outboxes_for

            self.sources += [QueueSource(i) for i in inboxes_for(partners, self.ws).values()]
            self.transport_sinks.update(outboxes_for(partners))
        self.sinks.update(self.transport_sinks)

    def _build_scheduler(self) -> Scheduler:
        scheduler = Scheduler(self.wakeup)
        for source in self.sources:
            poll = getattr(source, "request_poll", None)
            if poll is not None:  # SFTP: list the server on the partner's interval
                scheduler.every(f"poll:{source.name}", source.poll_seconds, poll)
        days = self.settings.hub.archive_days
        scheduler.every("housekeeping", 3600.0, lambda: prune_archive(self.ws.archive, days))
        scheduler.every("unfinished claims", UNFINISHED_RETRY_SECONDS, self.retry_unfinished)
        scheduler.every("stranded claims", UNFINISHED_RETRY_SECONDS, self.finish_stranded)
        scheduler.install_hooks(self)
        return scheduler

    def recorded(self, claims: list[str]) -> set[str]:
        """The claim names the store already holds (a transport fetched them again)."""
        found: set[str] = set()
        with self.engine.connect() as conn:
            for i in range(0, len(claims), 500):
                chunk = claims[i : i + 500]
                q = select(messages.c.claim).where(messages.c.claim.in_(chunk))
                found.update(conn.execute(q).scalars())
        return found

    # ------------------------------------------------------------ one round of work

    def read(self, claim: Any, source: Source | None = None) -> Inbound:
        """The claim's bytes; a file over the limit, or one that cannot be read, comes back
        unread with its error, to be answered and quarantined like any refused file."""
        partner = self.settings.partners[claim.partner_id]
        refused = too_big(claim.size, self.settings.hub.max_message_bytes)
        if refused is not None:  # never read a file we will refuse anyway
            return _unread(claim, partner, refused)
        try:
            data = (source or self.folder).read(claim)
        except OSError as exc:  # removed from claims/ meanwhile, or a disk error
            log.error("reading %s failed: %s", _name(claim), exc)
            return _unread(claim, partner, unreadable(exc))
        return Inbound(partner, claim.name, claim.original_name, data, claim.received_at)

    def process_claims(self, claims: list[Any], source: Source | None = None) -> list[Disposition]:
        """Check, record and then archive or quarantine a batch of claims."""
        dispositions = self._finish(self._start(claims, source or self.folder))
        self._archive_durable(keep=0)
        return dispositions

    def _start(self, claims: list[Any], source: Source, keeping_up: bool = False) -> _Batch:
        """Read a batch and check it: in the checker process when it is big enough, else here."""
        known = [c for c in claims if c.partner_id in self.settings.partners]
        items = [self.read(c, source) for c in known]
        unread = [i for i in items if i.error is None]  # the oversized were refused unread
        if self.checker.available(len(unread), keeping_up):
            number = self.checker.submit(unread)
            return _Batch(source, known, items, unread, remote=True, checker=number)
        self.processor.check_all(items)
        return _Batch(source, known, items)

    def _start_taking(
        self, reserved: list[Reservation], source: Any, keeping_up: bool = False
    ) -> _Batch | None:
        """Files to claim: taken, read and checked in the checker process when the batch is
        big enough (the renames and reads then cost this process nothing), else here."""
        if self.checker.available(len(reserved), keeping_up):
            number = self.checker.submit_taking(reserved)
            crash_point("after-claim")
            return _Batch(source, [], [], reserved=reserved, remote=True, checker=number)
        claims = source.take(reserved)
        if not claims:
            return None
        crash_point("after-claim")
        return self._start(claims, source, keeping_up)

    def _collect(self, batch: _Batch) -> None:
        if batch.remote:
            batch.remote = False
            if batch.reserved:
                self._collect_taken(batch)
            else:
                self.checker.collect(batch.checker, batch.sent, self.processor.check_all)

    def _start_work(
        self, work: list[Any], source: Any, reserved: bool, keeping_up: bool = False
    ) -> _Batch | None:
        """Start a batch of claims, or of reserved files, once a checker process is free."""
        if self.checker.wanted(len(work), keeping_up) and not self.checker.available(
            len(work), keeping_up
        ):
            self._collect_oldest()  # every process holds a batch: free one for this one
        if reserved:
            return self._start_taking(work, source, keeping_up)
        crash_point("after-claim")
        return self._start(work, source, keeping_up)

    def _collect_oldest(self) -> None:
        """Take the answer of the batch that has been in a checker process longest, which
        frees that process for the next batch."""
        for batch in self._checking:
            if batch.remote:
                self._collect(batch)
                return

    def _collect_taken(self, batch: _Batch) -> None:
        """The claims and checked items of a batch the checker process took."""
        results = self.checker.collect_taken(batch.checker, len(batch.reserved))
        if results is None:  # the process failed: take (what it did not) and check here
            batch.claims = batch.source.take(batch.reserved)
            batch.items = [self.read(c, batch.source) for c in batch.claims]
            self.processor.check_all(batch.items)
            return
        batch.source.settle(batch.reserved)
        for r, checked in zip(batch.reserved, results, strict=True):
            if checked is None or checked.taken is None:
                continue  # another worker took it, or the partner withdrew it
            claim = r.claim(checked.taken.size)
            partner = self.settings.partners[r.partner_id]
            data = checked.taken.data
            if data is None:  # refused unread
                assert checked.error is not None
                item = _unread(claim, partner, checked.error)
            else:
                item = Inbound(partner, claim.name, claim.original_name, data, r.received_at,
                               sha256=checked.taken.sha256)  # fmt: skip
                checked.apply_to(item)
            batch.claims.append(claim)
            batch.items.append(item)

    def _finish(self, batch: _Batch) -> list[Disposition]:
        self._collect(batch)
        if not batch.items:  # every file the checker was to take had gone
            return []
        dispositions = self.processor.record(self.engine, batch.items)
        crash_point("after-commit")
        # By position: two identical AMQP messages in one batch share a claim name.
        pairs = list(zip(batch.claims, dispositions, strict=True))
        commit = self.log_sync.latest if self.log_sync is not None else 0
        self._recorded.append(_Recorded(commit, batch.source, pairs))
        self._archive_durable(keep=1)
        return dispositions

    def _archive_durable(self, keep: int) -> None:
        """Archive or quarantine the recorded batches, oldest first, once their commit is
        durable: a sync of the log since has made it so (usually the delivery thread's, which
        syncs it before writing what the batch answered). The newest `keep` batches wait for
        such a sync; older ones, if none came (a batch that answered nobody by file, say),
        are made durable here: no claim waits longer than a batch after its own."""
        while self._recorded:
            done = self._recorded[0]
            if self.log_sync is not None and not self.log_sync.durable(done.commit):
                if len(self._recorded) <= keep:
                    return
                self.log_sync.wait(done.commit)
            crash_point("after-sync")
            self._recorded.pop(0)
            for claim, d in done.pairs:
                self._finish_file(done.source, claim, d)

    def _finish_file(self, source: Source, claim: Any, d: Disposition, tries: int = 0) -> bool:
        """Archive or quarantine a recorded claim. A failure is logged and the claim kept for
        `retry_unfinished`: the batch's other files, and later batches, go on meanwhile."""
        try:
            if d.quarantine:
                source.quarantine(claim, d.reason)
            else:
                source.archive(claim)
            return True
        except Exception as exc:
            tries += 1
            name = _name(claim)
            if tries >= UNFINISHED_TRIES:  # e.g. an AMQP ack on a channel long gone
                log.error(
                    "finishing %s failed %d times (%s); left to the next start", name, tries, exc
                )
                self._given_up.add(name)  # not a stranded claim: `finish_stranded` leaves it
            else:
                retry = UNFINISHED_RETRY_SECONDS
                log.warning("finishing %s failed (%s); tried again in %g s", name, exc, retry,
                            exc_info=tries == 1)  # fmt: skip
                self._unfinished.append(_Unfinished(source, claim, d, tries))
            return False

    def retry_unfinished(self) -> int:
        """Finish the recorded claims whose archive or quarantine failed; returns how many."""
        waiting, self._unfinished = self._unfinished, []
        return sum(self._finish_file(u.source, u.claim, u.disposition, u.tries) for u in waiting)

    def finish_stranded(self) -> int:
        """Record the folder claims this process took and then lost hold of; returns how many.

        A failure between claiming and recording (a bug: a read or a hand-over that raised)
        leaves its claims in claims/, owned by this live process, so `recover` would only
        take them at the next start. Run between rounds, when every claim the hub holds is
        in a batch being checked or waits in `_unfinished`; a claim younger than the retry
        interval is left alone, and so is one whose finishing was given up (the log says so).
        """
        held = {_name(c) for batch in self._checking for c in batch.claims + batch.reserved}
        held.update(_name(u.claim) for u in self._unfinished)
        held.update(_name(claim) for r in self._recorded for claim, _ in r.pairs)
        held |= self._given_up
        stranded = self.folder.stranded(held, older_than=UNFINISHED_RETRY_SECONDS)
        if stranded:
            log.warning("%d claims of this process were held by nothing; recording them now",
                        len(stranded))  # fmt: skip
        batch = self.settings.hub.batch_size
        for i in range(0, len(stranded), batch):
            self.process_claims(stranded[i : i + batch], self.folder)
        return len(stranded)

    def deliver(self) -> int:
        handover = self._handover if self._handing_over else None
        attempted = deliver_due(
            self.side_engine, self.sinks, self.outbox, self.settings.delivery, skip=self.pulled,
            handover=handover,
        )  # fmt: skip
        if attempted and self.scheduler.running:
            self._schedule_retry()
        return attempted

    def record_delivered(self) -> int:
        """Mark delivered what the delivery thread handed over; returns how many rows."""
        if self._handover is None:
            return 0
        return self._handover.record(self.engine, self.settings.delivery)

    def _sweep(self) -> int:
        """The clearance sweep, after what the delivery thread handed over is marked delivered
        (a list moves on once its copies are): in the sweep's first transaction."""
        mark = self._handover.marking(self.settings.delivery) if self._handover else None
        if mark is None:
            return sweep(self.engine, self.router, self.ws.root)
        try:
            return sweep(self.engine, self.router, self.ws.root, first=mark)
        except BaseException:
            mark.give_back()
            raise

    def _schedule_retry(self) -> None:
        """Wake the loop when the earliest pending delivery comes due (not counting rows
        handed over for recording: they are delivered)."""
        in_flight = self._handover.in_flight() if self._handover is not None else None
        with reading(self.side_engine) as conn:
            when = next_due(conn, in_flight)
        if when is not None:
            self.scheduler.at(DELIVERY_JOB, when, lambda: None)  # the round itself delivers

    def recover(self) -> int:
        """Finish the claims a killed predecessor left behind, and drop its temp files."""
        self.outbox.remove_stale_temps()
        batch = self.settings.hub.batch_size
        total = 0
        for source in self.sources:
            claims = source.recover()
            for i in range(0, len(claims), batch):
                self.process_claims(claims[i : i + batch], source)
            total += len(claims)
        return total

    def _claim_all(self) -> bool:
        """One batch from every source; a source that fails is logged and passed over.

        While the hub is behind (a source holds more than it gave), a batch handed to a
        checker process is recorded in a later round, after the next batch has been handed
        over: one is checked while the other is recorded (`Checker.depth` batches are in the
        checker processes meanwhile: two a process). A hub keeping up (every source gave all
        it had) records its batches in the round that took them, once the round's other work
        is done (`_keeping_up`): a message then waits for no batch after its own. Batches are
        recorded in the order they were claimed.
        """
        waiting = len(self._checking)  # handed over in earlier rounds: recorded first
        started = 0
        behind = False
        size = self.settings.hub.batch_size
        for source in self.sources:
            reserve = getattr(source, "reserve", None)  # folders: the checker may take them
            # Every file reserved may be gone when this process comes to take it: another
            # worker took them (it reserved the same, oldest, files). The next ones are then
            # reserved, as `DirectoryInbox.claim` does: a round that found nothing would end
            # `run --once` with the inbox still full, leaving the work to the other worker.
            tried: set[str] = set()
            for _ in range(RESERVE_TRIES if reserve is not None else 1):
                try:
                    work = reserve(size) if reserve is not None else source.claim(size)
                except Exception:  # sources report outages themselves; a bug, not a stop
                    log.exception("claiming from %s failed", source.name)
                    break
                if not work:
                    break
                keeping_up = not source.backlog()
                behind = behind or not keeping_up
                if reserve is not None:
                    fresh = {r.src for r in work} - tried
                    if not fresh:  # a rescan listed again what could not be moved
                        source.settle(work)
                        break
                    tried |= fresh
                try:
                    batch = self._start_work(work, source, reserve is not None, keeping_up)
                except BaseException:
                    if reserve is not None:  # not taken: a later scan finds what is still there
                        source.settle(work)
                    raise
                if batch is not None:  # held at once: a failure later in the round loses nothing
                    self._checking.append(batch)
                    started += 1
                    break
        # Each round records the oldest batch; while new ones come, up to one batch a checker
        # process stays in the checkers for later rounds (none once the input runs dry). A
        # hub keeping up keeps this round's batches for the end of the round (`_round`).
        self._keeping_up = started > 0 and not behind
        keep = started + (0 if self._keeping_up else self.checker.depth - 1) if started else 0
        while len(self._checking) > keep or (self._checking and not self._checking[0].remote):
            self._finish(self._checking[0])
            self._checking.pop(0)
        return bool(started or waiting)

    def _finish_checking(self) -> None:
        """Record every batch still held; each leaves the list once it is recorded."""
        while self._checking:
            self._finish(self._checking[0])
            self._checking.pop(0)

    def publish_status(self) -> None:
        """Write the transports' up/down state for `cebhub status`, when it changed."""
        entries = [e for s in self.sources for e in s.status()]
        for sink in self.transport_sinks.values():
            status = getattr(sink, "status", None)
            if status is not None:
                entries.extend(status())
            elif hasattr(sink, "last_error"):  # AmqpOutbox
                entry = sink_status(f"amqp-out:{sink.partner_id}", sink.partner_id, "amqp", sink)
                if entry is not None:
                    entries.append(entry)
        key = [(e.name, e.up, e.last_error) for e in entries]
        if key != self._status_written and (entries or self._status_written):
            write_status(self.ws, entries)
            self._status_written = key

    def close(self) -> None:
        """Drop transport connections (unacknowledged messages go back to their queue)."""
        self.checker.close()
        self.outbox.close()
        for source in self.sources:
            source.close()
        for sink in self.transport_sinks.values():
            sink.close()

    def _finish_in_flight(self) -> None:
        """On the way out: record what the checker holds (a restart would recover it anyway)."""
        try:
            self._finish_checking()
        except Exception:  # the claims stay claimed: the next start finishes them
            log.exception("recording the last checked batch failed")
        self._checking.clear()
        try:
            self._archive_durable(keep=0)
        except Exception:  # recorded: the next start archives them
            log.exception("archiving the last recorded batch failed")
        self._recorded.clear()

    def _round(self, deliverer: Deliverer) -> bool:
        """Claim and process one batch per source while the deliverer writes what is due.

        The clearance sweep (3 once delivered, waits) runs when the inbox is empty, and while
        it is not, every `SWEEP_WHILE_BUSY_SECONDS`: its look-ups and commit cost the same for
        one list as for a hundred.
        """
        claims = self._claim_all()
        deliverer.kick()  # the batch's receipts and copies are committed
        self.publish_status()
        swept = 0
        now = time.monotonic()
        if not claims or now - self._swept_at >= SWEEP_WHILE_BUSY_SECONDS:
            self._swept_at = now
            swept = self._sweep()
            if swept:
                deliverer.kick()  # the moves' receipts
        if self._keeping_up:  # checked meanwhile: recorded now, not after the next batch
            self._keeping_up = False
            self._finish_checking()
            deliverer.kick()
        # The claims of batches whose commit is durable; once the input has run dry, all.
        self._archive_durable(keep=1 if claims or swept else 0)
        return bool(claims or swept)

    def _start_checkpoints(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.start()

    def _stop_checkpoints(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()

    def _deliverer(self) -> Deliverer:
        self._handing_over = True
        self._switch_was = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_was, LOCK_SWITCH_SECONDS))
        return Deliverer(self.deliver, on_delivered=self.wakeup.set).start()

    def _stop_deliverer(self, deliverer: Deliverer) -> None:
        """End the delivery thread's pass, then record what it handed over."""
        deliverer.stop()
        sys.setswitchinterval(self._switch_was)
        self._handing_over = False
        try:
            self.record_delivered()
        except Exception:  # still pending: written again, under the same names, next start
            log.exception("recording the last delivered files failed")

    def run_once(self) -> None:
        """Everything pending, until nothing is left to do now; each scheduled job runs once."""
        for source in self.sources:
            if isinstance(source, QueueSource):
                source.wait = ONCE_QUEUE_WAIT
        deliverer = None
        try:
            self.recover()
            self.scheduler.run_due(every_job=True)
            self._start_checkpoints()
            deliverer = self._deliverer()
            # Done when a round finds nothing and the deliverer had nothing since the last look
            # (a delivered copy to customs lets the sweep move its list on: another round).
            while self._round(deliverer) or deliverer.drain():
                pass
        finally:
            self._finish_in_flight()
            if deliverer is not None:
                self._stop_deliverer(deliverer)
            self._stop_checkpoints()
            self.publish_status()
            self.close()

    def run_forever(self, stop: threading.Event) -> None:
        from adapters.watch import InboxWatcher

        self.recover()
        self.checker.start()  # ready by the time a burst arrives
        self.scheduler.start()
        watcher = InboxWatcher(self.ws.inbox, self.wakeup)
        watcher.start()
        console = None
        if self.settings.console.enabled and is_console_worker():
            from hub.console.server import serve_console

            console = serve_console(self.ws, self.settings, self.wakeup)
        self._start_checkpoints()
        deliverer = self._deliverer()
        try:
            while not stop.is_set():
                try:
                    self.scheduler.run_due()
                    busy = self._round(deliverer)
                except Exception:  # keep serving other work; the error is in the log
                    log.exception("hub round failed")
                    busy = False
                if not busy:
                    self.wakeup.wait(self.settings.hub.poll_seconds)
                    self.wakeup.clear()
        finally:
            watcher.stop()
            self._finish_in_flight()
            self._stop_deliverer(deliverer)  # its pass ends before its sinks are closed
            self._stop_checkpoints()
            self.scheduler.shutdown()
            self.close()
            if console is not None:
                console.stop()


@dataclass
class _Batch:
    """Claims of one source on their way through: read, being checked or checked, then recorded."""

    source: Source
    claims: list[Any]
    items: list[Inbound]
    sent: list[Inbound] = field(default_factory=list)  # the items handed to the checker process
    remote: bool = False  # their checks are still to be collected from it
    # Files the checker process takes (claims) before it checks them: `claims` and `items`
    # are filled from its answer.
    reserved: list[Reservation] = field(default_factory=list)
    checker: int = -1  # its ticket in the checker processes, while `remote`


@dataclass
class _Recorded:
    """A committed batch's claims with their dispositions, archived once the commit is durable."""

    commit: int  # its number in the writer's LogSync (0 where commits are durable at once)
    source: Source
    pairs: list[tuple[Any, Disposition]]


@dataclass
class _Unfinished:
    """A recorded claim whose archive or quarantine failed, waiting for another try."""

    source: Source
    claim: Any
    disposition: Disposition
    tries: int


def _checkpointer(engine: Engine) -> Checkpointer | None:
    """A checkpoint thread for a SQLite database file (none for PostgreSQL or memory)."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    return Checkpointer(Path(engine.url.database))


def _unread(claim: Any, partner: Any, error: HubError) -> Inbound:
    item = Inbound(
        partner, claim.name, claim.original_name, b"", claim.received_at, size=claim.size
    )
    item.error = error
    return item


def _name(claim: Any) -> str:
    return str(getattr(claim, "name", claim))
