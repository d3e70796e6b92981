"""The list lifecycle end to end: temporary, declared, sent, accepted, concluded, released, closed."""

from __future__ import annotations

from decimal import Decimal

from hub.generator import DEMO_PARTIES
from tests.clearance_support import (
    agent_622,
    balance,
    list_receipts,
    log_of,
    purchase,
    run,
    send_documents,
    send_list,
    set_guarantee,
    the_list,
)
from tests.helpers import cli


def test_a_purchase_goes_from_temporary_to_closed_with_a_receipt_and_a_log_row_per_step(
    hub_ws, keys
):
    p = purchase(1)
    set_guarantee(hub_ws, "10000")
    send_documents(hub_ws, keys, [p])
    send_list(hub_ws, keys, [p], app_status="1")
    run(hub_ws)
    assert [s for s, _ in list_receipts(hub_ws, p.cop_no)] == ["1"]
    assert cli(hub_ws, "declare", p.cop_no) == 0
    run(hub_ws)

    chain = ["1", "2", "3", "120", "399", "800", "899"]
    assert [s for s, _ in list_receipts(hub_ws, p.cop_no)] == chain
    sent = agent_622(hub_ws, p.cop_no)
    assert sorted(e.status for e in sent) == sorted(chain)  # one file entry per status
    row = the_list(hub_ws, p.cop_no)
    assert row.state == "closed"
    assert len(row.pre_no) == 18 and row.pre_no.startswith("B")
    assert len(row.invt_no) == 18 and row.invt_no[:4] == DEMO_PARTIES.customs_code
    assert row.invt_no[8] == "I"
    assert all(e.fields["preNo"] == row.pre_no for e in sent)
    steps = [(r.from_state, r.to_state, r.code) for r in log_of(hub_ws, p.cop_no)]
    assert steps == [
        (None, "temporary", "1"),
        ("temporary", "declared", "2"),
        ("declared", "sent", "3"),
        ("sent", "accepted", "120"),
        ("accepted", "concluded", "399"),
        ("concluded", "released", "800"),
        ("released", "closed", "899"),
    ]
    assert row.tax > 0
    assert balance(hub_ws) == Decimal("10000") - row.tax
