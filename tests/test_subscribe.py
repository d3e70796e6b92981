"""BaseSubscribe (spec §2.11): RET subscribers get the receipts, DATA the message, ALL both."""

from __future__ import annotations

import logging

from lxml import etree

from hub import config
from hub.constants import ceb
from hub.generator import DEMO_PARTIES, make_purchases, payment_message
from tests.helpers import cli, files, receipt_entries, unwrap
from tests.test_app_type_rules import assert_everything_sent_is_valid, codes_of, send

WATCHERS = {  # partner id -> (DXP id, subscription status)
    "ret": ("DXPENT0000900001", "RET"),
    "data": ("DXPENT0000900002", "DATA"),
    "all": ("DXPENT0000900003", "ALL"),
}
UNKNOWN_DXP = "DXPENT0000999999"
CUSTOMS_DXP = "DXPEDCCEB0000009"


def subscribe(root: etree._Element, *subs: tuple[str, str]) -> etree._Element:
    """Add BaseSubscribe entries (status, dxpAddress) after BaseTransfer, before signing."""
    anchor = root.find(ceb("BaseTransfer"))
    for status, address in subs:
        el = etree.Element(ceb("BaseSubscribe"))
        for name, value in (("status", status), ("dxpMode", "DXP"), ("dxpAddress", address)):
            etree.SubElement(el, ceb(name)).text = value
        anchor.addnext(el)
        anchor = el
    return root


def add_watchers(ws) -> None:
    for pid, (dxp_id, _) in WATCHERS.items():
        envelope = "dxp" if pid == "all" else "none"
        args = (
            "--role",
            "platform",
            "--codes",
            f"W{pid}",
            "--dxp-id",
            dxp_id,
            "--envelope",
            envelope,
        )
        assert cli(ws, "partner", "add", pid, *args) == 0
    doc = config.read_document(ws)
    doc["partners"]["customs"]["dxp_id"] = CUSTOMS_DXP
    config.write_document(ws, doc)


def names(ws, partner: str) -> list[str]:
    return [unwrap(p.read_bytes()).tag.rpartition("}")[2] for p in files(ws.outbox_of(partner))]


def test_subscribers_get_receipts_data_or_both(hub_ws, keys, caplog):
    add_watchers(hub_ws)
    subs = [(status, dxp_id) for dxp_id, status in WATCHERS.values()]
    root = subscribe(
        payment_message(make_purchases(2, seed=90), DEMO_PARTIES),
        *subs,
        ("ALL", UNKNOWN_DXP),
        ("DATA", CUSTOMS_DXP),  # on the route already: the copy goes out once, not twice
    )
    root = keys["payment"].sign(root)
    with caplog.at_level(logging.INFO, logger="hub.routing"):
        assert codes_of(send(hub_ws, "payment", root)) == ["2", "2", "120", "120"]

    assert names(hub_ws, "ret") == ["CEB412Message"]  # both payments' 2 and 120 in one
    assert names(hub_ws, "data") == ["CEB411Message"]
    assert sorted(names(hub_ws, "all")) == ["CEB411Message", "CEB412Message"]
    assert codes_of(receipt_entries(hub_ws.outbox_of("ret"))) == ["2", "2", "120", "120"]
    [copy] = files(hub_ws.outbox_of("data"))
    assert copy.read_bytes() == (hub_ws.root / "payment-0-0.xml").read_bytes()  # as signed
    for path in files(hub_ws.outbox_of("all")):  # its partner entry asks for DXP envelopes
        env = etree.fromstring(path.read_bytes())
        assert env.findtext("{*}TransInfo/{*}ReceiverIds/{*}ReceiverId") == WATCHERS["all"][0]
    assert len(files(hub_ws.outbox_of("customs"))) == 1
    assert UNKNOWN_DXP in caplog.text and "ignored" in caplog.text
    assert_everything_sent_is_valid(hub_ws)


def test_a_refused_message_is_not_copied_to_subscribers(hub_ws, keys):
    add_watchers(hub_ws)
    [purchase] = make_purchases(1, seed=91)
    purchase = purchase.override("PaymentHead", amountPaid="1.123456")  # breaks the XSD
    root = subscribe(payment_message([purchase], DEMO_PARTIES), ("ALL", WATCHERS["all"][0]))
    [entry] = send(hub_ws, "payment", keys["payment"].sign(root))
    assert entry.msg_type == "CEB900Message"
    assert files(hub_ws.outbox_of("all")) == []


def test_subscription_to_refused_records_gets_their_receipts(hub_ws, keys):
    add_watchers(hub_ws)
    purchases = make_purchases(1, seed=92)
    sign = keys["payment"].sign
    first = sign(payment_message(purchases, DEMO_PARTIES))
    assert codes_of(send(hub_ws, "payment", first)) == ["2", "120"]
    again = sign(subscribe(payment_message(purchases, DEMO_PARTIES), ("RET", WATCHERS["ret"][0])))
    assert codes_of(send(hub_ws, "payment", again)) == ["-401007"]
    assert codes_of(receipt_entries(hub_ws.outbox_of("ret"))) == ["-401007"]


def test_a_lists_subscribers_get_its_receipts_at_every_step_from_the_verified_message(
    hub_ws, keys, monkeypatch
):
    """RET and ALL subscribers of a CEB621 get every CEB622 its moves send, from the entries
    read off the verified tree: the stored body is not read back and parsed again."""
    from hub import xmlsafe
    from hub.generator import list_message
    from tests.clearance_support import purchase, run, send_documents, set_guarantee, submit

    add_watchers(hub_ws)
    set_guarantee(hub_ws, "100000")
    bought = [purchase(91)]
    send_documents(hub_ws, keys, bought)
    root = subscribe(
        list_message(bought, DEMO_PARTIES, app_status="2", app_type="1"),
        ("RET", WATCHERS["ret"][0]),
        ("ALL", WATCHERS["all"][0]),
        ("DATA", WATCHERS["data"][0]),
    )
    parsed: list[bytes] = []
    real_parse = xmlsafe.parse

    def parse(data, **kw):
        parsed.append(data)
        return real_parse(data, **kw)

    monkeypatch.setattr(xmlsafe, "parse", parse)
    submit(hub_ws, "agent", keys["agent"].sign(root))
    run(hub_ws)

    steps = ["2", "3", "120", "399", "800", "899"]
    assert codes_of(receipt_entries(hub_ws.outbox_of("agent"), "CEB622Message")) == steps
    assert codes_of(receipt_entries(hub_ws.outbox_of("ret"), "CEB622Message")) == steps
    assert codes_of(receipt_entries(hub_ws.outbox_of("all"), "CEB622Message")) == steps
    assert receipt_entries(hub_ws.outbox_of("data"), "CEB622Message") == []
    assert len([d for d in parsed if b"CEB621Message" in d]) == 1  # checked once, not again
