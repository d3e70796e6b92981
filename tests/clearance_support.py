"""Helpers of the clearance tests: send linked purchases, read lists, their log and receipts."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal

from sqlalchemy import select

from hub import config
from hub.clearance.tables import guarantees, list_log, lists
from hub.generator import (
    DEMO_PARTIES,
    list_message,
    make_purchase,
    order_message,
    payment_message,
    to_bytes,
    waybill_message,
)
from hub.store.db import engine_for
from hub.store.tables import receipts
from tests.helpers import cli, receipt_entries

ASSURE = DEMO_PARTIES.assure_code
_names = itertools.count()


def db(ws):
    return engine_for(config.load(ws), ws)


def submit(ws, partner: str, root) -> None:
    path = ws.root / f"in-{partner}-{next(_names)}.xml"
    path.write_bytes(to_bytes(root))
    assert cli(ws, "submit", path, "--from", partner) == 0


def run(ws) -> None:
    assert cli(ws, "run", "--once") == 0


def send_documents(ws, keys, purchases, *, order=True, payment=True, waybill=True) -> None:
    if order:
        submit(ws, "platform", order_message(purchases, DEMO_PARTIES, sign=keys["platform"].sign))
    if payment:
        submit(ws, "payment", payment_message(purchases, DEMO_PARTIES, sign=keys["payment"].sign))
    if waybill:
        submit(
            ws, "logistics", waybill_message(purchases, DEMO_PARTIES, sign=keys["logistics"].sign)
        )


def send_list(ws, keys, purchases, *, app_status: str = "2", app_type: str = "1") -> None:
    root = list_message(
        purchases, DEMO_PARTIES, app_status=app_status, app_type=app_type, sign=keys["agent"].sign
    )
    submit(ws, "agent", root)


def purchase(seed: int, **kw):
    """One purchase; `kw` go to `make_purchase` (total_min, total_max, lines, …)."""
    return make_purchase(random.Random(seed), DEMO_PARTIES, **kw)


def set_guarantee(ws, amount, code: str = ASSURE) -> None:
    assert cli(ws, "guarantee", "set", code, amount) == 0


def balance(ws, code: str = ASSURE) -> Decimal:
    with db(ws).connect() as conn:
        return conn.execute(
            select(guarantees.c.balance).where(guarantees.c.assure_code == code)
        ).scalar()


def the_list(ws, cop_no: str):
    with db(ws).connect() as conn:
        return conn.execute(select(lists).where(lists.c.cop_no == cop_no)).one()


def log_of(ws, cop_no: str):
    row = the_list(ws, cop_no)
    with db(ws).connect() as conn:
        return conn.execute(
            select(list_log).where(list_log.c.list_id == row.id).order_by(list_log.c.id)
        ).all()


def list_receipt_rows(ws, cop_no: str) -> list:
    """The receipts rows of the list (guid, return_status, return_info), in order."""
    row = the_list(ws, cop_no)
    with db(ws).connect() as conn:
        return conn.execute(
            select(receipts.c.guid, receipts.c.return_status, receipts.c.return_info)
            .where(receipts.c.record_table == "lists", receipts.c.record_id == row.id)
            .order_by(receipts.c.id)
        ).all()


def list_receipts(ws, cop_no: str) -> list[tuple[str, str]]:
    """(returnStatus, returnInfo) of every CEB622 sent for the list, in order."""
    return [(r.return_status, r.return_info) for r in list_receipt_rows(ws, cop_no)]


def agent_622(ws, cop_no: str):
    """The CEB622 entries for the list in the agent's outbox."""
    return [
        e
        for e in receipt_entries(ws.outbox_of("agent"), "CEB622Message")
        if e.fields.get("copNo") == cop_no
    ]


def year_total(ws, buyer_id: str) -> Decimal:
    from hub.clearance.quota import year_total as total
    from hub.clock import stamp8

    with db(ws).connect() as conn:
        return total(conn, buyer_id, stamp8()[:4])


def configure(ws, **clearance) -> None:
    """Set [clearance] keys (a dict value for "risk" sets [clearance.risk])."""
    doc = config.read_document(ws)
    section = doc.setdefault("clearance", {})
    for key, value in clearance.items():
        section[key] = value
    config.write_document(ws, doc)


def declare_purchase(ws, keys, p, *, documents: bool = True) -> None:
    """Order, payment and waybill (unless told otherwise), then the list declared; run."""
    if documents:
        send_documents(ws, keys, [p])
    send_list(ws, keys, [p])
    run(ws)
    run(ws)
