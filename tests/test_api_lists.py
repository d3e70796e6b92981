"""The list endpoints of the API: query, details, declare (batch), operation log, isolation."""

# ruff: noqa: F811  (the `world` fixture is imported, then requested by name)
from __future__ import annotations

import pytest

from tests.console_support import build_lists, world  # noqa: F401


@pytest.fixture
def lw(world, keys):
    return build_lists(world, keys)


def test_query_lists_details_and_log(lw):
    c, alice = lw.world.client(), lw.world.token("alice")
    r = c.get("/api/lists", headers=alice)
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == len(lw.temporary)
    assert {i["copNo"] for i in body["items"]} == {p.cop_no for p in lw.temporary}
    assert all(i["status"] == "temporary" and i["preNo"] for i in body["items"])
    p = lw.temporary[0]
    r = c.get("/api/lists", params={"copNo": p.cop_no}, headers=alice)
    [item] = r.json()["items"]
    assert c.get("/api/lists", params={"screen": "declared"}, headers=alice).json()["total"] == 0
    r = c.get(f"/api/lists/{item['id']}", headers=alice)
    d = r.json()
    assert r.status_code == 200 and d["head"]["copNo"] == p.cop_no
    assert d["order"]["head"]["orderNo"] == p.order_no and d["payment"] and d["waybill"]
    assert d["log"][-1]["toState"] == "temporary"
    r = c.get(f"/api/lists/{item['id']}/log", headers=alice)
    assert r.status_code == 200 and r.json()[-1]["toState"] == "temporary"


def test_declare_in_a_batch_with_a_result_per_list(lw):
    c, alice = lw.world.client(), lw.world.token("alice")
    ids = [lw.list_id(p.cop_no) for p in lw.temporary[:3]]
    r = c.post("/api/lists/declare", json={"ids": ids}, headers=alice)
    assert r.status_code == 200
    assert [x["ok"] for x in r.json()] == [True, True, True]
    assert {x["state"] for x in r.json()} == {"declared"}
    lw.world.process()
    lw.world.process()
    r = c.get("/api/lists", params={"screen": "declared", "status": "manual_review"}, headers=alice)
    assert r.json()["total"] == 3 and {i["riskRule"] for i in r.json()["items"]} == {"value>0"}
    # again: refused one by one, with the reason
    r = c.post("/api/lists/declare", json={"ids": [*ids[:1], lw.list_id(lw.temporary[3].cop_no)]},
               headers=alice)  # fmt: skip
    assert [x["ok"] for x in r.json()] == [False, True]
    assert "only temporary or returned" in r.json()[0]["info"]
    log = c.get(f"/api/lists/{ids[0]}/log", headers=alice).json()
    assert [x["toState"] for x in log][-3:] == ["sent", "accepted", "manual_review"]
    assert c.post("/api/lists/declare", json={"ids": []}, headers=alice).status_code == 422


def test_operator_cannot_reach_another_enterprises_lists_over_the_api(lw):
    c, alice, bob = lw.world.client(), lw.world.token("alice"), lw.world.token("bob")
    bid = lw.list_id(lw.b_list.cop_no)
    assert c.get(f"/api/lists/{bid}", headers=bob).status_code == 200
    assert c.get(f"/api/lists/{bid}", headers=alice).status_code == 404
    assert c.get(f"/api/lists/{bid}/log", headers=alice).status_code == 404
    assert c.post("/api/lists/declare", json={"ids": [bid]}, headers=alice).status_code == 404
    assert (
        c.get("/api/lists", params={"copNo": lw.b_list.cop_no}, headers=alice).json()["total"] == 0
    )
    # mixed with its own: its own are declared, the other one is "no such list"
    own = lw.list_id(lw.temporary[0].cop_no)
    r = c.post("/api/lists/declare", json={"ids": [own, bid]}, headers=alice)
    assert [x["ok"] for x in r.json()] == [True, False] and r.json()[1]["copNo"] is None
    assert c.get(f"/api/lists/{bid}", headers=bob).json()["status"] == "temporary"
    # officers read but do not declare
    carol = lw.world.token("carol")
    assert c.get(f"/api/lists/{bid}", headers=carol).status_code == 200
    assert c.post("/api/lists/declare", json={"ids": [bid]}, headers=carol).status_code == 403


def test_list_endpoints_need_a_token(lw):
    c = lw.world.client()
    for method, path in (("get", "/api/lists"), ("get", "/api/lists/1"), ("get", "/api/lists/1/log"),
                         ("post", "/api/lists/declare")):  # fmt: skip
        assert getattr(c, method)(path).status_code == 401
