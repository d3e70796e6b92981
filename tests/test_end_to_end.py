"""The foundation end to end through the command line: files in, orders stored and routed, receipts out."""

from __future__ import annotations

import random
import shutil
from datetime import datetime

from lxml import etree
from sqlalchemy import select

from hub import config, schemas
from hub.clock import utcnow
from hub.generator import DEMO_PARTIES, dxp_envelope, make_purchases, order_message, to_bytes
from hub.signing import key_name, load_trusted, verify_enveloped
from hub.store.db import engine_for
from hub.store.tables import deliveries, messages, orders, receipts
from tests.helpers import SAMPLES, cli, files, receipt_entries, statuses, unwrap


def _db(ws):
    return engine_for(config.load(ws), ws)


def test_official_sample_order_is_stored_routed_and_answered(ws):
    # The official sample carries a placeholder signature: a partner set to "off" stands in.
    codes = "1105910159,1101180326"
    assert (
        cli(
            ws,
            "partner",
            "add",
            "plat",
            "--role",
            "platform",
            "--codes",
            codes,
            "--signature",
            "off",
        )
        == 0
    )
    assert cli(ws, "partner", "add", "cus", "--role", "customs", "--codes", "C") == 0
    assert cli(ws, "partner", "add", "ciq", "--role", "inspection", "--codes", "I") == 0
    assert cli(ws, "submit", SAMPLES / "CEB311Message.xml", "--from", "plat") == 0
    assert cli(ws, "run", "--once") == 0

    # Six orders with one key: the first is stored, the other five already exist.
    entries = receipt_entries(ws.outbox_of("plat"), "CEB312Message")
    assert [e.status for e in entries].count("2") == 1
    assert [e.status for e in entries].count("120") == 1
    assert [e.status for e in entries].count("-301010") == 5
    ok = next(e for e in entries if e.status == "2")
    assert ok.fields["orderNo"] == "order20160321116421002"
    assert ok.fields["ebpCode"] == "1105910159"
    for partner in ("cus", "ciq"):
        copies = files(ws.outbox_of(partner))
        assert [p.name for p in copies] == [
            "CEB311Message_4CDE1CFD-EDED-46B1-946C-B8022E42FC94.xml"
        ]
        assert copies[0].read_bytes() == (SAMPLES / "CEB311Message.xml").read_bytes()
    assert len(files(ws.archive / "plat", "*/*")) == 1
    assert not files(ws.inbox_of("plat"), "*") and not files(ws.claims / "plat", "*")
    with _db(ws).connect() as conn:
        row = conn.execute(select(orders)).one()
        assert (row.ebp_code, row.order_no, row.state) == (
            "1105910159",
            "order20160321116421002",
            "active",
        )
        assert len(row.lines) == 2 and row.lines[0]["itemNo"] == "AF001-001"
        msg = conn.execute(select(messages)).one()
        assert (msg.state, msg.schema_set) == ("accepted", "ceb-import:202205")


def test_generated_signed_order_and_everything_sent_validates(hub_ws, keys):
    purchases = make_purchases(3, seed=7)
    src = hub_ws.root / "orders.xml"
    src.write_bytes(to_bytes(order_message(purchases, DEMO_PARTIES, sign=keys["platform"].sign)))
    assert cli(hub_ws, "submit", src, "--from", "platform") == 0
    assert cli(hub_ws, "run", "--once") == 0

    assert statuses(hub_ws.outbox_of("platform"), "CEB312Message") == ["2"] * 3 + ["120"] * 3
    entries = receipt_entries(hub_ws.outbox_of("platform"))
    assert {e.fields["orderNo"] for e in entries} == {p.order_no for p in purchases}
    for partner in ("platform", "customs", "inspection"):
        sent = files(hub_ws.outbox_of(partner))
        assert sent
        for path in sent:
            schemas.validate(unwrap(path.read_bytes()))  # receipts and copies pass our XSD
    with _db(hub_ws).connect() as conn:
        stored = conn.execute(select(orders.c.order_no, orders.c.actural_paid)).all()
        assert {r.order_no for r in stored} == {p.order_no for p in purchases}
        assert {r.actural_paid for r in stored} == {p.actural_paid for p in purchases}
        assert conn.execute(select(messages.c.signed_by)).scalar() == key_name(
            keys["platform"].cert
        )
        assert all(d.state == "delivered" for d in conn.execute(select(deliveries.c.state)))


def test_a_message_is_answered_in_one_receipt_of_at_most_a_hundred_entries(hub_ws, keys):
    """Every order's 2, then every order's 120, in one receipt while they fit (the spec's
    1..100 entries): 60 orders are answered in two files, 100 entries and 20."""
    purchases = make_purchases(60, seed=8)
    src = hub_ws.root / "orders.xml"
    src.write_bytes(to_bytes(order_message(purchases, DEMO_PARTIES, sign=keys["platform"].sign)))
    assert cli(hub_ws, "submit", src, "--from", "platform") == 0
    assert cli(hub_ws, "run", "--once") == 0

    by_size = sorted(
        ([e.findtext("{*}returnStatus") for e in unwrap(path.read_bytes())], path.name)
        for path in files(hub_ws.outbox_of("platform"))
    )
    assert [statuses for statuses, _ in by_size] == [["120"] * 20, ["2"] * 60 + ["120"] * 40]
    with _db(hub_ws).connect() as conn:
        rows = conn.execute(select(receipts.c.guid, receipts.c.return_status)).all()
    assert len(rows) == 120 and len({guid for guid, _ in rows}) == 2


def test_run_once_exits_zero_on_an_empty_workspace(ws):
    assert cli(ws, "run", "--once") == 0


def test_order_keys_follow_the_app_type_rules(hub_ws, keys):
    rng = random.Random(3)
    purchase = make_purchases(1, seed=rng.randint(0, 10**6))[0]
    sign = keys["platform"].sign
    out = hub_ws.outbox_of("platform")

    def send(app_type: str, **kw) -> list[str]:
        before = len(receipt_entries(out))
        src = hub_ws.root / f"order-{app_type}-{before}.xml"
        root = order_message([purchase], DEMO_PARTIES, app_type=app_type, sign=sign, **kw)
        src.write_bytes(to_bytes(root))
        cli(hub_ws, "submit", src, "--from", "platform")
        cli(hub_ws, "run", "--once")
        return [e.status for e in receipt_entries(out)[before:]]

    assert send("2") == ["-301009"]  # change of an unknown order
    assert send("3") == ["-301009"]  # delete of an unknown order
    assert send("1") == ["2", "120"]
    assert send("1") == ["-301010"]  # the same key again as new
    assert send("2") == ["2", "120"]
    assert send("2", clock=lambda: datetime(2020, 1, 1)) == [
        "-301014"
    ]  # older than the stored version: ignored
    assert send("3") == ["2"]
    assert send("1") == ["2", "120"]  # a deleted key may be declared anew


def test_the_same_message_twice_is_answered_as_a_duplicate_without_effect(hub_ws, keys):
    purchases = make_purchases(2, seed=11)
    data = to_bytes(order_message(purchases, DEMO_PARTIES, sign=keys["platform"].sign))
    for name in ("a.xml", "b.xml"):
        (hub_ws.root / name).write_bytes(data)
        cli(hub_ws, "submit", hub_ws.root / name, "--from", "platform")
        cli(hub_ws, "run", "--once")
    codes = statuses(hub_ws.outbox_of("platform"))
    assert codes == ["2", "2", "120", "120", "-301010", "-301010"]
    dup = receipt_entries(hub_ws.outbox_of("platform"))[-1]
    assert "duplicate" in dup.info
    with _db(hub_ws).connect() as conn:
        assert sorted(s for (s,) in conn.execute(select(messages.c.state))) == [
            "accepted",
            "duplicate",
        ]
    # Only the first is routed on.
    assert len(files(hub_ws.outbox_of("customs"))) == 1


def test_a_message_inside_a_dxp_envelope_is_answered_inside_one_signed_by_the_hub(hub_ws, keys):
    doc = config.read_document(hub_ws)
    doc["partners"]["platform"]["dxp_id"] = DEMO_PARTIES.ebp_dxp_id
    config.write_document(hub_ws, doc)
    payload = to_bytes(
        order_message(make_purchases(1, seed=5), DEMO_PARTIES, sign=keys["platform"].sign)
    )
    env = dxp_envelope(
        payload,
        sender_id=DEMO_PARTIES.ebp_dxp_id,
        receiver_id="DXPEDCCEB0000002",
        msg_type="CEB311Message",
    )
    (hub_ws.root / "env.xml").write_bytes(env)
    cli(hub_ws, "submit", hub_ws.root / "env.xml", "--from", "platform")
    cli(hub_ws, "run", "--once")
    sent = files(hub_ws.outbox_of("platform"))
    assert len(sent) == 1  # one receipt: 2 and 120
    hub_cert = load_trusted(hub_ws.keys / "hub.cert.pem", label="hub")
    for path in sent:
        root = etree.fromstring(path.read_bytes())
        assert etree.QName(root).localname == "DxpMsg"
        assert root.findtext("{*}TransInfo/{*}ReceiverIds/{*}ReceiverId") == DEMO_PARTIES.ebp_dxp_id
        schemas.validate_envelope(root)
        verify_enveloped(root, hub_cert, at=utcnow())
    assert statuses(hub_ws.outbox_of("platform")) == ["2", "120"]


def test_envelope_from_the_wrong_sender_is_refused(hub_ws, keys):
    doc = config.read_document(hub_ws)
    doc["partners"]["platform"]["dxp_id"] = DEMO_PARTIES.ebp_dxp_id
    config.write_document(hub_ws, doc)
    payload = to_bytes(
        order_message(make_purchases(1, seed=6), DEMO_PARTIES, sign=keys["platform"].sign)
    )
    env = dxp_envelope(
        payload,
        sender_id="DXPENT9999999999",
        receiver_id="DXPEDCCEB0000002",
        msg_type="CEB311Message",
    )
    (hub_ws.root / "env.xml").write_bytes(env)
    cli(hub_ws, "submit", hub_ws.root / "env.xml", "--from", "platform")
    cli(hub_ws, "run", "--once")
    [entry] = receipt_entries(hub_ws.outbox_of("platform"))
    assert (entry.msg_type, entry.status) == ("CEB900Message", "-2002")
    assert "SenderId" in entry.info
    assert len(files(hub_ws.quarantine / "platform")) == 1


def test_submit_refuses_an_unknown_partner(ws, capsys):
    shutil.copy(SAMPLES / "CEB311Message.xml", ws.root / "x.xml")
    assert cli(ws, "submit", ws.root / "x.xml", "--from", "nobody") == 1
    assert "no partner nobody" in capsys.readouterr().err
