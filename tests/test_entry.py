"""CEB711 warehouse entries through the command line: the official sample, CEB712, signatures."""

from __future__ import annotations

from sqlalchemy import select

from hub.generator import DEMO_PARTIES, TRADE_DIRECT, entry_message, make_purchases
from hub.store.tables import entries
from tests.helpers import SAMPLES, cli, files
from tests.test_app_type_rules import (
    add_operator,
    assert_everything_sent_is_valid,
    db,
    send,
)


def test_official_sample_entry_is_accepted(ws):
    # The sample is transmitted by a logistics company for the site operator 1101110326.
    codes = "1101110326,1101180326"
    assert (
        cli(
            ws,
            "partner",
            "add",
            "site",
            "--role",
            "operator",
            "--codes",
            codes,
            "--signature",
            "off",
        )
        == 0
    )
    assert cli(ws, "partner", "add", "cus", "--role", "customs", "--codes", "C") == 0
    [declaring, accepted] = send(ws, "site", (SAMPLES / "CEB711Message.xml").read_bytes())
    assert (declaring.msg_type, declaring.status, accepted.status) == ("CEB712Message", "2", "120")
    assert declaring.fields["guid"] == "5923DGGB-9940-415B-B666-C09BOO7F40B2"
    for name, value in {
        "customsCode": "3700", "operatorCode": "1101110326", "copNo": "NBBH20160308005",
        "preNo": "B20160308000000005", "rkdNo": "010220160308000005",
    }.items():  # fmt: skip
        assert declaring.fields[name] == value
    [copy] = files(ws.outbox_of("cus"))
    assert copy.read_bytes() == (SAMPLES / "CEB711Message.xml").read_bytes()
    with db(ws).connect() as conn:
        row = conn.execute(select(entries)).one()
    assert (row.operator_code, row.cop_no, row.customs_code, row.bill_no) == (
        "1101110326", "NBBH20160308005", "3700", "B00024204001",
    )  # fmt: skip
    assert [line["logisticsNo"] for line in row.lines] == ["L201603081138001"]
    assert_everything_sent_is_valid(ws)


def test_generated_entry_lists_every_parcel(hub_ws, keys):
    add_operator(hub_ws, keys)
    purchases = make_purchases(3, seed=711, trade_mode=TRADE_DIRECT)
    root = keys["operator"].sign(entry_message(purchases, DEMO_PARTIES, cop_no="RK711"))
    [declaring, accepted] = send(hub_ws, "operator", root)
    assert (declaring.status, accepted.status) == ("2", "120")
    assert (declaring.fields["operatorCode"], declaring.fields["copNo"]) == (
        DEMO_PARTIES.operator_code,
        "RK711",
    )
    with db(hub_ws).connect() as conn:
        row = conn.execute(select(entries)).one()
    assert [line["logisticsNo"] for line in row.lines] == [p.logistics_no for p in purchases]


def test_unsigned_entry_is_refused(hub_ws, keys):
    # The XSD requires ds:Signature on 711.
    add_operator(hub_ws, keys)
    purchases = make_purchases(1, seed=712, trade_mode=TRADE_DIRECT)
    [entry] = send(hub_ws, "operator", entry_message(purchases, DEMO_PARTIES))
    assert (entry.msg_type, entry.status) == ("CEB712Message", "-1001"), entry
    with db(hub_ws).connect() as conn:
        assert conn.execute(select(entries)).all() == []


def test_entry_without_cop_no_is_refused_with_the_parameter_code(hub_ws, keys):
    add_operator(hub_ws, keys)
    [purchase] = make_purchases(1, seed=713, trade_mode=TRADE_DIRECT)
    purchase = purchase.override("DeliveryHead", copNo=None)
    root = keys["operator"].sign(entry_message([purchase], DEMO_PARTIES))
    [entry] = send(hub_ws, "operator", root)
    assert (entry.msg_type, entry.status) == ("CEB712Message", "-800000")
    assert "copNo" in entry.info
    assert_everything_sent_is_valid(hub_ws)
