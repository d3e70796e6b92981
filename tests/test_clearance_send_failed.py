"""A declared list whose copy to customs cannot be delivered is answered 4, and goes on after a resend."""

from __future__ import annotations

from hub import config
from tests.clearance_support import (
    declare_purchase,
    list_receipts,
    log_of,
    purchase,
    run,
    set_guarantee,
    the_list,
)
from tests.helpers import cli


def test_a_dead_route_sends_4_once_and_a_resend_carries_the_list_on(hub_ws, keys):
    set_guarantee(hub_ws, "100000")
    doc = config.read_document(hub_ws)
    doc["delivery"]["max_attempts"] = 1  # the first failure dead-letters the copy
    config.write_document(hub_ws, doc)
    customs_outbox = hub_ws.outbox_of("customs")
    customs_outbox.rmdir()
    customs_outbox.write_text("a file where the customs folder should be")  # writes fail

    p = purchase(901)
    declare_purchase(hub_ws, keys, p)
    run(hub_ws)
    row = the_list(hub_ws, p.cop_no)
    assert row.state == "declared"
    statuses = [s for s, _ in list_receipts(hub_ws, p.cop_no)]
    assert statuses == ["2", "4"]  # answered once, not every round
    info = list_receipts(hub_ws, p.cop_no)[-1][1]
    assert info.startswith("发送海关失败") and "customs" in info
    assert [(r.from_state, r.to_state, r.code) for r in log_of(hub_ws, p.cop_no)][-1] == (
        "declared",
        "declared",
        "4",
    )

    customs_outbox.unlink()  # ops fix the folder and send the dead copies again
    assert cli(hub_ws, "resend", "--dead") == 0
    run(hub_ws)
    run(hub_ws)
    statuses = [s for s, _ in list_receipts(hub_ws, p.cop_no)]
    assert statuses[:4] == ["2", "4", "3", "120"]
    assert the_list(hub_ws, p.cop_no).state in ("concluded", "released", "closed")
