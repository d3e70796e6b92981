"""The screens' queries through the command line: orders, lists by status, details and log."""

from __future__ import annotations

import json

from tests.clearance_support import (
    declare_purchase,
    purchase,
    run,
    send_documents,
    send_list,
    set_guarantee,
    the_list,
)
from tests.helpers import cli


def _json(capsys, ws, *args) -> object:
    capsys.readouterr()
    assert cli(ws, *args, "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_orders_lists_details_and_log(hub_ws, keys, capsys):
    set_guarantee(hub_ws, "10000")
    done, waiting = purchase(81), purchase(82)
    declare_purchase(hub_ws, keys, done)
    send_documents(hub_ws, keys, [waiting])
    send_list(hub_ws, keys, [waiting], app_status="1")
    run(hub_ws)

    orders = _json(capsys, hub_ws, "orders")
    assert orders["total"] == 2
    assert {r["orderNo"] for r in orders["rows"]} == {done.order_no, waiting.order_no}
    mine = _json(capsys, hub_ws, "orders", "--buyer", done.buyer.id_number)
    assert [r["orderNo"] for r in mine["rows"]] == [done.order_no]
    assert _json(capsys, hub_ws, "orders", "--status", "120", "--size", "1")["total"] == 2
    capsys.readouterr()
    assert cli(hub_ws, "orders", "--order-no", done.order_no, "--details") == 0
    details = json.loads(capsys.readouterr().out)
    assert details["head"]["orderNo"] == done.order_no
    assert [g["gnum"] for g in details["goods"]] == [str(x.gnum) for x in done.lines]

    to_declare = _json(capsys, hub_ws, "lists", "--status", "to-declare")
    assert [r["copNo"] for r in to_declare["rows"]] == [waiting.cop_no]
    closed = _json(capsys, hub_ws, "lists", "--status", "closed")
    assert [r["invtNo"] for r in closed["rows"]] == [the_list(hub_ws, done.cop_no).invt_no]

    pre_no = the_list(hub_ws, done.cop_no).pre_no
    log = _json(capsys, hub_ws, "log", pre_no)
    assert [x["to"] for x in log["log"]] == [
        "declared", "sent", "accepted", "concluded", "released", "closed",
    ]  # fmt: skip
    assert log["order"]["head"]["orderNo"] == done.order_no
    assert log["payment"] is not None and log["waybill"] is not None
    assert log["taxBill"]["status"] == "1"
    capsys.readouterr()
    assert cli(hub_ws, "log", pre_no) == 0
    text = capsys.readouterr().out
    assert "released" in text and "closed" in text and "899" in text
