"""Electronic review: one test per return reason and per limit, with receipts, log and money."""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal

import pytest

from hub.generator import DEMO_PARTIES, make_person, refund_message
from tests.clearance_support import (
    agent_622,
    balance,
    declare_purchase,
    list_receipts,
    log_of,
    purchase,
    run,
    send_documents,
    send_list,
    set_guarantee,
    submit,
    the_list,
    year_total,
)
from tests.helpers import cli
from tests.helpers import statuses as statuses_of

GUARANTEE = Decimal("10000")


def assert_returned(
    gws, p, code: str, reason_code: str, words: str, guarantee: Decimal = GUARANTEE
) -> None:
    """Returned at review: receipt, log row, nothing debited, nothing counted."""
    statuses = [s for s, _ in list_receipts(gws, p.cop_no)]
    assert statuses == ["2", "3", code]
    last = agent_622(gws, p.cop_no)
    assert code in [e.status for e in last]
    entry = next(e for e in last if e.status == code)
    assert entry.info.startswith(f"[{reason_code}] ") and words in entry.info
    row = the_list(gws, p.cop_no)
    assert row.state == "returned" and row.invt_no is None
    final = log_of(gws, p.cop_no)[-1]
    assert (final.from_state, final.to_state, final.code) == ("sent", "returned", code)
    assert final.reason_code == reason_code and final.reason == entry.info
    assert balance(gws) == guarantee
    assert year_total(gws, p.buyer.id_number) == 0


@pytest.fixture
def gws(hub_ws):
    set_guarantee(hub_ws, GUARANTEE)
    return hub_ws


def test_waybill_consignee_differing_from_the_order_is_reason_1(gws, keys):
    p = purchase(11).override("LogisticsHead", consigneeTelephone="13900000000")
    declare_purchase(gws, keys, p)
    assert_returned(gws, p, "100", "R1", "consignee filing abnormal: order consigneeTelephone")


def test_list_address_differing_from_the_order_is_reason_1(gws, keys):
    p = purchase(12).override("InventoryHead", consigneeAddress="北京市朝阳区别处1号")
    declare_purchase(gws, keys, p)
    assert_returned(gws, p, "100", "R1", "list consigneeAddress")


def test_payment_amount_differing_from_acturalpaid_is_reason_2(gws, keys):
    p = purchase(13).override("PaymentHead", amountPaid="1.00")
    declare_purchase(gws, keys, p)
    assert_returned(gws, p, "100", "R2", "three orders do not match: payment amountPaid 1.00")


def test_a_line_whose_goods_name_differs_is_reason_2(gws, keys):
    p = purchase(14).override("InventoryList", gnum=1, gname="别的商品")
    declare_purchase(gws, keys, p)
    assert_returned(gws, p, "100", "R2", "line 1: gname '别的商品' differs")


def test_an_invalid_buyer_id_is_reason_3(gws, keys):
    p = purchase(15)
    bad = replace(
        p.buyer, id_number=p.buyer.id_number[:-1] + ("0" if p.buyer.id_number[-1] != "0" else "1")
    )
    p = replace(p, buyer=bad, payer=bad)
    declare_purchase(gws, keys, p)
    assert_returned(gws, p, "100", "R3", "fails the MOD 11-2 check digit")


def test_a_buyer_who_is_not_the_payer_and_unverified_is_reason_3(gws, keys):
    p = replace(purchase(16), payer=make_person(random.Random(5)))
    declare_purchase(gws, keys, p)
    assert_returned(gws, p, "100", "R3", "is not the payer")


def test_a_verified_buyer_may_let_someone_else_pay(gws, keys):
    p = replace(purchase(17), payer=make_person(random.Random(6)))
    csv = gws.root / "ids.csv"
    csv.write_text(f"id-number,name\n{p.buyer.id_number},{p.buyer.name}\n", encoding="utf-8")
    assert cli(gws, "identity", "import", csv) == 0
    declare_purchase(gws, keys, p)
    assert the_list(gws, p.cop_no).state == "closed"


def test_a_name_the_registry_does_not_know_for_the_id_is_reason_3(gws, keys):
    p = purchase(18)
    csv = gws.root / "ids.csv"
    csv.write_text(f"{p.buyer.id_number},某某某\n", encoding="utf-8")
    assert cli(gws, "identity", "import", csv) == 0
    declare_purchase(gws, keys, p)
    assert_returned(gws, p, "100", "R3", "does not match the real-name registry")


def test_a_line_country_differing_from_the_order_is_reason_4(gws, keys):
    p = purchase(19)
    other = "502" if p.lines[0].country != "502" else "116"
    p = p.override("InventoryList", gnum=1, country=other)
    declare_purchase(gws, keys, p)
    assert_returned(gws, p, "100", "R4", f"line 1: country {other} differs")


def test_a_bonded_list_not_from_142_is_reason_4(gws, keys):
    p = purchase(20).override("InventoryHead", country="116")
    declare_purchase(gws, keys, p)
    assert_returned(gws, p, "100", "R4", "a 1210 list's country must be 142")


def test_a_guarantee_that_cannot_cover_the_tax_is_reason_5(gws, keys):
    set_guarantee(gws, "0.01")
    p = purchase(21)
    declare_purchase(gws, keys, p)
    assert_returned(gws, p, "100", "R5", "cannot cover the tax", guarantee=Decimal("0.01"))


def test_no_guarantee_lodged_for_the_assure_code_is_reason_5(hub_ws, keys):
    p = purchase(23)
    declare_purchase(hub_ws, keys, p)
    statuses = [s for s, _ in list_receipts(hub_ws, p.cop_no)]
    assert statuses == ["2", "3", "100"]
    assert (
        "[R5] guarantee balance insufficient: no guarantee is lodged"
        in (list_receipts(hub_ws, p.cop_no)[-1][1])
    )


def test_over_the_single_limit_is_621005(gws, keys):
    p = purchase(22, total_min=Decimal(5001))
    declare_purchase(gws, keys, p)
    assert_returned(gws, p, "-621005", "L1", "above the 5000 CNY single-transaction limit")


def test_over_the_annual_limit_is_621018_and_a_refund_makes_room_again(gws, keys):
    set_guarantee(gws, "100000")
    buyer = purchase(30).buyer
    bought = [
        replace(
            purchase(31 + i, total_min=Decimal(4400), total_max=Decimal(4500)),
            buyer=buyer,
            payer=buyer,
        )
        for i in range(6)
    ]
    send_documents(gws, keys, bought)
    send_list(gws, keys, bought[:5])
    run(gws)
    run(gws)
    used = year_total(gws, buyer.id_number)
    assert all(the_list(gws, p.cop_no).state == "closed" for p in bought[:5])
    assert used == sum(the_list(gws, p.cop_no).dutiable_value for p in bought[:5])
    before = balance(gws)
    send_list(gws, keys, bought[5:])
    run(gws)
    run(gws)
    last = bought[5]
    statuses = [s for s, _ in list_receipts(gws, last.cop_no)]
    assert statuses == ["2", "3", "-621018"]
    info = list_receipts(gws, last.cop_no)[-1][1]
    assert info.startswith("[L2] over the buyer's annual limit") and "26000" in info
    assert log_of(gws, last.cop_no)[-1].code == "-621018"
    assert year_total(gws, buyer.id_number) == used
    assert balance(gws) == before

    # A full refund of the first list gives its value back to the year: the sixth now fits.
    first = the_list(gws, bought[0].cop_no)
    refunded = replace(bought[0], pre_no=first.pre_no, invt_no=first.invt_no)
    submit(gws, "agent", refund_message([refunded], DEMO_PARTIES, sign=keys["agent"].sign))
    run(gws)
    assert statuses_of(gws.outbox_of("agent"), "CEB626Message") == ["2", "399"]
    assert year_total(gws, buyer.id_number) == used - first.dutiable_value
    assert balance(gws) == before + first.tax
    assert cli(gws, "declare", last.cop_no) == 0
    run(gws)
    run(gws)
    assert the_list(gws, last.cop_no).state == "closed"
    assert year_total(gws, buyer.id_number) == (
        used - first.dutiable_value + the_list(gws, last.cop_no).dutiable_value
    )
