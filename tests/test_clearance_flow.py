"""Waiting for documents, batch declaration, modify/delete rules, cancellation and refund."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select, update

from hub import config
from hub.clearance.tables import lists, tax_bills
from hub.clearance.tax import Rate, TaxTable, compute
from hub.codes import LIST_DECLARED
from hub.constants import CEB_NS
from hub.generator import DEMO_PARTIES, cancel_message, make_purchases, refund_message
from hub.store.tables import deliveries
from tests.clearance_support import (
    balance,
    configure,
    db,
    declare_purchase,
    list_receipt_rows,
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
from tests.helpers import cli, files, receipt_entries, traced_sql, unwrap
from tests.helpers import statuses as statuses_of

GUARANTEE = Decimal("10000")


def codes(ws, p) -> list[str]:
    return [s for s, _ in list_receipts(ws, p.cop_no)]


def test_a_list_before_its_documents_is_reviewed_when_the_last_one_arrives(hub_ws, keys):
    set_guarantee(hub_ws, GUARANTEE)
    p = purchase(61)
    send_list(hub_ws, keys, [p])
    run(hub_ws)
    run(hub_ws)
    row = the_list(hub_ws, p.cop_no)
    assert row.state == "sent" and "order" in row.waiting_for and "waybill" in row.waiting_for
    send_documents(hub_ws, keys, [p], waybill=False)
    run(hub_ws)
    row = the_list(hub_ws, p.cop_no)
    assert row.state == "sent" and row.waiting_for.startswith("waybill")
    send_documents(hub_ws, keys, [p], order=False, payment=False)
    run(hub_ws)
    assert codes(hub_ws, p) == ["2", "3", "120", "399", "800", "899"]
    # the review the waybill set off answered in one file, as the sweep's do
    assert sorted(agent_files(hub_ws).values()) == [
        [(p.cop_no, "120"), (p.cop_no, "399"), (p.cop_no, "800"), (p.cop_no, "899")],
        [(p.cop_no, "2")],
        [(p.cop_no, "3")],
    ]


def agent_files(ws) -> dict[str, list[tuple[str, str]]]:
    """(copNo, returnStatus) of each InventoryReturn of each CEB622 the agent got, by guid."""
    by_file = {}
    for path in files(ws.outbox_of("agent"), "CEB622Message_*.xml"):
        root = unwrap(path.read_bytes())
        by_file[root.get("guid")] = [
            (ent.findtext(f"{{{CEB_NS}}}copNo"), ent.findtext(f"{{{CEB_NS}}}returnStatus"))
            for ent in root
        ]
    return by_file


def test_the_statuses_a_list_reaches_in_one_step_are_answered_in_one_ceb622(hub_ws, keys):
    """Declared: one file; sent, reviewed and closed by the sweep: one file of five entries,
    in their order (a CEB622 holds 1..100 InventoryReturn). The receipts table keeps a row an
    entry, the files' guids."""
    set_guarantee(hub_ws, GUARANTEE)
    p = purchase(63)
    declare_purchase(hub_ws, keys, p)
    by_file = agent_files(hub_ws)
    assert sorted(by_file.values()) == [
        [(p.cop_no, "2")],
        [(p.cop_no, s) for s in ("3", "120", "399", "800", "899")],
    ]
    stored = [(r.guid, r.return_status) for r in list_receipt_rows(hub_ws, p.cop_no)]
    assert [(by_file[guid][0][0], status) for guid, status in stored] == [
        (p.cop_no, s) for s in ("2", "3", "120", "399", "800", "899")
    ]
    assert len({guid for guid, _ in stored}) == 2


def test_a_list_whose_documents_never_come_is_returned_for_reason_2_after_the_wait(hub_ws, keys):
    set_guarantee(hub_ws, GUARANTEE)
    configure(hub_ws, wait_seconds=600)
    p = purchase(62)
    send_documents(hub_ws, keys, [p], payment=False)
    send_list(hub_ws, keys, [p])
    run(hub_ws)
    run(hub_ws)
    assert the_list(hub_ws, p.cop_no).state == "sent"
    # Ten minutes pass (the clock is not ours to move, so the list's wait started earlier).
    since = the_list(hub_ws, p.cop_no).waiting_since
    with db(hub_ws).begin() as conn:
        conn.execute(
            update(lists)
            .where(lists.c.cop_no == p.cop_no)
            .values(waiting_since=since - timedelta(seconds=601))
        )
    run(hub_ws)
    assert codes(hub_ws, p) == ["2", "3", "100"]
    info = list_receipts(hub_ws, p.cop_no)[-1][1]
    assert info.startswith("[R2] three orders do not match: payment")
    assert "not received within 600 s" in info
    assert log_of(hub_ws, p.cop_no)[-1].reason_code == "R2"
    assert balance(hub_ws) == GUARANTEE


def test_batch_declare_of_500_temporary_lists_in_one_command(hub_ws, keys):
    set_guarantee(hub_ws, "10000000")
    bought = make_purchases(500, seed=63)
    for start in range(0, 500, 100):
        chunk = bought[start : start + 100]
        send_documents(hub_ws, keys, chunk)
        send_list(hub_ws, keys, chunk, app_status="1")
    run(hub_ws)
    out = hub_ws.root / "declare.json"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli(hub_ws, "declare", "--json", *(p.cop_no for p in bought)) == 0
    out.write_text(buf.getvalue())
    results = json.loads(buf.getvalue())
    assert len(results) == 500 and all(r["state"] == "declared" for r in results)
    run(hub_ws)
    with db(hub_ws).connect() as conn:
        states = conn.execute(select(lists.c.state)).scalars().all()
    assert states == ["closed"] * 500
    closed = [e for e in receipt_entries(hub_ws.outbox_of("agent"), "CEB622Message")]
    assert sum(e.status == "899" for e in closed) == 500


def test_modify_and_delete_only_while_temporary_or_returned(hub_ws, keys):
    set_guarantee(hub_ws, GUARANTEE)
    p = purchase(64)
    send_documents(hub_ws, keys, [p])
    send_list(hub_ws, keys, [p], app_status="1")
    run(hub_ws)
    send_list(hub_ws, keys, [p], app_status="1", app_type="2")  # modify while temporary
    run(hub_ws)
    assert codes(hub_ws, p) == ["1", "1"]
    send_list(hub_ws, keys, [p], app_status="2", app_type="2")  # modify and declare
    run(hub_ws)
    run(hub_ws)
    assert the_list(hub_ws, p.cop_no).state == "closed"
    send_list(hub_ws, keys, [p], app_status="1", app_type="2")
    send_list(hub_ws, keys, [p], app_status="1", app_type="3")
    run(hub_ws)
    refused = [
        e for e in receipt_entries(hub_ws.outbox_of("agent"), "CEB622Message")
        if e.status == "-621004"
    ]  # fmt: skip
    assert len(refused) == 2 and "closed" in refused[0].info
    q = purchase(65)
    send_list(hub_ws, keys, [q], app_status="1")
    run(hub_ws)
    send_list(hub_ws, keys, [q], app_status="1", app_type="3")
    run(hub_ws)
    assert the_list(hub_ws, q.cop_no).state == "deleted"
    assert "删除申报成功" in receipt_entries(hub_ws.outbox_of("agent"), "CEB622Message")[-1].info
    r = purchase(66)
    send_list(hub_ws, keys, [r], app_status="1")
    run(hub_ws)
    assert cli(hub_ws, "list-delete", r.cop_no) == 0
    assert the_list(hub_ws, r.cop_no).state == "deleted"
    assert cli(hub_ws, "declare", r.cop_no) == 0  # a deleted list's copNo may be declared anew


def _accepted(ws, p):
    row = the_list(ws, p.cop_no)
    return replace(p, pre_no=row.pre_no, invt_no=row.invt_no)


def test_cancelling_a_released_list_gives_back_tax_and_quota(hub_ws, keys):
    set_guarantee(hub_ws, GUARANTEE)
    p = purchase(67)
    declare_purchase(hub_ws, keys, p)
    assert balance(hub_ws) < GUARANTEE
    submit(
        hub_ws,
        "agent",
        cancel_message([_accepted(hub_ws, p)], DEMO_PARTIES, sign=keys["agent"].sign),
    )
    run(hub_ws)
    assert statuses_of(hub_ws.outbox_of("agent"), "CEB624Message") == ["2", "399"]
    row = the_list(hub_ws, p.cop_no)
    assert row.state == "cancelled"
    assert balance(hub_ws) == GUARANTEE
    assert year_total(hub_ws, p.buyer.id_number) == 0
    with db(hub_ws).connect() as conn:
        assert conn.execute(select(tax_bills.c.status)).scalar() == "3"
    last = log_of(hub_ws, p.cop_no)[-1]
    assert (last.from_state, last.to_state) == ("closed", "cancelled")
    # Twice is refused: the state no longer allows it.
    submit(
        hub_ws,
        "agent",
        cancel_message([_accepted(hub_ws, p)], DEMO_PARTIES, sign=keys["agent"].sign),
    )
    run(hub_ws)
    assert statuses_of(hub_ws.outbox_of("agent"), "CEB624Message")[-1] == "-623005"


def test_a_partial_refund_gives_back_its_share_and_no_more_than_was_declared(hub_ws, keys):
    set_guarantee(hub_ws, GUARANTEE)
    p = purchase(68, lines=2)
    p = replace(p, lines=tuple(replace(x, qty=Decimal(2)) for x in p.lines))
    declare_purchase(hub_ws, keys, p)
    row = the_list(hub_ws, p.cop_no)
    assert row.state == "closed"
    sign = keys["agent"].sign
    one = {p.order_no: {1: Decimal(1)}}
    submit(
        hub_ws,
        "agent",
        refund_message([_accepted(hub_ws, p)], DEMO_PARTIES, quantities=one, sign=sign),
    )
    run(hub_ws)
    assert statuses_of(hub_ws.outbox_of("agent"), "CEB626Message") == ["2", "399"]
    with db(hub_ws).connect() as conn:
        bill = conn.execute(select(tax_bills)).one()
    line1 = next(x for x in bill.lines if x["gnum"] == "1")
    tax_back = ((Decimal(line1["valueAddedTax"]) + Decimal(line1["consumptionTax"])) / 2).quantize(
        Decimal("0.01")
    )
    value_back = (Decimal(line1["taxPrice"]) / 2).quantize(Decimal("0.01"))
    assert balance(hub_ws) == GUARANTEE - row.tax + tax_back
    assert year_total(hub_ws, p.buyer.id_number) == row.dutiable_value - value_back
    assert the_list(hub_ws, p.cop_no).state == "refunded"
    two = {p.order_no: {1: Decimal(2)}}  # 1 returned already: 2 more is over the 2 declared
    submit(
        hub_ws,
        "agent",
        refund_message([_accepted(hub_ws, p)], DEMO_PARTIES, quantities=two, sign=sign),
    )
    run(hub_ws)
    assert statuses_of(hub_ws.outbox_of("agent"), "CEB626Message")[-1] == "-625002"
    assert balance(hub_ws) == GUARANTEE - row.tax + tax_back


def test_a_refund_after_thirty_days_is_refused(hub_ws, keys):
    set_guarantee(hub_ws, GUARANTEE)
    p = purchase(69)
    declare_purchase(hub_ws, keys, p)
    released = the_list(hub_ws, p.cop_no).released_at
    with db(hub_ws).begin() as conn:
        conn.execute(
            update(lists)
            .where(lists.c.cop_no == p.cop_no)
            .values(released_at=released - timedelta(days=31))
        )
    submit(
        hub_ws,
        "agent",
        refund_message([_accepted(hub_ws, p)], DEMO_PARTIES, sign=keys["agent"].sign),
    )
    run(hub_ws)
    [entry] = receipt_entries(hub_ws.outbox_of("agent"), "CEB626Message")
    assert entry.status == "-625001" and "over 30 days" in entry.info


def test_an_order_finds_the_list_waiting_for_it_by_its_key_not_by_reading_every_waiting_list(
    hub_ws, keys
):
    """At scale hundreds of lists wait at 3; each accepted document must look up only its own."""
    set_guarantee(hub_ws, GUARANTEE)
    waiting = [purchase(70 + i) for i in range(3)]
    for p in waiting:
        send_list(hub_ws, keys, [p])
    run(hub_ws)
    run(hub_ws)
    assert {the_list(hub_ws, p.cop_no).state for p in waiting} == {"sent"}
    send_documents(hub_ws, keys, [waiting[0]])

    statements: list[str] = []
    with traced_sql(statements):
        run(hub_ws)

    assert codes(hub_ws, waiting[0])[-1] == "899"
    engine = db(hub_ws)
    plans = []
    with engine.connect() as conn:
        for sql in {s for s in statements if s.lstrip().upper().startswith("SELECT")}:
            if not re.search(r"\bFROM lists\b", sql):
                continue
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all()
            plans.append((sql, " / ".join(str(r[-1]) for r in plan)))
    assert plans, "no look-up of lists was traced"
    by_order_key = [(sql, plan) for sql, plan in plans if "lists.order_no =" in sql]
    assert by_order_key, plans
    readers_of_every_waiting_list = [
        (sql, plan) for sql, plan in by_order_key if "ix_lists_order" not in plan
    ]
    assert not readers_of_every_waiting_list, readers_of_every_waiting_list


def _own_tax_table(ws) -> TaxTable:
    """Write the workspace's own table: every HS code at VAT 5 %, no consumption tax."""
    rate = Rate(Decimal("0.05"), Decimal(0))
    rows = "".join(f"{d},0.05,0,test rate\n" for d in "0123456789")
    (ws.root / "config" / "tax_rates.csv").write_text(f"hs_prefix,vat,consumption_tax,note\n{rows}")
    return TaxTable({d: rate for d in "0123456789"})


def test_a_workspace_s_own_tax_table_taxes_a_list_reviewed_when_its_documents_arrive(
    hub_ws, keys, tmp_path, monkeypatch
):
    # A hub run as a service (`cebhub -w /srv/hub run`) has another working directory: the
    # list reviewed as its last document is recorded must still be taxed by hub_ws's table.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CEBHUB_HOME", raising=False)
    table = _own_tax_table(hub_ws)
    set_guarantee(hub_ws, GUARANTEE)
    p = purchase(81)
    send_list(hub_ws, keys, [p])
    run(hub_ws)
    run(hub_ws)
    assert the_list(hub_ws, p.cop_no).state == "sent"  # waiting for its documents
    send_documents(hub_ws, keys, [p])
    run(hub_ws)

    row = the_list(hub_ws, p.cop_no)
    assert codes(hub_ws, p)[-1] == "899"
    expected = compute(row.head, row.lines, table)
    with db(hub_ws).connect() as conn:
        bill = conn.execute(select(tax_bills).where(tax_bills.c.list_id == row.id)).one()
    assert bill.value_added_tax == expected.value_added_tax > 0
    assert bill.consumption_tax == 0


def test_a_new_list_is_inserted_without_a_look_up_and_a_deleted_one_comes_back_in_its_row(
    hub_ws, keys
):
    p = purchase(67)
    statements: list[str] = []
    with traced_sql(statements):
        send_list(hub_ws, keys, [p], app_status="1")  # saved, not declared
        run(hub_ws)
    on_lists = [
        s.strip()
        for s in statements
        if re.match(r"\s*(INSERT INTO|UPDATE) lists\b", s) or re.search(r"\bFROM lists\b", s)
    ]
    # its id is drawn first; then one INSERT writes it whole, its preNo in it
    assert on_lists[0].startswith("SELECT coalesce(max(lists.id), 0) + 1"), on_lists
    assert on_lists[1].startswith("INSERT INTO lists (id, "), on_lists
    assert "ON CONFLICT (agent_code, cop_no) DO NOTHING" in on_lists[1]
    numbering = [s for s in on_lists if s.startswith("UPDATE lists") and "pre_no" in s]
    assert not numbering, numbering
    by_key = [s for s in on_lists if s.startswith("SELECT") and "lists.cop_no = " in s]
    assert not by_key, by_key
    first = the_list(hub_ws, p.cop_no)
    assert (first.state, first.pre_no[:1]) == ("temporary", "B")

    send_list(hub_ws, keys, [p], app_status="1")  # the same key as new again: refused
    run(hub_ws)
    assert statuses_of(hub_ws.outbox_of("agent"), "CEB622Message")[-1] == LIST_DECLARED
    send_list(hub_ws, keys, [p], app_status="1", app_type="3")
    run(hub_ws)
    assert the_list(hub_ws, p.cop_no).state == "deleted"
    send_list(hub_ws, keys, [p], app_status="1")  # new again: the deleted list comes back
    run(hub_ws)
    again = the_list(hub_ws, p.cop_no)
    assert (again.id, again.pre_no, again.state) == (first.id, first.pre_no, "temporary")


def test_the_lists_of_one_message_share_its_copies_and_look_up_none_of_them(hub_ws, keys):
    """The message was recorded in the same transaction: its routed copies are the ones its
    own lists queued, and its guid and body are in hand, so declaring reads neither."""
    batch = [purchase(90 + i) for i in range(3)]
    send_list(hub_ws, keys, batch)
    statements: list[str] = []
    with traced_sql(statements):
        run(hub_ws)

    # the partners that have the copy already, and the message's guid (and body)
    look_up = re.compile(r"\s*SELECT (deliveries\.partner_id\s+FROM deliveries|messages\.guid)\b")
    copy_look_ups = [s for s in statements if look_up.match(s)]
    assert not copy_look_ups, copy_look_ups
    assert {the_list(hub_ws, p.cop_no).state for p in batch} == {"sent"}  # copies out
    with db(hub_ws).connect() as conn:
        copies = conn.execute(
            select(deliveries.c.partner_id, deliveries.c.message_id).where(
                deliveries.c.kind == "route", deliveries.c.msg_type == "CEB621Message"
            )
        ).all()
    targets = sorted(p.id for p in config.load(hub_ws).route_targets("CEB621Message"))
    assert targets and sorted(partner for partner, _ in copies) == targets  # once each
    assert len({message for _, message in copies}) == 1
    # a list's delivery rows go in one statement: the copies with the first list's receipt
    inserting_copies = [
        s for s in statements if s.lstrip().startswith("INSERT INTO deliveries") and "'route'" in s
    ]
    assert len(inserting_copies) == 1, inserting_copies
