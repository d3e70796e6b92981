"""The checks of an inbound message that need no database: parse, unwrap, identify, verify, validate."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree

from hub import codes, xmlsafe
from hub.config import Partner, Role, Settings, SignaturePolicy
from hub.constants import CEB_NS
from hub.envelope import DxpInfo, is_envelope, read_envelope
from hub.errors import (
    EnvelopeError,
    FormatError,
    HubError,
    MessageRejected,
    NotPermitted,
    OversizeError,
)
from hub.logsetup import update_context
from hub.messages import records as rec
from hub.messages.types import HANDLED, Kind, MessageType, by_root
from hub.metrics import stage
from hub.workspace import Workspace

DECIDING_ROLES = (Role.CUSTOMS, Role.INSPECTION)  # partners whose CEB622 carries a decision


@dataclass
class Inbound:
    """One file from a partner on its way through the pipeline."""

    partner: Partner
    claim: str  # unique name of the claim; a restart recognises it
    file_name: str  # as the partner named it
    data: bytes
    received_at: datetime
    sha256: str = ""
    size: int = -1  # of the file, when it was not read
    root: etree._Element | None = None  # the CEB message that is verified and processed
    body: bytes | None = None  # its bytes, exactly as received (inside the envelope if any)
    envelope: DxpInfo | None = None
    envelope_root: etree._Element | None = None  # the DxpMsg, when the message came in one
    msg_type: MessageType | None = None
    guid: str | None = None
    signed_by: str | None = None
    error: HubError | None = None
    records: list[rec.Record] | None = None  # extracted once, by the permission stage
    subscribed: list[rec.Subscription] | None = None  # its BaseSubscribe entries, read once

    def extracted(self) -> list[rec.Record]:
        """The message's records, extracted on first use and kept."""
        if self.records is None:
            assert self.root is not None and self.msg_type is not None
            self.records = rec.extract(self.root, self.msg_type)
        return self.records

    def subscriptions(self) -> list[rec.Subscription]:
        """The message's `BaseSubscribe` entries, read on first use and kept."""
        if self.subscribed is None:
            assert self.root is not None
            self.subscribed = rec.subscriptions_of(self.root)
        return self.subscribed

    @property
    def readable(self) -> bool:
        """Whether the message was read far enough to have records (here or by the checker)."""
        return self.msg_type is not None and (self.root is not None or self.records is not None)

    def __post_init__(self) -> None:
        if not self.sha256:
            self.sha256 = hashlib.sha256(self.data).hexdigest()
        if self.size < 0:
            self.size = len(self.data)

    @property
    def type_name(self) -> str:
        return self.msg_type.root if self.msg_type else "Unknown"

    @property
    def cop_msg_id(self) -> str:
        """What the partner knows this message by, for CEB900's oriCopMsgId."""
        if self.envelope and self.envelope.cop_msg_id:
            return self.envelope.cop_msg_id
        return self.guid or self.file_name


Verifier = Callable[[Inbound], None]  # raises MessageRejected / FormatError; sets signed_by
Validator = Callable[[etree._Element], None]  # raises SchemaError


def too_big(size: int, limit: int) -> OversizeError | None:
    """Why a file of `size` bytes is refused unread, if it is: it is over the limit."""
    if size > limit:
        return OversizeError(f"file of {size} bytes is over the limit of {limit} bytes")
    return None


def unreadable(exc: OSError) -> HubError:
    """The error a claim that cannot be read is answered with; the partner sees no path of ours."""
    return HubError(f"the file could not be read: {exc.strerror or type(exc).__name__}")


@dataclass
class Stages:
    """The pluggable checks: schema validation and signature verification."""

    validate: Validator
    validate_envelope: Validator
    verify: Verifier | None = None
    extra: list[Callable[[Inbound], None]] = field(default_factory=list)


# ---------------------------------------------------------------- stages before the transaction


def parse_stage(item: Inbound, settings: Settings) -> None:
    item.root = xmlsafe.parse(
        item.data, max_bytes=settings.hub.max_message_bytes, max_depth=settings.hub.max_depth
    )
    item.body = item.data


def unwrap_stage(item: Inbound, settings: Settings, stages: Stages) -> None:
    assert item.root is not None
    if not is_envelope(item.root):
        return
    stages.validate_envelope(item.root)
    info, payload = read_envelope(item.root)
    item.envelope, item.envelope_root = info, item.root
    expected = item.partner.dxp_id
    if expected and info.sender_id != expected:
        raise EnvelopeError(
            f"SenderId {info.sender_id!r} is not partner {item.partner.id}'s DXP id {expected!r}",
            return_status=codes.ADDRESS_MISMATCH,
            path="DxpMsg/TransInfo/SenderId",
        )
    if settings.hub.dxp_id not in info.receiver_ids:
        raise EnvelopeError(
            f"ReceiverId {', '.join(info.receiver_ids)!r} does not name this hub ({settings.hub.dxp_id})",
            return_status=codes.RECEIVER_UNKNOWN,
            path="DxpMsg/TransInfo/ReceiverIds",
        )
    item.root = xmlsafe.parse(
        payload, max_bytes=settings.hub.max_message_bytes, max_depth=settings.hub.max_depth
    )
    item.body = payload


def identify_stage(item: Inbound) -> None:
    assert item.root is not None
    tag = item.root.tag if isinstance(item.root.tag, str) else ""
    ns, _, name = tag.rpartition("}")
    if ns.lstrip("{") != CEB_NS:
        raise FormatError(f"root element {name or tag!r} is not in the CEB namespace {CEB_NS}")
    msg_type = by_root(name)
    if msg_type is None:
        raise FormatError(f"{name!r} is not a CEB import message")
    item.guid = item.root.get("guid")
    # Besides declarations, customs and inspection send decisions: a CEB622 naming a list.
    deciding = msg_type.kind == Kind.RECEIPT and item.partner.role in DECIDING_ROLES
    if not (msg_type.kind == Kind.DECLARATION or deciding) or msg_type.root not in HANDLED:
        item.msg_type = msg_type
        raise FormatError(f"{name} is not a message the hub accepts from partners")
    item.msg_type = HANDLED[msg_type.root]


def permission_stage(item: Inbound) -> None:
    """The declarant of every record, and the transmitter, must be the sending partner."""
    assert item.root is not None and item.msg_type is not None
    allowed = set(item.partner.codes)
    transfer = rec.transfer_of(item.root)
    if transfer is not None and transfer.cop_code not in allowed:
        raise NotPermitted(
            item.msg_type,
            f"BaseTransfer copCode {transfer.cop_code!r} is not a code of partner {item.partner.id}",
        )
    fields = item.msg_type.declarant
    if not fields:
        return
    for record in item.extracted():
        if not any(record.get(f) in allowed for f in fields):
            names = " / ".join(f"{f} {record.get(f)!r}" for f in fields)
            raise NotPermitted(
                item.msg_type,
                f"record {record.index}: {names} is not a code of partner {item.partner.id}",
            )


def count_stage(item: Inbound) -> None:
    """Over the type's record limit, every record gets the type's too-many code.

    Runs before the XSD, whose maxOccurs would otherwise turn this into a bare CEB900.
    """
    assert item.root is not None and item.msg_type is not None
    count = rec.count_records(item.root, item.msg_type)
    if count > item.msg_type.max_records:
        raise MessageRejected(
            item.msg_type.codes.too_many,
            f"{count} {item.msg_type.record} records in one message; at most {item.msg_type.max_records}",
        )


def check(item: Inbound, settings: Settings, stages: Stages) -> None:
    """Every check that needs no database; raises the error that chooses the receipt."""
    with stage("parse"):  # timed for /metrics; also names the stage in the log context
        parse_stage(item, settings)
        unwrap_stage(item, settings, stages)
        identify_stage(item)
    update_context(guid=item.guid)
    policy = item.partner.signature_policy(item.type_name)
    if stages.verify is not None and policy != SignaturePolicy.OFF:
        with stage("verify"):
            stages.verify(item)
    assert item.root is not None
    with stage("validate"):
        count_stage(item)
        stages.validate(item.root)
        permission_stage(item)
        for extra in stages.extra:
            extra(item)


def build_stages(ws: Workspace, settings: Settings) -> Stages:
    """The hub's own checks: its XSDs and the partners' registered certificates."""
    from hub import schemas, trust

    return Stages(
        validate=schemas.validate,
        validate_envelope=schemas.validate_envelope,
        verify=trust.Verifier(ws, settings),
    )
