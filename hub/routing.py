"""Routing: who receives a receipt or a copy of a message, and in which envelope."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from lxml import etree
from sqlalchemy import Connection

from hub.config import Partner, Settings
from hub.delivery.outbox import delivery_row, enqueue, enqueue_many, file_name_for
from hub.envelope import build_envelope
from hub.errors import HubError
from hub.messages.receipts import Receipt

if TYPE_CHECKING:
    from hub.pipeline import Inbound

EnvelopeSigner = Callable[[etree._Element], etree._Element]

log = logging.getLogger(__name__)

# BaseSubscribe/status (spec §2.11): ALL = data and receipts, DATA = data, RET = receipts.
SUBSCRIBE_RECEIPTS = frozenset({"ALL", "RET"})
SUBSCRIBE_DATA = frozenset({"ALL", "DATA"})


@dataclass(frozen=True)
class Queued:
    """One file to queue for a partner, collected so a message's files go in one statement."""

    partner: Partner
    kind: str
    msg_type: str
    guid: str
    payload: bytes
    message_id: int | None
    now: datetime
    receiver_id: str | None
    stored: bool = False  # the payload is the stored body of message `message_id`

    @property
    def fallback_guid(self) -> str:
        """The name's guid when the partner already has a file of this guid."""
        return f"{self.guid}_{self.message_id}"


class Router:
    """Turns receipts and accepted messages into delivery rows of the same transaction."""

    def __init__(
        self,
        settings: Settings,
        sign_envelope: EnvelopeSigner | None = None,
        *,
        root: Path | None = None,
    ) -> None:
        self.settings = settings
        self.sign_envelope = sign_envelope
        self.root = root  # the workspace: its reference files (the tax table) for the clearance

    def wrap(
        self, payload: bytes, msg_type: str, guid: str, *, receiver_id: str | None, now: datetime
    ) -> bytes:
        """The payload as it goes on the wire: bare, or in a hub-signed DxpMsg to `receiver_id`."""
        if receiver_id is None:
            return payload
        root = build_envelope(
            payload,
            sender_id=self.settings.hub.dxp_id,
            receiver_id=receiver_id,
            msg_type=msg_type,
            file_name=file_name_for(msg_type, guid),
            now=now,
        )
        if self.sign_envelope is not None:
            root = self.sign_envelope(root)
        return etree.tostring(root, encoding="UTF-8", xml_declaration=True)

    @staticmethod
    def envelope_receiver(partner: Partner) -> str | None:
        if partner.envelope == "dxp":
            return partner.dxp_id or partner.id
        return None

    def _enqueue(
        self, conn: Connection, partner: Partner, kind: str, msg_type: str, guid: str,
        payload: bytes, message_id: int | None, now: datetime, receiver_id: str | None,
        pending: list[Queued] | None = None, *, stored: bool = False,
    ) -> None:  # fmt: skip
        """Queue one file for `partner`; with `pending`, only collect it for `flush`.

        `stored`: `payload` is exactly the stored body of message `message_id` (a routed copy).
        """
        q = Queued(partner, kind, msg_type, guid, payload, message_id, now, receiver_id, stored)
        if pending is not None:
            pending.append(q)
            return
        self._insert(conn, q)

    def _body(self, q: Queued, guid: str) -> bytes | None:
        """The row's body: None for the message's own stored bytes, which the row then refers
        to by its message_id (hub.delivery.outbox.BODY); else the bytes as they go out."""
        if q.stored and q.receiver_id is None:
            return None
        return self.wrap(q.payload, q.msg_type, guid, receiver_id=q.receiver_id, now=q.now)

    def _insert(self, conn: Connection, q: Queued, names: tuple[str, ...] | None = None) -> None:
        # One statement in the common case: the insert itself tells whether the name is taken.
        for name_guid in names or (q.guid, q.fallback_guid):
            body = self._body(q, name_guid)
            inserted = enqueue(
                conn, partner_id=q.partner.id, kind=q.kind, msg_type=q.msg_type, guid=name_guid,
                body=body, message_id=q.message_id, now=q.now,
            )  # fmt: skip
            if inserted is not None:
                return
            # another message reused this guid: keep both files apart
        raise HubError(
            f"{q.partner.id} already has {file_name_for(q.msg_type, q.guid)} and its "
            f"{q.message_id} variant; not queued twice"
        )

    def flush(self, conn: Connection, pending: list[Queued]) -> None:
        """Insert the collected files in one statement; a taken name gets the fallback name."""
        rows = [
            delivery_row(
                partner_id=q.partner.id,
                kind=q.kind,
                msg_type=q.msg_type,
                guid=q.guid,
                body=self._body(q, q.guid),
                message_id=q.message_id,
                now=q.now,
            )
            for q in pending
        ]
        for q, went_in in zip(pending, enqueue_many(conn, rows), strict=True):
            if not went_in:
                self._insert(conn, q, names=(q.fallback_guid,))
        pending.clear()

    def subscribers(self, item: Inbound, wants: frozenset[str]) -> list[Partner]:
        """Partners the message's `BaseSubscribe` entries name (by DXP id) for `wants`.

        Only a message that passed every check counts: an unverified one could name anyone.
        """
        if item.error is not None or not item.readable:
            return []
        found: dict[str, Partner] = {}
        for sub in item.subscriptions():
            if sub.status not in wants:
                continue
            partner = next(
                (p for p in self.settings.partners.values() if p.dxp_id == sub.dxp_address),
                None,
            )
            if partner is None:
                log.info(
                    "%s %s: BaseSubscribe dxpAddress %r is no partner's DXP id; ignored",
                    item.msg_type.root, item.guid, sub.dxp_address,
                )  # fmt: skip
                continue
            if partner.id != item.partner.id:
                found.setdefault(partner.id, partner)
        return list(found.values())

    def send_receipt(
        self,
        conn: Connection,
        item: Inbound,
        message_id: int | None,
        receipt: Receipt,
        now: datetime,
        pending: list[Queued] | None = None,
    ) -> None:
        """A receipt goes to the sender, in an envelope if the sender used one, and to the
        message's `RET` / `ALL` subscribers."""
        receiver = (
            item.envelope.sender_id if item.envelope else self.envelope_receiver(item.partner)
        )
        self._enqueue(
            conn, item.partner, "receipt", receipt.msg_type, receipt.guid, receipt.body,
            message_id, now, receiver, pending,
        )  # fmt: skip
        for partner in self.subscribers(item, SUBSCRIBE_RECEIPTS):
            self._enqueue(
                conn, partner, "receipt", receipt.msg_type, receipt.guid, receipt.body,
                message_id, now, self.envelope_receiver(partner), pending,
            )  # fmt: skip

    def route_copies(
        self, conn: Connection, item: Inbound, message_id: int, now: datetime,
        pending: list[Queued] | None = None,
    ) -> None:  # fmt: skip
        """An accepted declaration goes, exactly as signed, to the endpoints of its route and
        to its `DATA` / `ALL` subscribers, once to each.

        `item.body` is what `message_id` stored: a copy without an envelope refers to it.
        """
        assert item.msg_type is not None and item.body is not None
        targets = {t.id: t for t in self.settings.route_targets(item.msg_type.root)}
        for partner in self.subscribers(item, SUBSCRIBE_DATA):
            targets.setdefault(partner.id, partner)
        for target in targets.values():
            if target.id == item.partner.id:
                continue
            self._enqueue(
                conn, target, "route", item.msg_type.root, item.guid or str(message_id),
                item.body, message_id, now, self.envelope_receiver(target), pending, stored=True,
            )  # fmt: skip
