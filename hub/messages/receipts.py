"""Building spec-conformant receipts: the type receipts and the CEB900 format receipt."""

from __future__ import annotations

import os
import random
import re
import time
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree

from hub.clock import stamp17
from hub.constants import CEB_NS
from hub.messages.types import FORMAT_RECEIPT, MessageType

RETURN_INFO_MAX = 1000  # C..1000 in the business receipts
FORMAT_INFO_MAX = 5000  # C0..5000 in CEB900
_UUID7_CLEAR = ~(0xF << 76 | 0x3 << 62) & (1 << 128) - 1  # the version and variant bits
_UUID7_SET = 0x7 << 76 | 0x2 << 62
_guid_bits = random.Random()  # seeded from the OS; ours alone, so no random.seed() reaches it
os.register_at_fork(after_in_child=_guid_bits.seed)  # a forked child must not repeat ours


def new_guid() -> str:
    """A new guid for something the hub writes: a version-7 UUID (RFC 9562), upper case.

    Its first 48 bits are the Unix time in milliseconds and the other 74 are random, so the
    guids the hub makes sort in the order it made them. The indexes on receipt guids and on
    the outbox file names (which carry them) then grow at their end: with random guids each
    receipt wrote a page somewhere in the middle of two large indexes. The random bits come
    from a generator seeded from the OS (and again in a forked child): a guid needs to be
    unique, not secret, and reading the OS's random source was a system call each.
    """
    value = (time.time_ns() // 1_000_000) << 80 | _guid_bits.getrandbits(80)
    value = value & _UUID7_CLEAR | _UUID7_SET  # version 7, variant 10
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
