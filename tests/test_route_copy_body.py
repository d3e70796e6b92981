"""A routed copy without an envelope keeps no bytes of its own: it goes out as its message's."""

# ruff: noqa: F811  (the `store_ws` / `pg_ws` fixtures are imported, then requested by name)
from __future__ import annotations

import base64
import hashlib

from lxml import etree
from sqlalchemy import select

from hub import config
from hub.clearance.tables import lists
from hub.delivery.outbox import select_with_body
from hub.envelope import DXP_NS
from hub.store.tables import deliveries, messages
from tests.clearance_support import (
    declare_purchase,
    purchase,
    send_documents,
    send_list,
    set_guarantee,
)
from tests.console_support import build_world
from tests.helpers import cli, files
from tests.test_store_backends import (  # noqa: F401
    SlowSink,
    db,
    order,
    pg_ws,
    run,
    store_ws,
    submit,
)


def routed(ws, msg_type: str) -> list:
    """The route rows of `msg_type`: partner, own body, message id, the message's body."""
    with db(ws).connect() as conn:
        return conn.execute(
            select(
                deliveries.c.id,
                deliveries.c.partner_id,
                deliveries.c.file_name,
                deliveries.c.body,
                deliveries.c.message_id,
                messages.c.body.label("message_body"),
            )
            .join(messages, messages.c.id == deliveries.c.message_id)
            .where(deliveries.c.kind == "route", deliveries.c.msg_type == msg_type)
            .order_by(deliveries.c.partner_id)
        ).all()


def outbox_file(ws, partner: str, name: str) -> bytes:
    return (ws.outbox_of(partner) / name).read_bytes()


def test_a_routed_copy_keeps_no_body_and_goes_out_as_received(store_ws, keys):
    data = order(keys, [purchase(301)])
    submit(store_ws, "platform", data, "order.xml")
    run(store_ws)
    rows = routed(store_ws, "CEB311Message")
    assert [r.partner_id for r in rows] == ["customs", "inspection"]
    with db(store_ws).connect() as conn:
        [message_id] = conn.execute(select(messages.c.id)).scalars()
    for r in rows:
        assert r.body is None and r.message_id == message_id
        assert bytes(r.message_body) == data
        assert outbox_file(store_ws, r.partner_id, r.file_name) == data  # byte for byte
    # a receipt's bytes are its own, and what the platform got
    with db(store_ws).connect() as conn:
        receipts = conn.execute(
            select(deliveries.c.file_name, deliveries.c.body).where(deliveries.c.kind == "receipt")
        ).all()
    assert len(receipts) == 1  # 2 and 120 in one
    for r in receipts:
        assert r.body is not None and bytes(r.body) != data
        assert outbox_file(store_ws, "platform", r.file_name) == bytes(r.body)


def test_readers_get_the_same_bytes_a_row_of_its_own_would_give(store_ws, keys):
    data = order(keys, [purchase(302)])
    submit(store_ws, "platform", data, "order.xml")
    run(store_ws)
    with db(store_ws).connect() as conn:
        got = conn.execute(
            select_with_body(deliveries.c.kind, deliveries.c.body.label("own")).order_by(
                deliveries.c.id
            )
        ).all()
    assert sorted(r.kind for r in got) == ["receipt", "route", "route"]
    for r in got:
        assert bytes(r.body) == (data if r.kind == "route" else bytes(r.own))


def test_a_list_routed_by_the_lifecycle_refers_to_the_list_message(store_ws, keys):
    set_guarantee(store_ws, "10000")
    p = purchase(303)
    declare_purchase(store_ws, keys, p)  # documents, the list, and the sweep's round
    with db(store_ws).connect() as conn:
        list_message = conn.execute(
            select(lists.c.message_id).where(lists.c.cop_no == p.cop_no)
        ).scalar_one()
        sha = conn.execute(
            select(messages.c.sha256).where(messages.c.id == list_message)
        ).scalar_one()
    rows = routed(store_ws, "CEB621Message")
    assert [r.partner_id for r in rows] == ["customs", "inspection"]
    for r in rows:
        assert r.body is None and r.message_id == list_message
        sent = outbox_file(store_ws, r.partner_id, r.file_name)
        assert sent == bytes(r.message_body) and hashlib.sha256(sent).hexdigest() == sha


def test_a_list_declared_later_refers_to_the_message_that_saved_it(store_ws, keys):
    set_guarantee(store_ws, "10000")
    p = purchase(304)
    send_documents(store_ws, keys, [p])
    send_list(store_ws, keys, [p], app_status="1")  # saved, not declared
    run(store_ws)
    assert routed(store_ws, "CEB621Message") == []
    assert cli(store_ws, "declare", p.cop_no) == 0  # outside the pipeline: lifecycle.send_copies
    run(store_ws)
    with db(store_ws).connect() as conn:
        list_message = conn.execute(
            select(lists.c.message_id).where(lists.c.cop_no == p.cop_no)
        ).scalar_one()
    rows = routed(store_ws, "CEB621Message")
    assert [r.partner_id for r in rows] == ["customs", "inspection"]
    for r in rows:
        assert r.body is None and r.message_id == list_message
        assert outbox_file(store_ws, r.partner_id, r.file_name) == bytes(r.message_body)


def test_a_dxp_partner_keeps_its_own_signed_envelope(store_ws, keys):
    doc = config.read_document(store_ws)
    doc["partners"]["customs"]["envelope"] = "dxp"
    doc["partners"]["customs"]["dxp_id"] = "DXPCUSTOMS01"
    config.write_document(store_ws, doc)
    data = order(keys, [purchase(305)])
    submit(store_ws, "platform", data, "order.xml")
    run(store_ws)
    customs, inspection = routed(store_ws, "CEB311Message")
    assert inspection.body is None
    assert outbox_file(store_ws, "inspection", inspection.file_name) == data
    envelope = bytes(customs.body)  # wrapped and signed for customs: bytes of its own
    assert outbox_file(store_ws, "customs", customs.file_name) == envelope
    root = etree.fromstring(envelope)
    assert root.tag == f"{{{DXP_NS}}}DxpMsg"
    assert root.findtext(
        f"{{{DXP_NS}}}TransInfo/{{{DXP_NS}}}ReceiverIds/{{{DXP_NS}}}ReceiverId"
    ) == ("DXPCUSTOMS01")
    assert base64.b64decode(root.findtext(f"{{{DXP_NS}}}Data")) == data
    assert root.find("{http://www.w3.org/2000/09/xmldsig#}Signature") is not None


def test_pull_partners_get_the_message_bytes(store_ws, keys):
    world = build_world(store_ws, keys)  # its orders went to customs' folder
    doc = config.read_document(store_ws)
    doc["partners"]["customs"]["transport"] = "pull"
    config.write_document(store_ws, doc)
    data = order(keys, [purchase(306)])
    (store_ws.inbox_of("platform") / "pulled.xml").write_bytes(data)
    world.process()
    rows = routed(store_ws, "CEB311Message")
    customs = [r for r in rows if r.partner_id == "customs"]
    assert len(customs) == 3 and all(r.body is None for r in customs)
    c = world.client()
    carol = world.token("carol")
    items = c.get("/api/feed/customs", headers=carol).json()["items"]
    assert [i["id"] for i in items] == [r.id for r in sorted(customs, key=lambda r: r.id)]
    by_id = {r.id: bytes(r.message_body) for r in customs}
    for item in items:
        assert base64.b64decode(item["body"]) == by_id[item["id"]]
    assert base64.b64decode(items[-1]["body"]) == data
    text_items = c.get("/api/feed/customs", params={"encoding": "text"}, headers=carol).json()
    assert text_items["items"][-1]["body"] == data.decode("utf-8")


def test_resend_writes_the_message_bytes_again(store_ws, keys):
    data = order(keys, [purchase(307)])
    submit(store_ws, "platform", data, "order.xml")
    run(store_ws)
    [customs, _] = routed(store_ws, "CEB311Message")
    path = store_ws.outbox_of("customs") / customs.file_name
    path.unlink()  # customs lost it
    assert cli(store_ws, "resend", customs.id) == 0
    run(store_ws)
    assert path.read_bytes() == data
    assert [p.name for p in files(store_ws.outbox_of("customs"))] == [customs.file_name]
