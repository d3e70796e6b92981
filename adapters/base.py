"""What the runner asks of every inbound transport, and the folder and queue inboxes in that shape."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from adapters.directory import Claim, DirectoryInbox, Reservation
from hub.clock import utcnow
from hub.workspace import Workspace

log = logging.getLogger(__name__)

STATUS_FILE = "adapters.json"  # in <workspace>/state/: read by `cebhub status`


class SourceClaim(Protocol):
    """One inbound item taken by a source and not yet archived or quarantined."""

    @property
    def partner_id(self) -> str: ...

    @property
    def name(self) -> str:
        """Unique and stable: stored as messages.claim, so a restart recognises it."""

    @property
    def original_name(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def received_at(self) -> datetime: ...


@dataclass
class AdapterStatus:
    """Whether one transport of one partner works, as `cebhub status` shows it."""

    name: str  # e.g. "sftp-pull:platform"
    partner_id: str | None
    transport: str
    direction: str  # "in" or "out"
    up: bool | None = None  # None: not tried yet
    last_error: str | None = None
    since: str | None = None  # when `up` last changed (ISO time)

    def update(self, up: bool, error: str | None) -> None:
        if up != self.up:
            self.since = utcnow().isoformat(timespec="seconds")
        self.up = up
        self.last_error = error if not up else None


class Source(Protocol):
    """An inbound transport, handled by the runner the same way whatever it is."""

    name: str

    def claim(self, limit: int) -> list[Any]:
        """Up to `limit` new items; never raises for an outage (it shows in status())."""

    def backlog(self) -> int:
        """Items known to wait after the last claim (none: the hub is keeping up), told
        without asking the transport again."""

    def read(self, claim: Any) -> bytes: ...

    def archive(self, claim: Any) -> None:
        """Called only after the transaction that recorded the claim has committed."""

    def quarantine(self, claim: Any, reason: str) -> None: ...

    def recover(self) -> list[Any]:
        """Claims a killed predecessor took and did not finish."""

    def status(self) -> list[AdapterStatus]: ...

    def close(self) -> None: ...


class FolderSource:
    """The watched folders of every directory partner (adapters.directory) as a Source."""

    name = "directory"

    def __init__(self, ws: Workspace, partners: Iterable[tuple[str, str]]) -> None:
        self.inbox = DirectoryInbox(ws, partners)
        self.partner_ids = set(self.inbox.ready)

    def claim(self, limit: int) -> list[Claim]:
        return self.inbox.claim(limit)

    def reserve(self, limit: int) -> list[Reservation]:
        """Files to claim, named but not taken: the checker process may take them."""
        return self.inbox.reserve(limit)

    def take(self, reserved: list[Reservation]) -> list[Claim]:
        return self.inbox.take(reserved)

    def backlog(self) -> int:
        """Ready files found and not yet reserved: none when the hub keeps up."""
        return self.inbox.backlog()

    def settle(self, reserved: list[Reservation]) -> None:
        self.inbox.settle(reserved)

    def read(self, claim: Claim) -> bytes:
        return claim.path.read_bytes()

    def archive(self, claim: Claim) -> None:
        self.inbox.archive(claim)

    def quarantine(self, claim: Claim, reason: str) -> None:
        self.inbox.quarantine(claim, reason)

    def recover(self) -> list[Claim]:
        # claims/ also holds the SFTP sources' downloads: those are theirs to finish
        return [c for c in self.inbox.recover() if c.partner_id in self.partner_ids]

    def stranded(self, in_flight: set[str], older_than: float) -> list[Claim]:
        return self.inbox.stranded(in_flight, older_than)

    def status(self) -> list[AdapterStatus]:
        return []  # a local folder has no outage of its own to report

    def close(self) -> None:
        pass


class QueueSource:
    """One AMQP partner's queue (adapters.amqp.AmqpInbox) as a Source: the ack is the archive."""

    def __init__(self, inbox: Any, *, wait: float = 0.0) -> None:
        self.inbox = inbox
        self.name = f"amqp-in:{inbox.partner_id}"
        self.wait = wait  # seconds a fetch waits for the broker's first message
        self._status = AdapterStatus(self.name, inbox.partner_id, "amqp", "in")
        self._full = False  # the last claim took as many as it asked for

    def claim(self, limit: int) -> list[Any]:
        from adapters.amqp import AmqpError

        try:
            claims = self.inbox.fetch(limit, wait=self.wait)
        except AmqpError as exc:
            log.warning("partner %s: %s", self.inbox.partner_id, exc)
            self._status.update(False, str(exc))
            return []
        self._status.update(True, None)
        self._full = len(claims) >= limit
        return claims

    def backlog(self) -> int:
        """Messages the broker has sent that no claim took yet, and one more after a full
        claim: the broker holds the rest back while `prefetch` messages are unacknowledged,
        so a full batch says nothing of what is left."""
        return self.inbox.buffered() + int(self._full)

    def read(self, claim: Any) -> bytes:
        return claim.body

    def archive(self, claim: Any) -> None:
        self.inbox.archive(claim)

    def quarantine(self, claim: Any, reason: str) -> None:
        self.inbox.quarantine(claim, reason)

    def recover(self) -> list[Any]:
        return []  # the broker redelivers what was never acknowledged

    def status(self) -> list[AdapterStatus]:
        return [self._status]

    def close(self) -> None:
        self.inbox.close()


def sink_status(name: str, partner_id: str, transport: str, sink: Any) -> AdapterStatus | None:
    """The status of a delivery sink that keeps `last_error` and `used` (None if never used)."""
    if not getattr(sink, "used", True):
        return None
    error = getattr(sink, "last_error", None)
    entry = AdapterStatus(name, partner_id, transport, "out")
    entry.update(error is None, error)
    return entry


# ---------------------------------------------------------------- shared with `cebhub status`


def status_file(ws: Workspace) -> Path:
    return ws.root / "state" / STATUS_FILE


def write_status(ws: Workspace, entries: list[AdapterStatus]) -> None:
    """Replace the status file atomically; the running hub calls this when something changed."""
    path = status_file(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "written_at": utcnow().isoformat(timespec="seconds"),
        "pid": os.getpid(),
        "adapters": [asdict(e) for e in entries],
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def read_status(ws: Workspace) -> list[dict[str, Any]]:
    """The adapters as the last hub run left them; [] before any run."""
    try:
        data = json.loads(status_file(ws).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return list(data.get("adapters", []))
