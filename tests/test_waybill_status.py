"""CEB513 waybill status through the command line: needs its waybill, one status per waybill."""

from __future__ import annotations

from sqlalchemy import select

from hub.generator import DEMO_PARTIES, make_purchases, waybill_message, waybill_status_message
from hub.store.tables import waybill_statuses
from tests.helpers import SAMPLES, files
from tests.test_app_type_rules import assert_everything_sent_is_valid, codes_of, db, send
from tests.test_waybill import add_sample_logistics


def test_official_sample_status_is_accepted_after_its_waybill(ws):
    add_sample_logistics(ws)
    assert "120" in codes_of(send(ws, "lgs", (SAMPLES / "CEB511Message.xml").read_bytes()))
    entries = send(ws, "lgs", (SAMPLES / "CEB513Message.xml").read_bytes())
    # Ten statuses for one waybill: the first is stored, the others already exist.
    assert sorted(codes_of(entries)) == sorted(["2", "120"] + ["-505012"] * 9)
    assert {e.msg_type for e in entries} == {"CEB514Message"}
    assert {e.fields["logisticsStatus"] for e in entries} == {"R"}  # echoed as sent
    copies = [p.name for p in files(ws.outbox_of("cus")) if p.name.startswith("CEB513")]
    assert len(copies) == 1
    assert not [p for p in files(ws.outbox_of("ciq")) if p.name.startswith("CEB513")]
    assert_everything_sent_is_valid(ws)


def test_status_of_an_unknown_waybill_is_refused(hub_ws, keys):
    [purchase] = make_purchases(1, seed=513)
    root = keys["logistics"].sign(waybill_status_message([purchase], DEMO_PARTIES))
    [entry] = send(hub_ws, "logistics", root)
    assert (entry.msg_type, entry.status) == ("CEB514Message", "-505000")
    assert purchase.logistics_no in entry.info and "not found" in entry.info
    assert entry.fields["logisticsStatus"] == "S"


def test_second_status_for_the_same_waybill_exists(hub_ws, keys):
    purchases = make_purchases(2, seed=514)
    sign = keys["logistics"].sign
    assert codes_of(send(hub_ws, "logistics", sign(waybill_message(purchases, DEMO_PARTIES)))) == [
        "2",
        "2",
        "120",
        "120",
    ]
    first = sign(waybill_status_message(purchases[:1], DEMO_PARTIES))
    assert codes_of(send(hub_ws, "logistics", first)) == ["2", "120"]
    # One message: a second status for the first waybill and the first for the other.
    both = sign(waybill_status_message(purchases, DEMO_PARTIES))
    entries = send(hub_ws, "logistics", both)
    by_no = {}
    for e in entries:
        by_no.setdefault(e.fields["logisticsNo"], []).append(e.status)
    assert by_no == {
        purchases[0].logistics_no: ["-505012"],
        purchases[1].logistics_no: ["2", "120"],
    }
    with db(hub_ws).connect() as conn:
        rows = conn.execute(
            select(waybill_statuses.c.logistics_no, waybill_statuses.c.logistics_status)
        ).all()
    assert sorted(rows) == sorted((p.logistics_no, "S") for p in purchases)


def test_status_of_a_deleted_waybill_is_refused(hub_ws, keys):
    purchases = make_purchases(1, seed=515)
    sign = keys["logistics"].sign
    assert "120" in codes_of(
        send(hub_ws, "logistics", sign(waybill_message(purchases, DEMO_PARTIES)))
    )
    assert codes_of(
        send(hub_ws, "logistics", sign(waybill_message(purchases, DEMO_PARTIES, app_type="3")))
    ) == ["2"]
    root = sign(waybill_status_message(purchases, DEMO_PARTIES))
    assert codes_of(send(hub_ws, "logistics", root)) == ["-505000"]
