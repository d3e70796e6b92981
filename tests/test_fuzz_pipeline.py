"""Structure-aware fuzzing of valid messages through the whole pipeline: answered once, no crash."""

from __future__ import annotations

import contextlib
import copy
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from sqlalchemy import select

from hub import config
from hub.generator import (
    DEMO_PARTIES,
    list_message,
    make_purchases,
    order_message,
    payment_message,
    to_bytes,
    waybill_message,
)
from hub.runner import Hub
from hub.store.tables import messages, receipts

DS = "http://www.w3.org/2000/09/xmldsig#"
BASES = (
    ("platform", order_message),
    ("payment", payment_message),
    ("logistics", waybill_message),
    ("agent", list_message),
)
XML_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=80,
)
NAMES = st.sampled_from(["x", "orderNo", "guid", "Order", "ceb:foo", "appType", "ds:Signature"])
OPS = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, 10_000)),
    st.tuples(st.just("duplicate"), st.integers(0, 10_000)),
    st.tuples(st.just("swap"), st.integers(0, 10_000)),
    st.tuples(st.just("text"), st.integers(0, 10_000), XML_TEXT),
    st.tuples(st.just("long"), st.integers(0, 10_000), st.integers(61, 5000)),
    st.tuples(st.just("element"), st.integers(0, 10_000), NAMES, st.booleans()),
    st.tuples(st.just("attribute"), st.integers(0, 10_000), st.sampled_from(["guid", "x", "Id"]), XML_TEXT),
)  # fmt: skip
_names = itertools.count()


def _elements(root: etree._Element) -> list[etree._Element]:
    return [e for e in root.iter() if isinstance(e.tag, str)]


def mutate(root: etree._Element, op: tuple) -> None:
    elements = _elements(root)
    el = elements[op[1] % len(elements)]
    parent = el.getparent()
    kind = op[0]
    if kind == "delete" and parent is not None:
        parent.remove(el)
    elif kind == "duplicate" and parent is not None:
        el.addnext(copy.deepcopy(el))
    elif kind == "swap" and parent is not None and len(parent) > 1:
        other = parent[(parent.index(el) + 1) % len(parent)]
        if other is not el:
            el.addprevious(copy.deepcopy(other))
            other.addprevious(copy.deepcopy(el))
            parent.remove(el)
            parent.remove(other)
    elif kind == "text" and len(el) == 0:
        el.text = op[2]
    elif kind == "long" and len(el) == 0:
        el.text = "长" * op[2]
    elif kind == "element":
        ns = "urn:fuzz:unknown" if op[3] else etree.QName(el).namespace
        local = op[2].split(":")[-1]
        etree.SubElement(el, f"{{{ns}}}{local}" if ns else local).text = "1"
    elif kind == "attribute":
        el.set(op[2] if op[2] != "x" else "{urn:fuzz:attr}x", op[3])


@pytest.fixture(scope="module")
def fuzz_hub(tmp_path_factory, keys):
    from hub.cli.workspace_cmd import init_workspace
    from hub.store.db import dispose_all
    from hub.workspace import Workspace
    from tests.helpers import cli

    ws = Workspace(tmp_path_factory.mktemp("fuzz") / "ws")
    init_workspace(ws)
    p = DEMO_PARTIES
    for pid, codes in (
        ("platform", f"{p.ebp_code},{p.ebc_code}"),
        ("payment", p.pay_code),
        ("logistics", p.logistics_code),
        ("agent", p.agent_code),
    ):
        assert (
            cli(
                ws,
                "partner",
                "add",
                pid,
                "--role",
                pid,
                "--codes",
                codes,
                "--cert",
                keys[pid].cert_path,
            )
            == 0
        )
    assert cli(ws, "partner", "add", "customs", "--role", "customs", "--codes", "CUSTOMS") == 0
    doc = config.read_document(ws)
    doc["console"]["enabled"] = False
    config.write_document(ws, doc)
    purchases = iter(make_purchases(64, seed=31))
    bases = [
        (pid, to_bytes(build([next(purchases)], DEMO_PARTIES, sign=keys[pid].sign)))
        for _ in range(8)
        for pid, build in BASES
    ]
    hub = Hub(ws)
    yield ws, hub, bases
    dispose_all()


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure is a finding, not a flake
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    base=st.integers(0, 31),
    ops=st.lists(OPS, min_size=1, max_size=4),
    resign=st.booleans(),
    cut=st.one_of(st.none(), st.integers(0, 100_000)),
)
def test_mutated_messages_are_each_answered_once_without_internal_error(
    fuzz_hub, keys, base, ops, resign, cut
):
    ws, hub, bases = fuzz_hub
    partner, data = bases[base]
    root = etree.fromstring(data)
    for op in ops:
        mutate(root, op)
    if resign:
        for old in root.findall(f"{{{DS}}}Signature"):
            root.remove(old)
        with contextlib.suppress(Exception):  # a tree the signer cannot sign goes in unsigned
            keys[partner].sign(root)
    out = to_bytes(root)
    if cut is not None:
        out = out[: cut % (len(out) + 1)]
    name = f"fuzz-{next(_names):05d}.xml"
    (ws.inbox_of(partner) / name).write_bytes(out)

    hub.run_once()

    with hub.engine.connect() as conn:
        rows = conn.execute(
            select(messages.c.id, messages.c.state, messages.c.return_status, messages.c.return_info)
            .where(messages.c.file_name == name, messages.c.partner_id == partner)
        ).all()  # fmt: skip
        assert len(rows) == 1, f"{name}: {len(rows)} stored messages"
        (row,) = rows
        answers = conn.execute(
            select(receipts.c.return_status, receipts.c.return_info).where(
                receipts.c.message_id == row.id
            )
        ).all()
    assert row.return_status != "-3999" and "internal error" not in (row.return_info or ""), row
    assert answers, f"{name}: no receipt"
    assert not [
        a for a in answers if a.return_status == "-3999" or "internal error" in a.return_info
    ]
    assert not list(ws.inbox_of(partner).iterdir()) and not list((ws.claims / partner).iterdir())
