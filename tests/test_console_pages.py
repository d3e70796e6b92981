"""Console pages: login, the transaction-data screens, import, and what each role may see."""
# ruff: noqa: F811  (the `world` fixture is imported, then requested by name)

from __future__ import annotations

from sqlalchemy import select

from hub.console.tables import audit
from hub.generator import DEMO_PARTIES, make_purchases, order_message, to_bytes
from hub.store.tables import orders
from tests.console_support import csrf_of, login, page_csrf, password, world  # noqa: F401


def _order_id(w, order_no: str) -> int:
    with w.engine.connect() as conn:
        return conn.execute(select(orders.c.id).where(orders.c.order_no == order_no)).scalar_one()


def test_pages_need_a_login_and_send_you_back_after_it(world):
    c = world.client()
    for path in ("/", "/orders", "/orders/1", "/orders/1/goods", "/orders/1/xml", "/payments",
                 "/waybills", "/import", "/import/result?partner=platform"):  # fmt: skip
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    r = c.get("/orders?orderNo=X")
    assert r.headers["location"] == "/login?next=/orders%3ForderNo%3DX"
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"name": "alice", "password": password("alice"), "csrf": token,
                               "next": "/orders?orderNo=X"})  # fmt: skip
    assert (r.status_code, r.headers["location"]) == (303, "/orders?orderNo=X")


def test_wrong_password_unknown_user_and_open_redirect_are_refused(world):
    c = world.client()
    token = csrf_of(c.get("/login").text)
    for name, pw in (("alice", "nope"), ("nobody", "x")):
        r = c.post("/login", data={"name": name, "password": pw, "csrf": token})
        assert r.status_code == 401 and "wrong name or password" in r.text
    r = c.post("/login", data={"name": "alice", "password": password("alice"), "csrf": token,
                               "next": "//evil.example/"})  # fmt: skip
    assert r.headers["location"] == "/"


def test_forms_without_their_csrf_token_are_refused(world):
    c = world.client()
    c.get("/login")
    r = c.post("/login", data={"name": "alice", "password": password("alice")})
    assert r.status_code == 403
    r = c.post("/login", data={"name": "alice", "password": password("alice"), "csrf": "forged"})
    assert r.status_code == 403
    login(c, "alice")
    assert c.post("/logout").status_code == 403
    r = c.post("/import", data={"partner": "platform"}, files={"files": ("a.xml", b"<x/>")})
    assert r.status_code == 403
    assert c.get("/orders").status_code == 200  # still logged in


def test_logout_ends_the_session(world):
    c = world.client("alice")
    r = c.post("/logout", data={"csrf": page_csrf(c)})
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    assert c.get("/orders").status_code == 303


def test_session_cookie_is_signed_with_the_workspace_secret(world):
    secret = world.ws.keys / "console-secret"
    c = world.client("alice")
    assert secret.is_file() and secret.stat().st_mode & 0o077 == 0
    # A second app over the same workspace accepts the session: the secret is kept.
    c2 = world.client()
    c2.cookies.update(c.cookies)
    assert c2.get("/orders").status_code == 200
    with world.engine.connect() as conn:
        assert conn.execute(select(audit.c.action).where(audit.c.actor == "alice")).scalars().all()


def test_order_query_details_and_goods(world):
    c = world.client("alice")
    r = c.get("/orders")
    assert r.status_code == 200
    for no in world.a_orders:
        assert no in r.text
    for no in world.b_orders:
        assert no not in r.text
    assert 'title="orderNo"' in r.text and "订单编号" in r.text and "Order No." in r.text
    # conditions
    first = world.a_orders[0]
    r = c.get("/orders", params={"orderNo": first})
    assert first in r.text and world.a_orders[1] not in r.text
    r = c.get("/orders", params={"ebpCode": DEMO_PARTIES.ebp_code, "returnStatus": "120"})
    assert all(no in r.text for no in world.a_orders)
    r = c.get("/orders", params={"returnStatus": "100"})
    assert not any(no in r.text for no in world.a_orders)
    r = c.get("/orders", params={"dateFrom": "2099-01-01"})
    assert "No records" in r.text
    r = c.get("/orders", params={"dateFrom": "2000-01-01", "dateTo": "2099-12-31"})
    assert all(no in r.text for no in world.a_orders)
    oid = _order_id(world, first)
    with world.engine.connect() as conn:
        row = conn.execute(select(orders).where(orders.c.id == oid)).one()
    r = c.get("/orders", params={"buyer": row.buyer_name})
    assert first in r.text
    r = c.get("/orders", params={"buyer": row.buyer_id_number})
    assert first in r.text
    r = c.get(f"/orders/{oid}")
    assert r.status_code == 200 and row.head["consigneeAddress"] in r.text
    assert 'title="acturalPaid"' in r.text
    r = c.get(f"/orders/{oid}/goods")
    assert r.status_code == 200
    for line in row.lines:
        assert line["itemName"] in r.text
    r = c.get(f"/orders/{oid}/xml")
    assert r.status_code == 200 and b"CEB311Message" in r.content
    assert r.headers["content-type"].startswith("application/xml")


def test_paging(world, keys):
    # 25 more orders of A: two pages of 20.
    purchases = make_purchases(25, seed=99)
    data = to_bytes(order_message(purchases, DEMO_PARTIES, sign=keys["platform"].sign))
    (world.ws.inbox_of("platform") / "more.xml").write_bytes(data)
    world.process()
    c = world.client("alice")
    r = c.get("/orders")
    assert "共 28 条" in r.text and "page=2" in r.text
    r = c.get("/orders", params={"page": 2})
    assert r.text.count('href="/orders/') >= 8 and "page=1" in r.text


def test_payments_and_waybills_screens(world):
    c = world.client("root")
    for path in ("/payments", "/waybills"):
        r = c.get(path)
        assert r.status_code == 200 and "No records" in r.text
    assert c.get("/payments/1").status_code == 404
    assert c.get("/waybills/1/xml").status_code == 404
    assert c.get("/payments/1/goods").status_code == 404  # payments have no goods screen


def test_operator_cannot_reach_another_enterprises_orders(world):
    alice, bob = world.client("alice"), world.client("bob")
    for no in world.b_orders:
        oid = _order_id(world, no)
        for path in (f"/orders/{oid}", f"/orders/{oid}/goods", f"/orders/{oid}/xml"):
            assert alice.get(path).status_code == 404, path
            assert bob.get(path).status_code == 200, path
        assert "共 0 条" in alice.get("/orders", params={"orderNo": no}).text
        assert "共 0 条" in alice.get("/orders", params={"ebpCode": "3301960011"}).text
    for no in world.a_orders:
        assert bob.get(f"/orders/{_order_id(world, no)}").status_code == 404
    # a guessed id that does not exist looks the same as one that is not yours
    assert alice.get("/orders/999999").status_code == 404


def test_officers_ops_and_admin_see_every_enterprise(world):
    for user in ("carol", "ivan", "olga", "root"):
        r = world.client(user).get("/orders")
        assert all(no in r.text for no in world.a_orders + world.b_orders), user
    assert world.client("carol").get("/").headers["location"] == "/review"
    assert world.client("alice").get("/").headers["location"] == "/orders"


def test_import_uploads_go_through_the_inbox_pipeline(world, keys):
    c = world.client("alice")
    r = c.get("/import")
    assert r.status_code == 200 and "platform" in r.text and "platform2" not in r.text
    purchases = make_purchases(2, seed=5)
    good = to_bytes(order_message(purchases, DEMO_PARTIES, sign=keys["platform"].sign))
    r = c.post(
        "/import",
        data={"partner": "platform", "csrf": page_csrf(c, "/import")},
        files=[("files", ("good.xml", good)), ("files", ("bad.xml", b"not xml"))],
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/import/result?")
    dropped = sorted(p.name for p in world.ws.inbox_of("platform").iterdir())
    assert len(dropped) == 2 and all(n.startswith("web-") for n in dropped)
    waiting = c.get(r.headers["location"])
    assert "waiting" in waiting.text and 'http-equiv="refresh"' in waiting.text
    world.process()
    done = c.get(r.headers["location"])
    assert "refresh" not in done.text
    assert "accepted" in done.text and "rejected" in done.text
    assert purchases[0].order_no in done.text  # the receipt's record key
    assert "CEB900" in done.text or "-9" in done.text or "error" in done.text


def test_import_refuses_other_partners_and_roles(world):
    alice = world.client("alice")
    r = alice.post(
        "/import",
        data={"partner": "platform2", "csrf": page_csrf(alice, "/import")},
        files={"files": ("a.xml", b"<x/>")},
    )
    assert r.status_code == 400
    assert not list(world.ws.inbox_of("platform2").glob("*"))
    assert alice.get("/import/result", params={"partner": "platform2", "f": "x"}).status_code == 404
    r = alice.post("/import", data={"partner": "platform", "csrf": page_csrf(alice, "/import")})
    assert r.status_code == 400  # no files
    assert world.client("carol").get("/import").status_code == 403
    assert "platform2" in world.client("root").get("/import").text


def test_bad_parameters_get_a_page_or_a_json_error(world):
    c = world.client("alice")
    r = c.get("/orders/not-a-number")
    assert r.status_code == 400 and "bad request" in r.text
    assert c.get("/nowhere").status_code == 404
    r = world.client().get("/api/orders", params={"page": 0}, headers=world.token("alice"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "page"]
