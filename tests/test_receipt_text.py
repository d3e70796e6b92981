"""Receipts written as text are byte for byte what lxml would serialise, and always valid."""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from hub import schemas
from hub.constants import CEB_NS
from hub.messages import receipts
from hub.messages.types import by_root

TYPES = [
    "CEB311Message", "CEB411Message", "CEB511Message", "CEB513Message",
    "CEB621Message", "CEB623Message", "CEB625Message", "CEB711Message",
]  # fmt: skip
WHEN = datetime(2026, 11, 26, 9, 30, 0)

# What lxml accepts as element text: XML 1.0 characters.
xml_text = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x0b\x0c\ufffe\uffff").filter(
        lambda c: c in "\t\n\r" or c >= " "
    )
)


def _with_lxml(mt, entries: list[receipts.ReceiptEntry], guid: str) -> bytes:
    """The tree-built receipt the text writer replaced."""
    root = etree.Element(
        f"{{{CEB_NS}}}{mt.receipt}", nsmap={None: CEB_NS}, guid=guid, version="1.0"
    )
    for entry in entries:
        ent = etree.SubElement(root, f"{{{CEB_NS}}}{mt.receipt_entity}")
        values = [("guid", entry.guid)]
        values += [(n, entry.keys.get(n)) for n in mt.receipt_keys if entry.keys.get(n)]
        values += [
            ("returnStatus", entry.return_status),
            ("returnTime", receipts.stamp17(WHEN)),
            ("returnInfo", receipts._clip(entry.return_info, receipts.RETURN_INFO_MAX)),
        ]
        for name, value in values:
            etree.SubElement(ent, f"{{{CEB_NS}}}{name}").text = value
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True, standalone=True)


@settings(max_examples=300, deadline=None)
@given(
    msg_type=st.sampled_from(TYPES),
    infos=st.lists(xml_text, min_size=1, max_size=3),
    key_text=xml_text,
)
def test_text_receipts_equal_lxml_serialisation(msg_type, infos, key_text):
    mt = by_root(msg_type)
    entries = [
        receipts.ReceiptEntry("-301010", info * 40, {k: key_text for k in mt.receipt_keys})
        for info in infos
    ]
    built = receipts.build_receipt(mt, entries, when=WHEN)
    assert built.body == _with_lxml(mt, entries, built.guid)


def test_characters_xml_cannot_carry_become_replacement_characters_and_the_receipt_is_valid():
    mt = by_root("CEB621Message")
    keys = {"ebpCode": "1105910159", "ebcCode": "1105910159", "agentCode": "1105910159"}
    keys |= {"copNo": "COP-1", "preNo": "B" * 18, "invtNo": "I" * 18}
    entry = receipts.ReceiptEntry("-621001", "bad \x00\x01\x0b byte\ud800 & <tag>", keys)
    body = receipts.build_receipt(mt, [entry]).body
    root = etree.fromstring(body)
    schemas.validate(root)  # raises on anything the receipt's XSD refuses
    info = root.findtext(f"{{{CEB_NS}}}InventoryReturn/{{{CEB_NS}}}returnInfo")
    assert info == "bad \ufffd\ufffd\ufffd byte\ufffd & <tag>"


def test_the_hub_s_guids_are_version_7_uuids_in_the_order_they_were_made():
    made = []
    for _ in range(5):
        made.append(receipts.new_guid())
        time.sleep(0.002)  # a new millisecond: the random part no longer decides the order

    assert made == sorted(made)
    assert len(set(made)) == 5
    for guid in made:
        parsed = uuid.UUID(guid)
        assert len(guid) == 36 and guid == guid.upper()
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert abs((parsed.int >> 80) - time.time() * 1000) < 60_000  # its time is now


def test_guids_made_in_the_same_millisecond_sort_in_the_order_they_were_made(monkeypatch):
    # The outbox file names carry them, and files written in one clock tick may get one time:
    # a partner reading oldest first (time, then name) must still read 2 before 120.
    made = [receipts.new_guid() for _ in range(3000)]
    assert made == sorted(made) and len(set(made)) == 3000
    # A clock that stands still (or steps back) while the random bits run out: the next
    # millisecond's first value, still a valid version-7 UUID.
    future = time.time_ns() // 1_000_000 + 3_600_000
    monkeypatch.setattr(receipts, "_last_guid", (future, (1 << 74) - 3))
    tail = [receipts.new_guid() for _ in range(4)]
    assert tail == sorted(tail) and len(set(tail)) == 4
    parsed = [uuid.UUID(g) for g in tail]
    assert [p.int >> 80 for p in parsed] == [future, future, future + 1, future + 1]
    assert all(p.version == 7 and p.variant == uuid.RFC_4122 for p in parsed)
    assert parsed[2].int & ((1 << 62) - 1) == 0 and parsed[3].int & ((1 << 62) - 1) == 1


def test_a_forked_child_makes_other_guids_than_its_parent():
    # The random part comes from a generator of the hub's own: a forked child (the checker
    # and file-writer processes may be forks) reseeds it rather than repeat the parent's.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next guids, to the parent, then out
        os.write(write, " ".join(receipts.new_guid() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    mine = {receipts.new_guid()[19:] for _ in range(50)}  # the random part (clock bits aside)
    os.waitpid(pid, 0)
    with os.fdopen(read) as f:
        theirs = {guid[19:] for guid in f.read().split()}
    assert len(theirs) == 50 and not mine & theirs
