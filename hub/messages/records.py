"""Reading business records out of a parsed CEB message."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

from lxml import etree

from hub.constants import CEB_NS, ceb
from hub.messages.types import MessageType


def local(tag: str) -> str:
    return tag.rpartition("}")[2]


def fields_of(element: etree._Element) -> dict[str, str]:
    """Child elements in the CEB namespace as spec-named text fields (empty elements give '').

    The children are walked as they come and the namespace told by the name's cache (or the
    tag's prefix): lxml's element filter cost more than the test, per child.
    """
    out: dict[str, str] = {}
    names = _NAMES
    for child in element:
        tag = child.tag
        name = names.get(tag)
        if name is None:
            if not isinstance(tag, str) or not tag.startswith(_NS_PREFIX):
                continue  # a comment, a processing instruction, another namespace
            name = _name_of(tag)
        if len(child):
            # itertext joins text around comments and processing instructions, as the XSD reads it.
            out[name] = "".join(child.itertext()).strip()
        else:  # no child nodes at all: its text is all there is
            text = child.text
            out[name] = text.strip() if text else ""
    return out


def _name_of(tag: str) -> str:
    """A field's name, the same string object every time: a batch of records sent from the
    checker process then carries each name once (pickle's memo), and unpickles faster."""
    name = _NAMES.get(tag)
    if name is None:
        name = tag[_NS_LEN:]
        # A hostile message's made-up names do not fill memory, neither many nor long ones.
        if len(_NAMES) < _MAX_NAMES and len(name) <= _MAX_NAME_LENGTH:
            _NAMES[tag] = name = sys.intern(name)
    return name


_NAMES: dict[str, str] = {}
_MAX_NAMES = 4096  # the spec's field names are a few hundred
_MAX_NAME_LENGTH = 64  # and none is longer than ~30 characters


_NS_PREFIX = f"{{{CEB_NS}}}"
_NS_LEN = len(_NS_PREFIX)


class EncodedDict(dict):
    """A JSON object with its text, encoded already (`json.dumps` of this very dict)."""

    __slots__ = ("json",)


class EncodedList(list):
    """A JSON array with its text, encoded already (`json.dumps` of this very list)."""

    __slots__ = ("json",)


@dataclass
class Record:
    """One business entity of a message: its head fields and body lines."""

    index: int  # 1-based position among the message's records
    head: dict[str, str]
    lines: list[dict[str, str]] = field(default_factory=list)
    encoded: tuple[str, str] | None = None  # head and lines as JSON text (`encode`)

    def get(self, name: str) -> str:
        return self.head.get(name, "")

    def encode(self) -> None:
        """Encode head and lines as JSON text now: the checker process does it, so that the
        hub's own process binds the text as it is (`stored_head`, `stored_lines`)."""
        self.encoded = (json.dumps(self.head), json.dumps(self.lines))

    def stored_head(self) -> dict[str, str]:
        """The head to store: with its JSON text when `encode` made it."""
        if self.encoded is None:
            return self.head
        value = EncodedDict(self.head)
        value.json = self.encoded[0]
        return value

    def stored_lines(self) -> list[dict[str, str]]:
        if self.encoded is None:
            return self.lines
        value = EncodedList(self.lines)
        value.json = self.encoded[1]
        return value

    def key(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self.head.get(n, "") for n in names)


def extract(root: etree._Element, msg_type: MessageType) -> list[Record]:
    """Every record of a message, in document order."""
    records = []
    for i, el in enumerate(root.iterchildren(ceb(msg_type.record)), start=1):
        if msg_type.head:
            head_el = el.find(ceb(msg_type.head))
            head = fields_of(head_el) if head_el is not None else {}
            body = ceb(msg_type.body) if msg_type.body else None
            lines = [fields_of(line) for line in el.iterchildren(body)] if body else []
        else:
            head, lines = fields_of(el), []
        records.append(Record(index=i, head=head, lines=lines))
    return records


def count_records(root: etree._Element, msg_type: MessageType) -> int:
    return sum(1 for _ in root.iterchildren(ceb(msg_type.record)))


@dataclass(frozen=True)
class Transfer:
    """`BaseTransfer`: who transmitted the message."""

    cop_code: str
    cop_name: str
    dxp_id: str


@dataclass(frozen=True)
class Subscription:
    """`BaseSubscribe`: a third party that wants copies (DATA), receipts (RET) or both (ALL)."""

    status: str
    dxp_address: str


def transfer_of(root: etree._Element) -> Transfer | None:
    el = root.find(ceb("BaseTransfer"))
    if el is None:
        return None
    f = fields_of(el)
    return Transfer(f.get("copCode", ""), f.get("copName", ""), f.get("dxpId", ""))


def subscriptions_of(root: etree._Element) -> list[Subscription]:
    subs = []
    for el in root.iterchildren(ceb("BaseSubscribe")):
        f = fields_of(el)
        subs.append(Subscription(f.get("status", ""), f.get("dxpAddress", "")))
    return subs
