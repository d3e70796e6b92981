"""The pull feed: customs and inspection systems pull their deliveries over HTTP and acknowledge."""

# ruff: noqa: F811  (the `world` fixture is imported, then requested by name)
from __future__ import annotations

import base64

from lxml import etree
from sqlalchemy import select

from hub import config
from hub.console.tables import feed_cursors
from hub.generator import DEMO_PARTIES, make_purchases, order_message, to_bytes
from hub.store.tables import deliveries
from tests.console_support import world  # noqa: F401


def _make_pull(world, partner_id: str) -> None:
    doc = config.read_document(world.ws)
    doc["partners"][partner_id]["transport"] = "pull"
    config.write_document(world.ws, doc)


def _send_orders(world, keys, n: int, seed: int) -> None:
    data = to_bytes(
        order_message(make_purchases(n, seed=seed), DEMO_PARTIES, sign=keys["platform"].sign)
    )
    (world.ws.inbox_of("platform") / f"o{seed}.xml").write_bytes(data)
    world.process()


def test_pull_partners_get_no_files_and_pull_then_acknowledge(world, keys):
    written_before = sorted(world.ws.outbox_of("customs").glob("*.xml"))  # a folder partner then
    _make_pull(world, "customs")
    _send_orders(world, keys, 2, seed=41)
    _send_orders(world, keys, 1, seed=42)
    assert sorted(world.ws.outbox_of("customs").glob("*.xml")) == written_before
    assert list(world.ws.outbox_of("inspection").glob("*.xml"))  # folder partners as before
    c = world.client()
    carol = world.token("carol")
    r = c.get("/api/feed/customs", headers=carol)
    assert r.status_code == 200
    body = r.json()
    # everything routed to customs, also what went to its folder before it switched to pull
    ids = [i["id"] for i in body["items"]]
    assert ids == sorted(ids) and len(ids) == 4 and body["next"] == ids[-1]
    root = etree.fromstring(base64.b64decode(body["items"][-1]["body"]))
    assert etree.QName(root).localname == "CEB311Message"
    # paging with the cursor
    r = c.get("/api/feed/customs", params={"limit": 1}, headers=carol)
    assert [i["id"] for i in r.json()["items"]] == ids[:1]
    r = c.get("/api/feed/customs", params={"after": ids[0], "encoding": "text"}, headers=carol)
    assert [i["id"] for i in r.json()["items"]] == ids[1:]
    assert "CEB311Message" in r.json()["items"][0]["body"]
    # what was routed after the switch waits, pending, for the partner's acknowledgement
    with world.engine.connect() as conn:
        waiting = conn.execute(
            select(deliveries.c.id).where(
                deliveries.c.partner_id == "customs", deliveries.c.state == "pending"
            )
        ).scalars()
        assert sorted(waiting) == ids[2:]
    # acknowledge the first: the next pull (default cursor) starts after it
    r = c.post("/api/feed/customs/ack", json={"through": ids[0]}, headers=carol)
    assert r.status_code == 200 and r.json() == {"partner": "customs", "acknowledged": 1}
    r = c.get("/api/feed/customs", headers=carol)
    assert [i["id"] for i in r.json()["items"]] == ids[1:]
    # an acknowledgement never goes back
    r = c.post("/api/feed/customs/ack", json={"through": 0}, headers=carol)
    assert r.json()["acknowledged"] == 0
    r = c.post("/api/feed/customs/ack", json={"through": ids[-1]}, headers=carol)
    assert r.json()["acknowledged"] == len(ids) - 1
    assert c.get("/api/feed/customs", headers=carol).json()["items"] == []
    with world.engine.connect() as conn:
        assert conn.execute(select(feed_cursors.c.acked_through)).scalar() == ids[-1]
        states = (
            conn.execute(select(deliveries.c.state).where(deliveries.c.partner_id == "customs"))
            .scalars()
            .all()
        )
    assert set(states) == {"delivered"}


def test_only_the_partners_own_role_may_pull_and_only_pull_partners_have_a_feed(world):
    _make_pull(world, "customs")
    c = world.client()
    for user in ("alice", "ivan"):  # an operator; an inspection officer is not customs
        assert c.get("/api/feed/customs", headers=world.token(user)).status_code == 404
        r = c.post("/api/feed/customs/ack", json={"through": 10**9}, headers=world.token(user))
        assert r.status_code == 404
    for user in ("carol", "root", "olga"):
        assert c.get("/api/feed/customs", headers=world.token(user)).status_code == 200
    # inspection still reads its folder: no feed
    assert c.get("/api/feed/inspection", headers=world.token("ivan")).status_code == 404
    assert c.get("/api/feed/nosuch", headers=world.token("root")).status_code == 404
    assert c.get("/api/feed/customs?limit=0", headers=world.token("root")).status_code == 422
