"""The outbox's inserts: a taken file name is skipped, never an error, on both stores."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from hub.config import Partner, Role, Settings
from hub.delivery.outbox import MANY_ROWS, delivery_row, enqueue, enqueue_many
from hub.routing import Queued, Router
from hub.store.tables import deliveries, metadata
from tests.helpers import insert_message, scratch_engine

NOW = datetime(2026, 11, 26, 9, 30, 1, 250000, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    with scratch_engine(request.param, tmp_path, metadata) as eng:
        yield eng


def row(partner: str, guid: str, body: bytes = b"<r/>", message_id: int | None = None) -> dict:
    return delivery_row(
        partner_id=partner, kind="receipt", msg_type="CEB312Message", guid=guid, body=body,
        message_id=message_id, now=NOW,
    )  # fmt: skip


def one(conn, partner: str, guid: str) -> int | None:
    return enqueue(
        conn, partner_id=partner, kind="receipt", msg_type="CEB312Message", guid=guid,
        body=b"<r/>", message_id=None, now=NOW,
    )  # fmt: skip


def stored(conn) -> dict[tuple[str, str], tuple]:
    """Every delivery row but its id, by (partner, file name)."""
    cols = [c for c in deliveries.c if c.name != "id"]
    return {(r.partner_id, r.file_name): tuple(r) for r in conn.execute(select(*cols))}


def test_rows_whose_name_is_taken_before_or_earlier_in_the_call_are_skipped(engine):
    with engine.begin() as conn:
        assert one(conn, "a", "G1") is not None
        rows = [row("a", "G1"), row("a", "G2"), row("b", "G1"), row("a", "G2", b"<again/>")]
        assert enqueue_many(conn, rows) == [False, True, True, False]
        # More rows than one statement takes: a name repeated across statements is skipped too.
        many = [row("c", f"M{i}") for i in range(MANY_ROWS + 3)] + [row("c", "M0", b"<2nd/>")]
        assert enqueue_many(conn, many) == [True] * (MANY_ROWS + 3) + [False]
        kept = stored(conn)
    assert len(kept) == 3 + MANY_ROWS + 3
    assert kept[("a", "CEB312Message_G2.xml")][5] == b"<r/>"  # the first of the two went in
    assert kept[("c", "CEB312Message_M0.xml")][5] == b"<r/>"


def test_the_rows_written_are_the_rows_core_writes(engine):
    with engine.begin() as conn:
        conn.execute(insert(deliveries), [row("core", "G1"), row("core", "G2")])
        enqueue_many(conn, [row("many", "G1"), row("many", "G2")])
        assert one(conn, "one", "G1") is not None
        assert one(conn, "one", "G1") is None
        kept = stored(conn)
    for name in ("CEB312Message_G1.xml", "CEB312Message_G2.xml"):
        core = kept[("core", name)]
        assert kept[("many", name)][1:] == core[1:]  # all but the partner
    assert kept[("one", "CEB312Message_G1.xml")][1:] == kept[("core", "CEB312Message_G1.xml")][1:]


def test_a_taken_name_falls_back_alone_to_the_message_id_variant(engine):
    partner = Partner(id="shop", role=Role.PLATFORM)
    router = Router(Settings(partners={"shop": partner}))
    with engine.begin() as conn:
        message_id = insert_message(conn, partner_id="shop", body=None, at=NOW)
        enqueue_many(conn, [row("shop", "G1")])
        pending = [
            Queued(partner, "receipt", "CEB312Message", guid, b"<new/>", message_id, NOW, None)
            for guid in ("G1", "G2")
        ]
        router.flush(conn, pending)
        kept = stored(conn)
    assert sorted(name for _, name in kept) == [
        "CEB312Message_G1.xml",
        f"CEB312Message_G1_{message_id}.xml",
        "CEB312Message_G2.xml",
    ]
    assert kept[("shop", "CEB312Message_G1.xml")][5] == b"<r/>"  # the earlier file stays
    assert kept[("shop", f"CEB312Message_G1_{message_id}.xml")][5] == b"<new/>"
    assert pending == []
