"""A record refused after it wrote leaves nothing of itself, whether alone or among others."""

from __future__ import annotations

import random

from sqlalchemy import func, select

from hub import config
from hub.errors import RecordRejected
from hub.generator import DEMO_PARTIES, make_purchases, order_message, to_bytes
from hub.handlers import HANDLERS
from hub.store.db import engine_for
from hub.store.tables import messages, orders, receipts
from tests.helpers import cli, statuses

REFUSED = "-301010"  # the order "exists" code: any record code will do


def _refuse_after_writing(monkeypatch, refused_order_nos: set[str]) -> None:
    """The order handler stores the record, then refuses the ones named."""
    handler = HANDLERS["CEB311Message"]
    real = handler.apply

    def apply(ctx, record):
        outcome = real(ctx, record)  # the row is written by now
        if record.get("orderNo") in refused_order_nos:
            raise RecordRejected(REFUSED, "refused after writing, by the test")
        return outcome

    monkeypatch.setattr(handler, "apply", apply)


def _send(ws, keys, purchases, name: str) -> None:
    root = order_message(purchases, DEMO_PARTIES, sign=keys["platform"].sign)
    src = ws.root / name
    src.write_bytes(to_bytes(root))
    assert cli(ws, "submit", src, "--from", "platform") == 0
    assert cli(ws, "run", "--once") == 0


def _counts(ws) -> tuple[int, int, int]:
    with engine_for(config.load(ws), ws).connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(messages)).scalar(),
            conn.execute(select(func.count()).select_from(orders)).scalar(),
            conn.execute(select(func.count()).select_from(receipts)).scalar(),
        )


def test_a_lone_record_refused_after_writing_leaves_the_message_and_its_refusal(
    hub_ws, keys, monkeypatch
):
    purchase = make_purchases(1, seed=random.Random(11).randint(0, 10**6))[0]
    _refuse_after_writing(monkeypatch, {purchase.order_no})
    _send(hub_ws, keys, [purchase], "one.xml")
    assert statuses(hub_ws.outbox_of("platform")) == [REFUSED]
    assert _counts(hub_ws) == (1, 0, 1)  # the message and its receipt; no order row
    with engine_for(config.load(hub_ws), hub_ws).connect() as conn:
        assert conn.execute(select(messages.c.state)).scalar() == "accepted"
    # Nothing was routed: the only record took no effect.
    assert not list(hub_ws.outbox_of("customs").glob("*.xml"))


def test_one_refused_record_among_several_takes_no_other_down(hub_ws, keys, monkeypatch):
    purchases = make_purchases(3, seed=random.Random(12).randint(0, 10**6))
    _refuse_after_writing(monkeypatch, {purchases[1].order_no})
    _send(hub_ws, keys, purchases, "three.xml")
    with engine_for(config.load(hub_ws), hub_ws).connect() as conn:
        stored = set(conn.execute(select(orders.c.order_no)).scalars())
    assert stored == {purchases[0].order_no, purchases[2].order_no}
    first = statuses(hub_ws.outbox_of("platform"))
    assert sorted(first[:3]) == sorted(["2", REFUSED, "2"])  # receipt 1: every record's first
