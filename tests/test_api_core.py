"""The HTTP API: bearer tokens, submitting a message, querying orders, the OpenAPI document."""

# ruff: noqa: F811  (the `world` fixture is imported, then requested by name)
from __future__ import annotations

import io

from sqlalchemy import select

from hub.console.tables import tokens
from hub.generator import DEMO_PARTIES, make_purchases, order_message, to_bytes
from hub.store.tables import orders
from tests.console_support import world  # noqa: F401
from tests.helpers import cli


def test_every_api_call_needs_a_valid_bearer_token(world):
    c = world.client()
    calls = [
        ("get", "/api/orders"),
        ("get", "/api/orders/1"),
        ("post", "/api/messages?partner=platform"),
        ("get", "/api/feed/customs"),
        ("post", "/api/feed/customs/ack"),
    ]
    for method, path in calls:
        for headers in ({}, {"Authorization": "Bearer ceb_wrong"}, {"Authorization": "Basic x"}):
            r = getattr(c, method)(path, headers=headers)
            assert r.status_code == 401, (path, headers)
            assert r.headers["www-authenticate"] == "Bearer"
    # a logged-in browser session is not an API credential
    browser = world.client("alice")
    assert browser.get("/api/orders").status_code == 401


def test_tokens_are_stored_hashed_and_record_their_use(world):
    headers = world.token("alice")
    secret = headers["Authorization"].split()[1]
    with world.engine.connect() as conn:
        row = conn.execute(select(tokens)).one()
    assert secret not in (row.token_hash, row.prefix) and secret.startswith(row.prefix)
    assert row.last_used_at is None
    assert world.client().get("/api/orders", headers=headers).status_code == 200
    with world.engine.connect() as conn:
        assert conn.execute(select(tokens.c.last_used_at)).scalar() is not None


def test_query_orders_and_one_order(world):
    c = world.client()
    r = c.get("/api/orders", headers=world.token("alice"))
    body = r.json()
    assert r.status_code == 200 and body["total"] == 3 and body["pageSize"] == 20
    assert sorted(i["head"]["orderNo"] for i in body["items"]) == sorted(world.a_orders)
    first = body["items"][0]
    r = c.get(
        "/api/orders", params={"orderNo": first["head"]["orderNo"]}, headers=world.token("alice")
    )
    assert [i["id"] for i in r.json()["items"]] == [first["id"]]
    r = c.get(f"/api/orders/{first['id']}", headers=world.token("alice"))
    assert r.status_code == 200 and r.json()["lines"][0]["gnum"] == "1"
    assert c.get("/api/orders", headers=world.token("root")).json()["total"] == 5


def test_operator_cannot_reach_another_enterprises_orders_over_the_api(world):
    c = world.client()
    alice = world.token("alice")
    with world.engine.connect() as conn:
        q = select(orders.c.id).where(orders.c.order_no.in_(world.b_orders))
        ids = conn.execute(q).scalars().all()
    assert len(ids) == 2
    for oid in ids:
        assert c.get(f"/api/orders/{oid}", headers=alice).status_code == 404
    r = c.get("/api/orders", params={"orderNo": world.b_orders[0]}, headers=alice)
    assert r.json()["total"] == 0
    assert c.get("/api/orders/999999", headers=alice).status_code == 404


def test_submit_a_message_returns_its_receipts(world, keys):
    c = world.client()
    purchases = make_purchases(2, seed=21)
    data = to_bytes(order_message(purchases, DEMO_PARTIES, sign=keys["platform"].sign))
    headers = {**world.token("alice"), "Content-Type": "application/xml"}
    r = c.post("/api/messages", params={"partner": "platform"}, content=data, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "accepted" and body["msgType"] == "CEB311Message"
    statuses = sorted(x["returnStatus"] for x in body["receipts"])
    assert statuses == ["120", "120", "2", "2"]
    assert {x["recordKey"] for x in body["receipts"]} >= {p.order_no for p in purchases} or all(
        x["recordKey"] for x in body["receipts"]
    )
    # the same message again: a duplicate, no second effect
    r = c.post("/api/messages", params={"partner": "platform"}, content=data, headers=headers)
    assert r.json()["state"] == "duplicate"
    # the receipts and the copies for customs are delivered like any other message's
    world.process()
    assert list(world.ws.outbox_of("platform").glob("CEB312Message_*.xml"))
    # garbage is answered with a CEB900 and nothing is stored
    r = c.post("/api/messages", params={"partner": "platform"}, content=b"nope", headers=headers)
    assert r.json()["state"] == "rejected"
    assert r.json()["receipts"][0]["msgType"] == "CEB900Message"


def test_submit_only_as_a_partner_of_ones_codes(world, keys):
    c = world.client()
    data = to_bytes(
        order_message(make_purchases(1, seed=3), DEMO_PARTIES, sign=keys["platform"].sign)
    )
    for user, partner in (("alice", "platform2"), ("bob", "platform"), ("carol", "platform")):
        r = c.post(
            "/api/messages", params={"partner": partner}, content=data, headers=world.token(user)
        )
        assert r.status_code == 404, (user, partner)
    r = c.post(
        "/api/messages", params={"partner": "nosuch"}, content=data, headers=world.token("root")
    )
    assert r.status_code == 404
    r = c.post(
        "/api/messages", params={"partner": "platform"}, content=data, headers=world.token("root")
    )
    assert r.json()["state"] == "accepted"


def test_the_openapi_document_is_valid_and_lists_every_endpoint(world):
    c = world.client()
    r = c.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    try:
        from openapi_spec_validator import validate
    except ImportError:  # structural checks only
        validate = None
    if validate is not None:
        validate(doc)
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    expected = {
        "/api/messages": {"post"},
        "/api/orders": {"get"},
        "/api/orders/{order_id}": {"get"},
        "/api/feed/{partner}": {"get"},
        "/api/feed/{partner}/ack": {"post"},
        "/api/lists": {"get"},
        "/api/lists/{list_id}": {"get"},
        "/api/lists/{list_id}/log": {"get"},
        "/api/lists/declare": {"post"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    assert set(paths) == set(expected), "a new endpoint needs its test and a line here"
    assert all(p.startswith("/api/") for p in paths), "pages are not part of the API document"
    assert c.get("/docs").status_code == 200 and "swagger" in c.get("/docs").text.lower()


def test_user_and_token_commands(world, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-pass\n"))
    assert cli(world.ws, "user", "add", "dora", "--role", "operator", "--codes", "A1,B2") == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("x\n"))
    assert cli(world.ws, "user", "add", "dora", "--role", "ops") == 1  # exists
    monkeypatch.setattr("sys.stdin", io.StringIO("x\n"))
    assert cli(world.ws, "user", "add", "eve", "--role", "operator") == 1  # an operator needs codes
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert cli(world.ws, "user", "add", "fay", "--role", "ops") == 1  # empty password
    capsys.readouterr()
    assert cli(world.ws, "user", "list") == 0
    listed = capsys.readouterr().out
    assert '"dora"' in listed and "s3cret" not in listed and '"B2"' in listed
    assert cli(world.ws, "token", "create", "dora") == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("ceb_")
    assert cli(world.ws, "token", "create", "nobody") == 1
    c = world.client()
    r = c.get("/api/orders", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["total"] == 0  # dora's codes have no orders
    # and the password from stdin logs in
    from tests.console_support import csrf_of

    t = csrf_of(c.get("/login").text)
    assert (
        c.post("/login", data={"name": "dora", "password": "s3cret-pass", "csrf": t}).status_code
        == 303
    )
