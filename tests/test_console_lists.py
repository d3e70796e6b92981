"""List screens and the review queue: query, details, modify, delete, declare, decide, isolation."""

# ruff: noqa: F811  (the `world` fixture is imported, then requested by name)
from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.clearance.tables import list_log, lists
from tests.console_support import build_lists, page_csrf, world  # noqa: F401


@pytest.fixture
def lw(world, keys):
    return build_lists(world, keys)


def _row(lw, cop_no):
    with lw.world.engine.connect() as conn:
        return conn.execute(select(lists).where(lists.c.cop_no == cop_no)).one()


def _log(lw, cop_no):
    row = _row(lw, cop_no)
    with lw.world.engine.connect() as conn:
        q = select(list_log).where(list_log.c.list_id == row.id).order_by(list_log.c.id)
        return conn.execute(q).all()


def _declare(lw, client, cop_nos):
    ids = [str(lw.list_id(c)) for c in cop_nos]
    return client.post(
        "/lists/declare", data={"ids": ids, "csrf": page_csrf(client, "/lists/pending")}
    )


def test_list_to_be_declared_and_details_with_the_three_order_match(lw):
    c = lw.world.client("alice")
    r = c.get("/lists/pending")
    assert r.status_code == 200
    for p in lw.temporary:
        assert p.cop_no in r.text
    assert lw.b_list.cop_no not in r.text
    assert r.text.count('type="checkbox" name="ids"') == len(lw.temporary)
    assert 'title="preNo"' in r.text and "预录入编号" in r.text
    assert "共 0 条" in c.get("/lists/declared").text
    p = lw.temporary[0]
    assert p.cop_no in c.get("/lists/pending", params={"copNo": p.cop_no}).text
    r = c.get("/lists/pending", params={"orderNo": p.order_no})
    assert "共 1 条" in r.text
    r = c.get(f"/lists/{lw.list_id(p.cop_no)}")
    assert r.status_code == 200
    assert "Three-order match" in r.text and "✓ 一致 match" in r.text
    assert 'class="mismatch"' not in r.text
    assert p.order_no in r.text and p.logistics_no in r.text
    assert 'id="modify"' in r.text and 'id="declare"' in r.text and 'id="delete"' in r.text
    r = c.get(f"/lists/{lw.list_id(p.cop_no)}/xml")
    assert r.status_code == 200 and b"CEB621Message" in r.content


def test_modify_saves_the_list_and_marks_the_field_that_no_longer_matches(lw):
    c = lw.world.client("alice")
    p = lw.temporary[0]
    lid = lw.list_id(p.cop_no)
    r = c.get(f"/lists/{lid}/edit")
    assert r.status_code == 200 and 'name="consigneeAddress"' in r.text
    r = c.post(
        f"/lists/{lid}/edit",
        data={"csrf": page_csrf(c, f"/lists/{lid}/edit"), "consigneeAddress": "上海市浦东新区世纪大道1号",
              "buyerTelephone": "13800000000", "note": "changed by the console"},
    )  # fmt: skip
    assert (r.status_code, r.headers["location"]) == (303, f"/lists/{lid}?saved=1")
    row = _row(lw, p.cop_no)
    assert row.head["consigneeAddress"] == "上海市浦东新区世纪大道1号"
    assert row.head["note"] == "changed by the console" and row.state == "temporary"
    reasons = [x.reason for x in _log(lw, p.cop_no)]
    assert any("modified: consigneeAddress, buyerTelephone, note" in x for x in reasons)
    page = c.get(f"/lists/{lid}").text
    assert 'class="mismatch"' in page  # the address now differs from the order's and waybill's
    # too long, or an empty address, is refused without a change
    r = c.post(f"/lists/{lid}/edit", data={"csrf": page_csrf(c), "consigneeAddress": ""})
    assert r.status_code == 400
    r = c.post(f"/lists/{lid}/edit", data={"csrf": page_csrf(c), "note": "x" * 1001})
    assert r.status_code == 400


def test_batch_declare_then_a_returned_lists_log_tells_why(lw):
    c = lw.world.client("alice")
    first, second, third = lw.temporary[:3]
    lid = lw.list_id(first.cop_no)
    c.post(
        f"/lists/{lid}/edit", data={"csrf": page_csrf(c), "consigneeAddress": "别处 elsewhere 9号"}
    )
    r = _declare(lw, c, [x.cop_no for x in (first, second, third)])
    assert r.status_code == 200
    assert r.text.count("成功 declared") == 3 and "refused" not in r.text
    lw.world.process()
    lw.world.process()
    assert _row(lw, first.cop_no).state == "returned"
    assert {_row(lw, x.cop_no).state for x in (second, third)} == {"manual_review"}
    r = c.get("/lists/declared", params={"status": "returned"})
    assert first.cop_no in r.text and second.cop_no not in r.text
    r = c.get("/lists/declared", params={"status": "manual_review"})
    assert second.cop_no in r.text and third.cop_no in r.text
    assert first.cop_no in c.get("/lists/pending").text  # returned lists may be declared again
    log = c.get(f"/lists/{lid}/log")
    assert log.status_code == 200
    assert "consignee filing abnormal" in log.text and 'id="return-reason"' in log.text
    assert "[R1]" in log.text
    # declaring a list that is not temporary or returned is refused, per list
    r = _declare(lw, c, [second.cop_no, lw.temporary[3].cop_no])
    assert r.text.count("成功 declared") == 1 and r.text.count("失败 refused") == 1


def test_declare_one_and_delete(lw):
    c = lw.world.client("alice")
    p, q = lw.temporary[2], lw.temporary[3]
    r = c.post(f"/lists/{lw.list_id(p.cop_no)}/declare", data={"csrf": page_csrf(c)})
    assert r.status_code == 200 and "成功 declared" in r.text
    lid = lw.list_id(q.cop_no)
    r = c.post(f"/lists/{lid}/delete", data={"csrf": page_csrf(c)})
    assert (r.status_code, r.headers["location"]) == (303, "/lists/pending?deleted=1")
    assert _row(lw, q.cop_no).state == "deleted"
    assert c.get(f"/lists/{lid}").status_code == 404
    # a declared list can no longer be modified or deleted
    did = lw.list_id(p.cop_no)
    assert c.get(f"/lists/{did}/edit").status_code == 409
    assert c.post(f"/lists/{did}/delete", data={"csrf": page_csrf(c)}).status_code == 409
    r = c.post(f"/lists/{did}/edit", data={"csrf": page_csrf(c), "note": "x"})
    assert r.status_code == 409


def test_review_queue_officers_release_and_return_with_a_reason(lw):
    alice = lw.world.client("alice")
    a, b = lw.temporary[:2]
    _declare(lw, alice, [a.cop_no, b.cop_no])
    lw.world.process()
    lw.world.process()
    carol, ivan = lw.world.client("carol"), lw.world.client("ivan")
    r = carol.get("/review")
    assert r.status_code == 200 and "value&gt;0" in r.text
    for p in (a, b):
        assert _row(lw, p.cop_no).pre_no in r.text
    assert "Nothing waits" in carol.get("/review", params={"riskRule": "hs:"}).text
    assert "Nothing waits" in carol.get("/review", params={"status": "inspection"}).text
    aid, bid = lw.list_id(a.cop_no), lw.list_id(b.cop_no)
    r = carol.post(
        f"/review/{aid}", data={"csrf": page_csrf(carol, "/review"), "decision": "release"}
    )
    assert r.status_code == 303
    assert _row(lw, a.cop_no).decisions == {"customs": "release"}
    r = ivan.post(
        f"/review/{aid}", data={"csrf": page_csrf(ivan, "/review"), "decision": "release"}
    )
    assert r.status_code == 303 and _row(lw, a.cop_no).state == "closed"
    # an admin names the authority it decides as
    root = lw.world.client("root")
    r = root.post(f"/review/{bid}", data={"csrf": page_csrf(root, "/review"), "decision": "pass"})
    assert r.status_code == 400
    r = root.post(f"/review/{bid}", data={"csrf": page_csrf(root, "/review"), "decision": "pass",
                                         "authority": "customs"})  # fmt: skip
    assert r.status_code == 303 and _row(lw, b.cop_no).decisions == {"customs": "pass"}
    # a return needs a reason, which the agent then reads in the log
    r = carol.post(
        f"/review/{bid}", data={"csrf": page_csrf(carol, "/review"), "decision": "return"}
    )
    assert r.status_code == 400
    r = carol.post(f"/review/{bid}", data={"csrf": page_csrf(carol, "/review"), "decision": "return",
                                          "reason": "发票与申报价格不符 invoice price differs"})  # fmt: skip
    assert r.status_code == 303 and _row(lw, b.cop_no).state == "returned"
    log = alice.get(f"/lists/{bid}/log").text
    assert "returned in manual review" in log and "invoice price differs" in log
    # decisions on a list no longer under review are refused
    r = carol.post(f"/review/{aid}", data={"csrf": page_csrf(carol, "/review"), "decision": "pass"})
    assert r.status_code == 409
    assert (
        carol.post(
            "/review/999999", data={"csrf": page_csrf(carol, "/review"), "decision": "pass"}
        ).status_code
        == 404
    )
    r = carol.post(
        f"/review/{aid}", data={"csrf": page_csrf(carol, "/review"), "decision": "bogus"}
    )
    assert r.status_code == 400


def test_roles_on_the_list_screens(lw):
    alice, carol, root = (lw.world.client(u) for u in ("alice", "carol", "root"))
    lid = lw.list_id(lw.temporary[0].cop_no)
    assert alice.get("/review").status_code == 403
    assert (
        alice.post(
            f"/review/{lid}", data={"csrf": page_csrf(alice), "decision": "pass"}
        ).status_code
        == 403
    )
    assert carol.get(f"/lists/{lid}").status_code == 200  # officers read every list
    assert carol.get(f"/lists/{lid}/edit").status_code == 403
    assert (
        carol.post(f"/lists/{lid}/delete", data={"csrf": page_csrf(carol, "/review")}).status_code
        == 403
    )
    assert (
        carol.post(
            "/lists/declare", data={"ids": [lid], "csrf": page_csrf(carol, "/review")}
        ).status_code
        == 403
    )
    assert root.get("/review").status_code == 200
    r = root.post("/lists/declare", data={"csrf": page_csrf(root)})
    assert r.status_code == 400  # nothing selected


def test_list_forms_without_csrf_are_refused(lw):
    alice, carol = lw.world.client("alice"), lw.world.client("carol")
    lid = lw.list_id(lw.temporary[0].cop_no)
    for path, data in (
        ("/lists/declare", {"ids": [lid]}),
        (f"/lists/{lid}/declare", {}),
        (f"/lists/{lid}/delete", {}),
        (f"/lists/{lid}/edit", {"note": "x"}),
    ):
        assert alice.post(path, data=data).status_code == 403, path
        assert alice.post(path, data={**data, "csrf": "forged"}).status_code == 403, path
    assert carol.post(f"/review/{lid}", data={"decision": "pass"}).status_code == 403
    assert _row(lw, lw.temporary[0].cop_no).state == "temporary"
    assert _row(lw, lw.temporary[0].cop_no).head.get("note", "") != "x"


def test_operator_cannot_see_or_touch_another_enterprises_list(lw):
    alice, bob = lw.world.client("alice"), lw.world.client("bob")
    b = lw.b_list
    bid = lw.list_id(b.cop_no)
    assert b.cop_no in bob.get("/lists/pending").text
    assert bob.get(f"/lists/{bid}").status_code == 200
    for path in (f"/lists/{bid}", f"/lists/{bid}/log", f"/lists/{bid}/xml", f"/lists/{bid}/edit"):
        assert alice.get(path).status_code == 404, path
    token = page_csrf(alice)
    assert alice.post(f"/lists/{bid}/edit", data={"csrf": token, "note": "x"}).status_code == 404
    assert alice.post(f"/lists/{bid}/delete", data={"csrf": token}).status_code == 404
    assert alice.post(f"/lists/{bid}/declare", data={"csrf": token}).status_code == 404
    r = alice.post("/lists/declare", data={"csrf": token, "ids": [bid]})
    assert "成功 declared" not in r.text and "no such list" in r.text
    assert "共 0 条" in alice.get("/lists/pending", params={"copNo": b.cop_no}).text
    row = _row(lw, b.cop_no)
    assert (row.state, row.head.get("note", "")) == (
        "temporary",
        b.cop_no and row.head.get("note", ""),
    )
    assert row.state == "temporary" and row.head.get("note") != "x"
    # and the other way round
    aid = lw.list_id(lw.temporary[0].cop_no)
    assert bob.get(f"/lists/{aid}").status_code == 404
    assert bob.get(f"/lists/{aid}/log").status_code == 404


def test_payments_and_waybills_query_and_details(lw):
    from hub.console.auth import add_user
    from hub.generator import DEMO_PARTIES
    from hub.store.tables import payments, waybills
    from tests.console_support import password

    # the logistics company's clerk: waybills carry only the logistics company's code
    add_user(lw.world.engine, "lena", "operator", [DEMO_PARTIES.logistics_code], password("lena"))
    alice, bob, lena = (lw.world.client(u) for u in ("alice", "bob", "lena"))
    p = lw.temporary[0]
    r = alice.get("/payments", params={"orderNo": p.order_no})
    assert "共 1 条" in r.text and p.pay_transaction_id in r.text
    assert 'title="payTransactionId"' in r.text
    assert "共 0 条" in alice.get("/waybills").text
    r = lena.get("/waybills", params={"logisticsNo": p.logistics_no})
    assert "共 1 条" in r.text and 'title="logisticsNo"' in r.text
    assert "共 0 条" in lena.get("/payments").text and "共 0 条" in lena.get("/orders").text
    with lw.world.engine.connect() as conn:
        pay_id = conn.execute(
            select(payments.c.id).where(payments.c.order_no == p.order_no)
        ).scalar_one()
        way_id = conn.execute(
            select(waybills.c.id).where(waybills.c.logistics_no == p.logistics_no)
        ).scalar_one()
    for owner, other, path in (
        (alice, lena, f"/payments/{pay_id}"),
        (lena, alice, f"/waybills/{way_id}"),
    ):
        r = owner.get(path)
        assert r.status_code == 200 and p.order_no in r.text
        assert owner.get(f"{path}/xml").status_code == 200
        assert other.get(path).status_code == 404 and other.get(f"{path}/xml").status_code == 404
        assert bob.get(path).status_code == 404 and bob.get(f"{path}/xml").status_code == 404
    assert "共 0 条" in bob.get("/payments").text and "共 0 条" in bob.get("/waybills").text
