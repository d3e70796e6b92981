"""Manual review: risk rules, officers' decisions by command and by message, and their effects."""

from __future__ import annotations

from decimal import Decimal

import pytest
from lxml import etree

from hub import config
from hub.clearance.risk import sampled
from hub.generator import DEMO_PARTIES
from hub.messages.receipts import ReceiptEntry, build_receipt
from hub.messages.types import LIST
from tests.clearance_support import (
    balance,
    configure,
    declare_purchase,
    list_receipts,
    log_of,
    purchase,
    run,
    set_guarantee,
    submit,
    the_list,
    year_total,
)
from tests.helpers import cli, receipt_entries

GUARANTEE = Decimal("10000")


@pytest.fixture
def rws(hub_ws):
    """Every list goes to manual review (value above 0)."""
    set_guarantee(hub_ws, GUARANTEE)
    configure(hub_ws, risk={"value_above": 0})
    return hub_ws


def codes(ws, p) -> list[str]:
    return [s for s, _ in list_receipts(ws, p.cop_no)]


def review(ws, p, authority: str, decision: str, reason: str = "") -> int:
    pre_no = the_list(ws, p.cop_no).pre_no
    return cli(ws, "review", pre_no, "--as", authority, "--decision", decision, "--reason", reason)


def test_a_risky_list_waits_for_both_authorities_to_pass_then_to_release(rws, keys):
    p = purchase(41)
    declare_purchase(rws, keys, p)
    assert codes(rws, p) == ["2", "3", "120", "300"]
    row = the_list(rws, p.cop_no)
    assert row.risk_rule == "value>0" and sorted(row.routed_to) == ["customs", "inspection"]
    assert balance(rws) == GUARANTEE - row.tax  # debited on acceptance
    assert year_total(rws, p.buyer.id_number) == row.dutiable_value  # pending lists count

    assert review(rws, p, "customs", "pass") == 0
    assert the_list(rws, p.cop_no).state == "manual_review"
    assert "waiting for inspection" in log_of(rws, p.cop_no)[-1].reason
    assert review(rws, p, "inspection", "pass") == 0
    assert review(rws, p, "customs", "release") == 0
    assert the_list(rws, p.cop_no).state == "concluded"
    assert review(rws, p, "inspection", "release", "cleared") == 0
    run(rws)
    assert codes(rws, p) == ["2", "3", "120", "300", "399", "800", "899"]
    assert the_list(rws, p.cop_no).state == "closed"
    assert balance(rws) == GUARANTEE - row.tax
    assert year_total(rws, p.buyer.id_number) == row.dutiable_value
    # Decisions that move nothing are noted with from = to; every move has its own row.
    steps = [(x.from_state, x.to_state) for x in log_of(rws, p.cop_no) if x.code]
    assert steps[-3:] == [
        ("manual_review", "concluded"),
        ("concluded", "released"),
        ("released", "closed"),
    ]


def test_inspection_then_release(rws, keys):
    p = purchase(42)
    declare_purchase(rws, keys, p)
    assert review(rws, p, "inspection", "inspect", "x-ray") == 0
    assert the_list(rws, p.cop_no).state == "inspection"
    last = log_of(rws, p.cop_no)[-1]
    assert (last.to_state, last.code, last.actor) == ("inspection", "500", "inspection officer")
    assert "x-ray" in last.reason
    assert review(rws, p, "customs", "release") == 0
    assert review(rws, p, "inspection", "release") == 0
    assert codes(rws, p) == ["2", "3", "120", "300", "500", "800", "899"]
    row = the_list(rws, p.cop_no)
    assert balance(rws) == GUARANTEE - row.tax
    assert year_total(rws, p.buyer.id_number) == row.dutiable_value


def test_an_officer_returns_a_list_and_tax_and_quota_come_back(rws, keys):
    p = purchase(43)
    declare_purchase(rws, keys, p)
    assert review(rws, p, "customs", "return", "申报品名与实物不符") == 0
    run(rws)
    assert codes(rws, p) == ["2", "3", "120", "300", "100"]
    info = list_receipts(rws, p.cop_no)[-1][1]
    assert info == "[M1] returned in manual review: customs: 申报品名与实物不符"
    last = log_of(rws, p.cop_no)[-1]
    assert (last.from_state, last.to_state, last.code, last.reason) == (
        "manual_review",
        "returned",
        "100",
        info,
    )
    assert the_list(rws, p.cop_no).state == "returned"
    assert balance(rws) == GUARANTEE
    assert year_total(rws, p.buyer.id_number) == 0
    # A returned list may be corrected and declared again.
    assert cli(rws, "declare", p.cop_no) == 0


def test_a_decision_outside_review_is_refused(rws, keys):
    p = purchase(44)
    declare_purchase(rws, keys, p)
    assert review(rws, p, "customs", "return", "no") == 0
    assert review(rws, p, "customs", "release") == 1
    assert the_list(rws, p.cop_no).state == "returned"


def _allow_decisions(ws) -> None:
    """Customs sends unsigned CEB622 decisions (the receipt XSD has no ds:Signature)."""
    doc = config.read_document(ws)
    doc["partners"]["customs"]["signature_by_type"] = {"CEB622Message": "optional"}
    config.write_document(ws, doc)


def _decision(row, status: str, info: str, **keys) -> etree._Element:
    fields = {
        "customsCode": row.customs_code, "ebpCode": row.ebp_code, "ebcCode": row.ebc_code,
        "agentCode": row.agent_code, "copNo": row.cop_no, "preNo": row.pre_no,
        "invtNo": row.invt_no or "", **keys,
    }  # fmt: skip
    receipt = build_receipt(LIST, [ReceiptEntry(status, info, fields)])
    return etree.fromstring(receipt.body)


def test_customs_decides_by_message_and_inspection_by_command(rws, keys):
    _allow_decisions(rws)
    p = purchase(45)
    declare_purchase(rws, keys, p)
    row = the_list(rws, p.cop_no)
    submit(rws, "customs", _decision(row, "800", "放行"))
    run(rws)
    assert the_list(rws, p.cop_no).decisions == {"customs": "release"}
    assert log_of(rws, p.cop_no)[-1].actor == "customs"
    assert review(rws, p, "inspection", "release") == 0
    run(rws)
    assert codes(rws, p) == ["2", "3", "120", "300", "399", "800", "899"]


def test_a_decision_for_an_unknown_list_is_answered_to_customs(rws, keys):
    _allow_decisions(rws)
    p = purchase(46)
    declare_purchase(rws, keys, p)
    row = the_list(rws, p.cop_no)
    submit(rws, "customs", _decision(row, "800", "放行", preNo="B20990101000000001", invtNo=""))
    run(rws)
    [answer] = receipt_entries(rws.outbox_of("customs"), "CEB622Message")
    assert answer.status == "-621001" and "no list with preNo" in answer.info
    assert the_list(rws, p.cop_no).state == "manual_review"


def test_a_ceb622_from_an_enterprise_is_not_accepted(rws, keys):
    p = purchase(47)
    declare_purchase(rws, keys, p)
    row = the_list(rws, p.cop_no)
    submit(rws, "agent", _decision(row, "800", "放行"))
    run(rws)
    [answer] = receipt_entries(rws.outbox_of("agent"), "CEB900Message")
    assert answer.status == "-0001"
    assert the_list(rws, p.cop_no).state == "manual_review"


def test_hs_prefix_rule_names_itself(hub_ws, keys):
    set_guarantee(hub_ws, GUARANTEE)
    p = purchase(48)
    configure(hub_ws, risk={"hs_prefixes": [p.lines[0].gcode[:4]]})
    declare_purchase(hub_ws, keys, p)
    assert the_list(hub_ws, p.cop_no).risk_rule == f"hs:{p.lines[0].gcode[:4]}"


def test_first_purchase_rule_picks_only_a_buyers_first_list(hub_ws, keys):
    from dataclasses import replace

    set_guarantee(hub_ws, GUARANTEE)
    configure(hub_ws, risk={"first_purchase": True})
    first = purchase(49)
    second = replace(purchase(50), buyer=first.buyer, payer=first.buyer)
    declare_purchase(hub_ws, keys, first)
    assert the_list(hub_ws, first.cop_no).risk_rule == "first-purchase"
    declare_purchase(hub_ws, keys, second)
    assert the_list(hub_ws, second.cop_no).state == "closed"


def test_sampling_is_fixed_by_its_seed():
    picks = [sampled(7, f"B20251111{n:09d}", 0.3) for n in range(1000)]
    assert picks == [sampled(7, f"B20251111{n:09d}", 0.3) for n in range(1000)]
    assert 200 < sum(picks) < 400
    assert not any(sampled(7, f"B{n}", 0.0) for n in range(100))
    assert all(sampled(7, f"B{n}", 1.0) for n in range(100))


def test_parties_are_the_demo_ones():
    assert DEMO_PARTIES.assure_code == "4401960002"
