"""CEB411 payment vouchers through the command line: the official sample, stored columns, routes."""

from __future__ import annotations

from sqlalchemy import select

from hub.generator import DEMO_PARTIES, make_purchases, payment_message
from hub.store.tables import payments
from tests.helpers import SAMPLES, cli, files
from tests.test_app_type_rules import assert_everything_sent_is_valid, codes_of, db, send


def test_official_sample_payment_is_accepted(ws):
    # Placeholder signature in the sample: a partner with signatures off stands in.
    assert (
        cli(
            ws,
            "partner",
            "add",
            "pay",
            "--role",
            "payment",
            "--codes",
            "1101110323,1101180326",
            "--signature",
            "off",
        )
        == 0
    )
    assert cli(ws, "partner", "add", "cus", "--role", "customs", "--codes", "C") == 0
    entries = send(ws, "pay", (SAMPLES / "CEB411Message.xml").read_bytes())
    # Ten payments with two keys: each key is stored once, the other eight already exist.
    assert sorted(codes_of(entries)) == sorted(["2", "2", "120", "120"] + ["-401007"] * 8)
    assert {e.msg_type for e in entries} == {"CEB412Message"}
    ok = [e for e in entries if e.status == "120"]
    assert {e.fields["payTransactionId"] for e in ok} == {"P0242250007", "P0242250008"}
    assert all(e.fields["payCode"] == "1101110323" for e in entries)
    [copy] = files(ws.outbox_of("cus"))
    assert copy.read_bytes() == (SAMPLES / "CEB411Message.xml").read_bytes()
    assert_everything_sent_is_valid(ws)


def test_payment_row_links_to_its_order(hub_ws, keys):
    [purchase] = make_purchases(1, seed=41)
    root = keys["payment"].sign(payment_message([purchase], DEMO_PARTIES))
    assert codes_of(send(hub_ws, "payment", root)) == ["2", "120"]
    with db(hub_ws).connect() as conn:
        row = conn.execute(select(payments)).one()
    assert (row.pay_code, row.pay_transaction_id) == (
        DEMO_PARTIES.pay_code,
        purchase.pay_transaction_id,
    )
    assert (row.ebp_code, row.order_no) == (DEMO_PARTIES.ebp_code, purchase.order_no)
    assert row.amount_paid == purchase.actural_paid
    assert row.head["payerName"] == purchase.payer.name and row.lines == []


def test_payment_from_a_partner_without_the_pay_code_is_refused(hub_ws, keys):
    [purchase] = make_purchases(1, seed=42)
    root = keys["logistics"].sign(payment_message([purchase], DEMO_PARTIES))
    [entry] = send(hub_ws, "logistics", root)
    assert entry.msg_type == "CEB412Message" and entry.status == "-10102"
    assert "not a code of partner logistics" in entry.info
