"""The hub at work: adapters, pipeline and delivery in one loop, for `cebhub run`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from adapters.directory import Claim, DirectoryInbox, DirectoryOutbox
from hub import config
from hub.config import Settings
from hub.delivery.worker import Sink, deliver_due
from hub.errors import OversizeError
from hub.faults import crash_point
from hub.pipeline import Disposition, Inbound, Processor, Stages
from hub.routing import Router
from hub.store.db import engine_for
from hub.workspace import Workspace

log = logging.getLogger(__name__)


def build_stages(ws: Workspace, settings: Settings) -> Stages:
    from hub import schemas, trust

    return Stages(
        validate=schemas.validate,
        validate_envelope=schemas.validate_envelope,
        verify=trust.Verifier(ws, settings),
    )


def envelope_signer(ws: Workspace):
    from hub import trust

    return trust.hub_envelope_signer(ws)


class Hub:
    """One hub process over one workspace."""

    def __init__(self, ws: Workspace, settings: Settings | None = None) -> None:
        self.ws = ws
        self.settings = settings or config.load(ws)
        self.engine = engine_for(self.settings, ws)
        self.router = Router(self.settings, sign_envelope=envelope_signer(ws))
        self.processor = Processor(self.settings, build_stages(ws, self.settings), self.router)
        folder_partners = [
            (p.id, p.ready) for p in self.settings.partners.values() if p.transport == "directory"
        ]
        self.inbox = DirectoryInbox(ws, folder_partners)
        self.outbox = DirectoryOutbox(ws)
        self.sinks: Mapping[str, Sink] = {}
        self.wakeup = threading.Event()

    # ------------------------------------------------------------ one round of work

    def read(self, claim: Claim) -> Inbound:
        partner = self.settings.partners[claim.partner_id]
        limit = self.settings.hub.max_message_bytes
        if claim.size > limit:  # never read a file we will refuse anyway
            item = Inbound(
                partner, claim.name, claim.original_name, b"", claim.received_at, size=claim.size
            )
            item.error = OversizeError(
                f"file of {claim.size} bytes is over the limit of {limit} bytes"
            )
            return item
        data = claim.path.read_bytes()
        return Inbound(partner, claim.name, claim.original_name, data, claim.received_at)

    def process_claims(self, claims: list[Claim]) -> list[Disposition]:
        known = [c for c in claims if c.partner_id in self.settings.partners]
        by_name = {c.name: c for c in known}
        dispositions = self.processor.process(self.engine, [self.read(c) for c in known])
        crash_point("after-commit")
        for d in dispositions:
            claim = by_name[d.inbound.claim]
            if d.quarantine:
                self.inbox.quarantine(claim, d.reason)
            else:
                self.inbox.archive(claim)
        return dispositions

    def deliver(self) -> int:
        return deliver_due(self.engine, self.sinks, self.outbox, self.settings.delivery)

    def recover(self) -> int:
        """Finish the claims a killed predecessor left behind."""
        claims = self.inbox.recover()
        batch = self.settings.hub.batch_size
        for i in range(0, len(claims), batch):
            self.process_claims(claims[i : i + batch])
        return len(claims)

    def step(self) -> bool:
        """Claim and process one batch, then deliver what is due; False when idle."""
        claims = self.inbox.claim(self.settings.hub.batch_size)
        if claims:
            crash_point("after-claim")
            self.process_claims(claims)
        delivered = self.deliver()
        return bool(claims or delivered)

    def run_once(self) -> None:
        """Everything pending, until nothing is left to do now."""
        self.recover()
        while self.step():
            pass

    def run_forever(self, stop: threading.Event) -> None:
        from adapters.watch import InboxWatcher

        self.recover()
        watcher = InboxWatcher(self.ws.inbox, self.wakeup)
        watcher.start()
        try:
            while not stop.is_set():
                try:
                    busy = self.step()
                except Exception:  # keep serving other work; the error is in the log
                    log.exception("hub round failed")
                    busy = False
                if not busy:
                    self.wakeup.wait(self.settings.hub.poll_seconds)
                    self.wakeup.clear()
        finally:
            watcher.stop()
