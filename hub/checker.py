"""The checks in a second process: a batch is parsed, verified and validated while the last is recorded."""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.directory import Reservation, take_file
from hub import metrics
from hub.errors import HubError, MessageRejected
from hub.helper_process import HelperProcess
from hub.messages import records as rec
from hub.messages.types import HANDLED, by_root

if TYPE_CHECKING:
    from hub.checks import Inbound
    from hub.config import Settings
    from hub.envelope import DxpInfo

log = logging.getLogger(__name__)

# A batch smaller than this is checked in the hub's own process: handing it over would cost
# more than it saves, and a hub that only ever sees a few files never starts the process.
MIN_REMOTE_BATCH = 16
# Batches a checker process may hold. With one, it waited for the hub's main thread to hand
# it the next (35 % of its time at 10,000 messages) while that thread waited for its answers
# (13 % of the thread's): each stood still while the other finished its half of a round.
# Requests of reserved files are a few hundred bytes a file, so the second waits in the pipe
# without blocking the hub however large the answer before it (docs/performance.md, round 15).
QUEUED_BATCHES = 2


@dataclass
class Taken:
    """A file the checker process claimed for the hub: its size, bytes and digest. `data` is
    None when the file was refused unread (over the limit, or unreadable: `Checked.error`)."""

    size: int
    data: bytes | None
    sha256: str = ""


@dataclass
class Checked:
    """What recording a checked message needs, without its tree (which stays in the checker)."""

    type_name: str | None
    handled: bool  # the type is the handler's (a declaration, or a decision from customs)
    guid: str | None
    signed_by: str | None
    envelope: DxpInfo | None
    payload: bytes | None  # the message inside an envelope; None when it is the file itself
    records: list[rec.Record] | None
    subscriptions: list[rec.Subscription] | None
    error: HubError | None
    stage_seconds: list[tuple[str, float]]
    trace: str | None = None  # an unexpected exception's traceback, for the hub's log
    taken: Taken | None = None  # the file, when the checker process claimed it

    @classmethod
    def of(cls, item: Inbound, stage_seconds: list[tuple[str, float]], trace=None) -> Checked:
        records = subscriptions = None
        answered_by_record = item.error is None or isinstance(item.error, MessageRejected)
        if item.root is not None and item.msg_type is not None and answered_by_record:
            try:  # a rejected message's receipt names its records, when they can be read
                records = item.extracted()
                subscriptions = item.subscriptions()
                for record in records:  # the JSON the hub stores, encoded here and not there
                    record.encode()
            except Exception:  # a message too broken to read is answered without them
                records = subscriptions = None
        msg_type = item.msg_type
        return cls(
            type_name=msg_type.root if msg_type is not None else None,
            handled=msg_type is not None and HANDLED.get(msg_type.root) is msg_type,
            guid=item.guid,
            signed_by=item.signed_by,
            envelope=item.envelope,
            payload=item.body if item.body is not item.data else None,
            records=records,
            subscriptions=subscriptions,
            error=item.error,
            stage_seconds=stage_seconds,
            trace=trace,
        )

    def apply_to(self, item: Inbound) -> None:
        """Give `item` what the check found, as if it had been checked in this process."""
        if self.type_name is not None:
            handled = HANDLED.get(self.type_name) if self.handled else None
            item.msg_type = handled or by_root(self.type_name)
        item.guid = self.guid
        item.signed_by = self.signed_by
        item.envelope = self.envelope
        item.body = self.payload if self.payload is not None else item.data
        item.records = self.records
        item.subscribed = self.subscriptions
        item.error = self.error
        if self.trace:
            log.error(
                "checking %s from %s failed:\n%s", item.file_name, item.partner.id, self.trace
            )
        for name, seconds in self.stage_seconds:
            metrics.observe_stage(name, seconds)


class Checker:
    """The checker processes of a hub (`[hub] check_processes`), started the first time a
    batch is big enough.

    Each holds up to `QUEUED_BATCHES` batches: the one it checks and the next, waiting in its
    pipe, so that it goes on to that one as soon as it has answered, whatever the hub's main
    thread is doing. `submit` hands a batch to the process holding fewest and gives a ticket,
    `collect` takes the answer for a ticket; a process answers in the order it was given,
    and the hub collects in that order. Until a process is ready, batches are checked in the
    hub's own process; if one dies, every batch it held is checked here and a new process is
    started for later ones.
    """

    def __init__(self, ws_root: Path, settings: Settings, processes: int = 1) -> None:
        init = (str(ws_root), settings)
        self._processes = [HelperProcess(__name__, "setup", init) for _ in range(processes)]
        # Handing a batch over delays its recording by a round, which only pays while the hub
        # is behind: then its batches are full. A hub keeping up checks its batches itself.
        self.min_batch = max(MIN_REMOTE_BATCH, settings.hub.batch_size // 2)
        self._held = [0] * processes  # batches handed to each process and not yet collected
        self._generation = [0] * processes  # a process's restarts: tickets of an older one fail
        self._tickets: dict[int, tuple[int, int]] = {}  # ticket: (process, generation)
        self._next_ticket = 0

    @property
    def depth(self) -> int:
        """How many batches can be in the checker processes at once."""
        return len(self._processes) * QUEUED_BATCHES

    def held(self) -> list[int]:
        """The batches each process holds (tests)."""
        return list(self._held)

    def wanted(self, batch: int, keeping_up: bool = False) -> bool:
        """Whether a batch of this size is worth a checker process. A hub keeping up records
        a batch in the round that took it, so handing over costs it no round: every batch
        but the smallest goes, and the hub's own process does other work meanwhile."""
        least = min(MIN_REMOTE_BATCH, self.min_batch) if keeping_up else self.min_batch
        return batch >= least

    def available(self, batch: int, keeping_up: bool = False) -> bool:
        """Whether a batch of this size can go to a checker process (starting them if need be)."""
        return self.wanted(batch, keeping_up) and self._free() is not None

    def _free(self) -> int | None:
        """The ready process holding fewest batches, if one has room for another."""
        free = None
        for i, process in enumerate(self._processes):
            held = self._held[i]
            fewer = held < QUEUED_BATCHES and (free is None or held < self._held[free])
            if fewer and process.ready():
                free = i
        return free

    def start(self) -> None:
        """Start the processes now (a long-running hub), rather than at the first big batch."""
        for process in self._processes:
            process.start()

    def wait_ready(self, timeout: float) -> bool:
        """Start the processes and wait until they take batches (for tests and benchmarks)."""
        return bool(self._processes) and all(p.ready(timeout) for p in self._processes)

    def submit(self, items: list[Inbound]) -> int:
        """Hand a batch read here to a free process (`available`); returns its number."""
        return self._send([(i.partner.id, i.claim, i.data, i.received_at, None) for i in items])

    def submit_taking(self, reserved: list[Reservation]) -> int:
        """Hand over files still to be claimed: the process takes, reads and checks them, so
        that the renames and reads cost the hub's own process nothing."""
        return self._send([(r.partner_id, r.name, None, r.received_at, r) for r in reserved])

    def _send(self, work: list[tuple]) -> int:
        number = self._free()
        assert number is not None, "submit only when available"
        self._held[number] += 1
        ticket = self._next_ticket
        self._next_ticket += 1
        self._tickets[ticket] = (number, self._generation[number])
        with contextlib.suppress(OSError):  # collect finds the process gone and checks here
            self._processes[number].send(work)
        return ticket

    def process_of(self, ticket: int) -> int:
        """The process a ticket's batch was handed to."""
        return self._tickets[ticket][0]

    def collect(
        self, ticket: int, items: list[Inbound], check_here: Callable[[list[Inbound]], None]
    ) -> None:
        """Apply the submitted batch's results; if the process failed, check the batch here."""
        results = self._receive(ticket, len(items), "checking")
        if results is None:
            check_here(items)
            return
        for item, checked in zip(items, results, strict=True):
            checked.apply_to(item)

    def collect_taken(self, ticket: int, count: int) -> list[Checked | None] | None:
        """The answer to `submit_taking`, one per reserved file (None: gone before it was
        taken); None if the process failed, and the hub must take and check them itself."""
        return self._receive(ticket, count, "taking")

    def _receive(self, ticket: int, count: int, doing: str) -> list | None:
        number, generation = self._tickets.pop(ticket)
        if generation != self._generation[number]:  # it failed with an earlier batch
            log.warning("the checker process had failed; %s %d here", doing, count)
            return None
        self._held[number] -= 1
        process = self._processes[number]
        try:
            results = process.receive()
            if len(results) != count:
                raise ValueError(f"{len(results)} answers for {count} files")
        except Exception as exc:  # gone, or an answer that cannot be read
            log.warning("the checker process failed (%s); %s %d here", exc, doing, count)
            self._restart(number)
            return None
        return results

    def _restart(self, number: int) -> None:
        """Drop a failed process and every batch it held; a new one starts when next wanted."""
        self._processes[number].close()
        self._generation[number] += 1
        self._held[number] = 0

    def kill(self, ticket: int) -> None:
        """End the process holding a ticket's batch at once (tests: a checker that dies)."""
        self._processes[self.process_of(ticket)].kill()

    def started(self) -> bool:
        return any(p.started for p in self._processes)

    def close(self) -> None:
        for number in range(len(self._processes)):
            self._restart(number)


# ---------------------------------------------------------------- in the checker process


def setup(init: tuple[str, Settings]) -> Callable[[list], list[Checked]]:
    """The checker process's work: the workspace and settings, then one batch after another."""
    from hub.checks import build_stages
    from hub.workspace import Workspace

    ws_root, settings = init
    stages = build_stages(Workspace(Path(ws_root)), settings)
    return lambda work: check_batch(work, settings, stages)


def check_batch(
    work: list[tuple[str, str, bytes | None, Any, Reservation | None]], settings: Settings, stages
) -> list[Checked | None]:
    from hub.checks import Inbound, check

    new_batch = getattr(stages.verify, "new_batch", None)
    if new_batch is not None:
        new_batch()
    out: list[Checked | None] = []
    limit = settings.hub.max_message_bytes
    for partner_id, claim, data, received_at, reserved in work:
        taken = None
        if reserved is not None:
            taken, error = take_and_read(reserved, limit)
            if taken is None or error is not None:  # gone, or refused unread
                out.append(_unread(taken, error))
                continue
            data = taken.data
        assert data is not None
        item = Inbound(settings.partners[partner_id], claim, claim, data, received_at)
        seconds: list[tuple[str, float]] = []
        trace = None
        with metrics.keep_stage_seconds(seconds):
            try:
                check(item, settings, stages)
            except HubError as exc:
                item.error = exc
            except Exception as exc:  # a bug must not take the batch down with it
                trace = traceback.format_exc()
                item.error = HubError(f"internal error while checking: {exc!r}")
        checked = Checked.of(item, seconds, trace)
        if taken is not None:
            taken.sha256 = item.sha256
            checked.taken = taken
        out.append(checked)
    return out


def take_and_read(r: Reservation, limit: int) -> tuple[Taken | None, HubError | None]:
    """Claim a reserved file and read it: (None, None) when it was gone; a file over the
    limit is not read, and one that cannot be read comes with the error it is answered with."""
    from hub.checks import too_big, unreadable

    size = take_file(r)
    if size is None:
        return None, None
    refused = too_big(size, limit)
    if refused is not None:
        return Taken(size, None), refused
    try:
        with open(r.dst, "rb") as f:
            data = f.read()
    except OSError as exc:
        return Taken(size, None), unreadable(exc)
    return Taken(len(data), data), None


def _unread(taken: Taken | None, error: HubError | None) -> Checked | None:
    if taken is None:
        return None
    return Checked(None, False, None, None, None, None, None, None, error, [], taken=taken)
