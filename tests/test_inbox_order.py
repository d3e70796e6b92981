"""Which queued files are claimed first: each partner's oldest, the partners taking turns."""

from __future__ import annotations

import os
import time

from sqlalchemy import select

from adapters.directory import DirectoryInbox
from hub import config
from hub.generator import DEMO_PARTIES, make_purchases, payment_message, to_bytes
from hub.runner import Hub
from hub.store.tables import messages
from tests.clearance_support import db
from tests.helpers import drop_orders


def _drop(folder, name: str, mtime: float) -> None:
    path = folder / name
    path.write_bytes(b"<x/>")
    os.utime(path, (mtime, mtime))


def test_a_partner_s_files_are_claimed_oldest_first_whatever_their_names(ws):
    inbox = DirectoryInbox(ws, [("platform", "immediate")])
    folder = ws.inbox_of("platform")
    landed = {"c.xml": 1_000, "a.xml": 3_000, "b.xml": 2_000, "d.xml": 4_000}
    for name, mtime in landed.items():
        _drop(folder, name, mtime)

    claimed = [c.original_name for c in inbox.claim(10)]

    assert claimed == ["c.xml", "b.xml", "a.xml", "d.xml"]


def test_a_partner_s_backlog_does_not_hold_up_another_partner(ws):
    inbox = DirectoryInbox(ws, [("platform", "immediate"), ("payment", "immediate")])
    for i in range(50):
        _drop(ws.inbox_of("platform"), f"order-{i:02}.xml", 1_000 + i)
    _drop(ws.inbox_of("payment"), "late.xml", 9_000)  # dropped after the whole backlog

    first = inbox.claim(4)

    assert [(c.partner_id, c.original_name) for c in first] == [
        ("platform", "order-00.xml"),
        ("payment", "late.xml"),
        ("platform", "order-01.xml"),
        ("platform", "order-02.xml"),
    ]
    rest = inbox.claim(100)
    assert len(rest) == 47 and {c.partner_id for c in rest} == {"platform"}


def test_the_hub_records_a_payment_dropped_behind_a_backlog_of_orders_in_its_first_batch(
    hub_ws, keys
):
    doc = config.read_document(hub_ws)
    doc["hub"]["batch_size"] = 5
    config.write_document(hub_ws, doc)
    drop_orders(hub_ws, keys, 30)
    purchase = make_purchases(1, seed=99)[0]
    payment = payment_message([purchase], DEMO_PARTIES, sign=keys["payment"].sign)
    (hub_ws.inbox_of("payment") / "payment.xml").write_bytes(to_bytes(payment))

    Hub(hub_ws).run_once()

    with db(hub_ws).connect() as conn:
        order = conn.execute(select(messages.c.msg_type).order_by(messages.c.id)).scalars().all()
    assert len(order) == 31
    assert "CEB411Message" in order[:5], order


def test_claims_taken_in_the_same_nanosecond_get_names_of_their_own(ws, monkeypatch):
    import adapters.directory as directory

    inbox = DirectoryInbox(ws, [("platform", "immediate")])
    for i in range(3):
        _drop(ws.inbox_of("platform"), f"same-{i}.xml", 1_000 + i)
    monkeypatch.setattr(directory.time, "time_ns", lambda: 1_700_000_000_000_000_000)

    claims = inbox.claim(10)

    names = {c.path.name.partition("--")[0] for c in claims}
    assert len(claims) == 3 and len(names) == 3  # none taken over another
    assert {directory.claim_owner(c.path.name) for c in claims} == {
        (os.getpid(), directory._host_tag(os.uname()[1]))
    }
    assert sorted(p.name for p in ws.inbox_of("platform").iterdir()) == []


def test_a_file_that_lands_while_the_folders_are_read_waits_for_the_next_scan(ws):
    """Every partner's queue ends at the moment the scan began: a list dropped after its
    order, into a folder read after the order's, is not queued ahead of that order."""
    inbox = DirectoryInbox(ws, [("platform", "immediate"), ("agent", "immediate")])
    _drop(ws.inbox_of("platform"), "order-1.xml", 1_000)
    _drop(ws.inbox_of("agent"), "list-1.xml", 1_001)
    began = time.time_ns()
    time.sleep(0.02)  # the file system's clock is coarser than time_ns
    _drop(ws.inbox_of("platform"), "order-2.xml", 1_002)  # landed while the scan went on
    _drop(ws.inbox_of("agent"), "list-2.xml", 1_003)

    inbox._scan(started=began)

    queued = [name for _, name in inbox._queue]
    assert queued == ["order-1.xml", "list-1.xml"]
    assert inbox.pending()  # the two that landed late are not forgotten meanwhile
    first = [c.original_name for c in inbox.claim(10)]
    then = [c.original_name for c in inbox.claim(10)]  # the next round scans again
    assert (first, then) == (["order-1.xml", "list-1.xml"], ["order-2.xml", "list-2.xml"])


def test_a_file_is_held_back_once_only_whatever_the_clock_says(ws):
    inbox = DirectoryInbox(ws, [("platform", "immediate")])
    _drop(ws.inbox_of("platform"), "order.xml", 1_000)
    set_back = time.time_ns() - 3_600 * 10**9  # the clock was set back an hour

    inbox._scan(started=set_back)
    assert not inbox._queue  # it seems to have landed after the scan began: it waits
    claimed = [c.original_name for c in inbox.claim(10)]  # the next scan takes it, all the same

    assert claimed == ["order.xml"]
