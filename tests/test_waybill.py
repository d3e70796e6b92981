"""CEB511 waybills through the command line: the official sample, stored columns, routes."""

from __future__ import annotations

from sqlalchemy import select

from hub.generator import DEMO_PARTIES, make_purchases, waybill_message
from hub.store.tables import waybills
from tests.helpers import SAMPLES, cli, files
from tests.test_app_type_rules import assert_everything_sent_is_valid, codes_of, db, send


def add_sample_logistics(ws) -> None:
    assert (
        cli(
            ws,
            "partner",
            "add",
            "lgs",
            "--role",
            "logistics",
            "--codes",
            "1101180326",
            "--signature",
            "off",
        )
        == 0
    )
    assert cli(ws, "partner", "add", "cus", "--role", "customs", "--codes", "C") == 0
    assert cli(ws, "partner", "add", "ciq", "--role", "inspection", "--codes", "I") == 0


def test_official_sample_waybill_is_accepted(ws):
    add_sample_logistics(ws)
    entries = send(ws, "lgs", (SAMPLES / "CEB511Message.xml").read_bytes())
    # Six waybills with one number: the first is stored, the other five already exist.
    assert sorted(codes_of(entries)) == sorted(["2", "120"] + ["-504015"] * 5)
    assert {(e.fields["logisticsCode"], e.fields["logisticsNo"]) for e in entries} == {
        ("1101180326", "L201603081138007")
    }
    for partner in ("cus", "ciq"):
        [copy] = files(ws.outbox_of(partner))
        assert copy.read_bytes() == (SAMPLES / "CEB511Message.xml").read_bytes()
    with db(ws).connect() as conn:
        row = conn.execute(select(waybills)).one()
    assert (row.order_no, row.consignee) == ("order20160321116421002", "李小可")
    assert_everything_sent_is_valid(ws)


def test_waybill_row_keeps_its_order_and_consignee(hub_ws, keys):
    [purchase] = make_purchases(1, seed=51)
    root = keys["logistics"].sign(waybill_message([purchase], DEMO_PARTIES))
    assert codes_of(send(hub_ws, "logistics", root)) == ["2", "120"]
    with db(hub_ws).connect() as conn:
        row = conn.execute(select(waybills)).one()
    assert (row.logistics_code, row.logistics_no) == (
        DEMO_PARTIES.logistics_code,
        purchase.logistics_no,
    )
    assert (row.order_no, row.consignee) == (purchase.order_no, purchase.consignee.name)


def test_waybill_without_freight_and_insured_fee_is_accepted(hub_ws, keys):
    # Spec §2.13: optional in the 202205 XSD although the PDF calls them required.
    [purchase] = make_purchases(1, seed=52)
    purchase = purchase.override("LogisticsHead", freight=None, insuredFee=None)
    root = keys["logistics"].sign(waybill_message([purchase], DEMO_PARTIES))
    assert codes_of(send(hub_ws, "logistics", root)) == ["2", "120"]
