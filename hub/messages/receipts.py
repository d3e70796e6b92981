"""Building spec-conformant receipts: the type receipts and the CEB900 format receipt."""

from __future__ import annotations

import os
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree

from hub.clock import stamp17
from hub.constants import CEB_NS
from hub.messages.types import FORMAT_RECEIPT, MessageType

RETURN_INFO_MAX = 1000  # C..1000 in the business receipts
FORMAT_INFO_MAX = 5000  # C0..5000 in CEB900
_RANDOM_BITS = 74  # of a version-7 UUID: 12 after the version, 62 after the variant
_LOW = (1 << 62) - 1
_guid_bits = random.Random()  # seeded from the OS; ours alone, so no random.seed() reaches it
_guid_lock = threading.Lock()
_last_guid = (0, 0)  # (milliseconds, random bits) of the last guid made: the next is greater


def _after_fork() -> None:
    global _last_guid
    _guid_bits.seed()  # a forked child must not repeat ours
    _last_guid = (0, 0)


os.register_at_fork(after_in_child=_after_fork)


def new_guid() -> str:
    """A new guid for something the hub writes: a version-7 UUID (RFC 9562), upper case.

    Its first 48 bits are the Unix time in milliseconds and 74 of the others random; within
    a millisecond each guid is the last one plus one (RFC 9562's monotonic random), so the
    guids a process makes sort in the order it made them. The outbox file names carry them: a
    partner that reads its files oldest first (by time, then name) reads a message's receipts
    in order even where the filesystem gives the files made in one clock tick one time. The
    indexes on receipt guids and file names grow at their end. The random bits come from a
    generator seeded from the OS (and again in a forked child): a guid needs to be unique,
    not secret, and reading the OS's random source was a system call each.
    """
    global _last_guid
    made = (time.time_ns() // 1_000_000, _guid_bits.getrandbits(_RANDOM_BITS))
    with _guid_lock:
        if made <= _last_guid:
            ms, bits = _last_guid
            bits += 1
            made = (ms + 1, 0) if bits >> _RANDOM_BITS else (ms, bits)
        _last_guid = made
    ms, bits = made
    value = ms << 80 | 0x7 << 76 | (bits >> 62) << 64 | 0x2 << 62 | bits & _LOW
    h = f"{value:032X}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _el(parent: etree._Element, name: str, text: str) -> None:
    etree.SubElement(parent, f"{{{CEB_NS}}}{name}").text = text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class ReceiptEntry:
    """One `…Return` entity: the record it answers and the status given."""

    return_status: str
    return_info: str
    keys: dict[str, str] = field(default_factory=dict)  # receipt key fields by spec name
    guid: str = field(default_factory=new_guid)


@dataclass
class Receipt:
    """A receipt message ready to store and deliver."""

    msg_type: str
    guid: str
    body: bytes
    entries: list[ReceiptEntry]


RECORD_KEY_MAX = 128  # receipts.record_key
STORED_INFO_MAX = 4000  # receipts.return_info


def receipt_row(
    receipt: Receipt,
    entry: ReceiptEntry,
    *,
    partner_id: str,
    message_id: int | None,
    record_table: str | None,
    record_id: int | None,
    record_key: str,
    record_guid: str | None,
    when: datetime,
) -> dict:
    """The `receipts` row of one entry of `receipt`: sent to `partner_id` about the record
    (`record_table`, `record_id`, its business key) of message `message_id`."""
    return dict(
        guid=receipt.guid,
        msg_type=receipt.msg_type,
        partner_id=partner_id,
        message_id=message_id,
        record_table=record_table,
        record_id=record_id,
        record_key=record_key[:RECORD_KEY_MAX] or None,
        record_guid=record_guid,
        return_status=entry.return_status,
        return_info=entry.return_info[:STORED_INFO_MAX],
        returned_at=when,
    )


def _document(root_name: str, guid: str) -> etree._Element:
    return etree.Element(f"{{{CEB_NS}}}{root_name}", nsmap={None: CEB_NS}, guid=guid, version="1.0")


def _serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True, standalone=True)


# Characters XML 1.0 cannot carry (lxml refuses them); a receipt shows U+FFFD instead.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# Anything `_text` changes: most values (codes, numbers, names) have none of it.
_TO_ESCAPE = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: str) -> str:
    """Element text escaped exactly as lxml serialises it."""
    if not _TO_ESCAPE.search(value):
        return value
    if _NOT_XML.search(value):
        value = _NOT_XML.sub("\ufffd", value)
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def build_receipt(
    msg_type: MessageType, entries: list[ReceiptEntry], *, when: datetime | None = None
) -> Receipt:
    """The receipt answering records of `msg_type` (e.g. CEB312 for CEB311).

    Written as text, not built as a tree: a receipt is a flat, fixed shape, and the hub
    writes several per message (the same bytes lxml would give: tests compare the two).
    """
    assert msg_type.receipt and msg_type.receipt_entity, msg_type.root
    guid = new_guid()
    stamp = stamp17(when)
    entity = msg_type.receipt_entity
    parts = [
        "<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n",
        f'<{msg_type.receipt} xmlns="{CEB_NS}" guid="{guid}" version="1.0">',
    ]
    for entry in entries:
        parts.append(f"<{entity}><guid>{_text(entry.guid)}</guid>")
        for name in msg_type.receipt_keys:
            value = entry.keys.get(name)
            if value:  # optional keys are left out rather than sent empty
                parts.append(f"<{name}>{_text(value)}</{name}>")
        info = _text(_clip(entry.return_info, RETURN_INFO_MAX))
        parts.append(
            f"<returnStatus>{_text(entry.return_status)}</returnStatus>"
            f"<returnTime>{stamp}</returnTime><returnInfo>{info}</returnInfo></{entity}>"
        )
    parts.append(f"</{msg_type.receipt}>")
    return Receipt(msg_type.receipt, guid, "".join(parts).encode("utf-8"), entries)


def build_format_receipt(
    return_status: str,
    return_info: str,
    *,
    ori_cop_msg_id: str,
    ori_message_type: str,
    when: datetime | None = None,
) -> Receipt:
    """CEB900: the answer to a file that is not a valid CEB message."""
    guid = new_guid()
    root = _document(FORMAT_RECEIPT.root, guid)
    ret = etree.SubElement(root, f"{{{CEB_NS}}}MessageReturn")
    _el(ret, "guid", guid)
    _el(ret, "returnStatus", return_status)
    _el(ret, "returnInfo", _clip(return_info, FORMAT_INFO_MAX))
    _el(ret, "returnTime", stamp17(when))
    _el(ret, "oriCopMsgId", _clip(ori_cop_msg_id, 255))
    _el(ret, "oriMessageType", _clip(ori_message_type, 15))
    entry = ReceiptEntry(return_status, return_info, guid=guid)
    return Receipt(FORMAT_RECEIPT.root, guid, _serialise(root), [entry])
