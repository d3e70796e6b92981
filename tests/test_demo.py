"""`cebhub demo`: a small day of traffic fills every table the console's screens read."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hub import config
from hub.clearance.tables import guarantees, identities, list_log, lists
from hub.console.app import create_app
from hub.store.db import engine_for
from hub.store.tables import orders, payments, waybill_statuses, waybills
from tests.console_support import csrf_of
from tests.helpers import cli

PASSWORD = "demo-pass-1"


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory):
    from hub.store.db import dispose_all
    from hub.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("demo") / "ws")
    assert cli(ws, "init") == 0
    assert cli(ws, "demo", "--purchases", 40, "--seed", 7, "--password", PASSWORD, "-q") == 0
    yield ws
    dispose_all()


def _engine(ws):
    return engine_for(config.load(ws), ws)


def _count(conn, table, *where) -> int:
    return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def test_the_demo_fills_every_table_the_screens_read(demo_ws):
    with _engine(demo_ws).connect() as conn:
        assert _count(conn, orders) >= 40
        assert _count(conn, payments) >= 40
        assert _count(conn, waybills) >= 39  # one purchase waits for its waybill
        assert _count(conn, waybill_statuses) >= 1
        assert _count(conn, guarantees) == 1
        assert _count(conn, identities) >= 1
        states = dict(
            conn.execute(select(lists.c.state, func.count()).group_by(lists.c.state)).all()
        )
        returned = set(
            conn.execute(
                select(list_log.c.reason_code, list_log.c.code).where(
                    list_log.c.to_state == "returned"
                )
            ).all()
        )
    for state in ("temporary", "sent", "returned", "manual_review", "inspection", "closed"):
        assert states.get(state, 0) >= 1, (state, states)
    assert states["closed"] > states["returned"]  # most of the day is clean
    for reason in ("R1", "R2", "R3", "R4", "R5", "M1"):
        assert (reason, "100") in returned, reason
    assert ("L1", "-621005") in returned and ("L2", "-621018") in returned


def test_quarantine_holds_the_demo_junk_with_reasons(demo_ws):
    held = sorted(p.name for p in demo_ws.quarantine.glob("*/*") if p.suffix == ".xml")
    assert len(held) == 2
    assert len(list(demo_ws.quarantine.glob("*/*.reason.txt"))) == 2


def test_a_second_run_keeps_partners_and_users_and_adds_traffic(demo_ws):
    with _engine(demo_ws).connect() as conn:
        before = _count(conn, orders)
    assert cli(demo_ws, "demo", "--purchases", 20, "--seed", 8, "-q") == 0
    assert sorted(config.load(demo_ws).partners) == [
        "agent", "customs", "inspection", "logistics", "payment", "platform",
    ]  # fmt: skip
    with _engine(demo_ws).connect() as conn:
        assert _count(conn, orders) >= before + 20


def _client(ws, user: str) -> TestClient:
    client = TestClient(create_app(ws, config.load(ws)), follow_redirects=False)
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"name": user, "password": PASSWORD, "csrf": token})
    assert r.status_code == 303, r.text
    return client


def test_the_console_screens_show_the_demo_data(demo_ws):
    with _engine(demo_ws).connect() as conn:
        order_no = conn.execute(select(orders.c.order_no).limit(1)).scalar_one()
        returned = conn.execute(
            select(lists.c.cop_no).where(lists.c.state == "returned").limit(1)
        ).scalar_one()
        declared = conn.execute(
            select(lists.c.cop_no).where(lists.c.state == "closed").limit(1)
        ).scalar_one()
        in_review = conn.execute(
            select(lists.c.pre_no).where(lists.c.state == "manual_review").limit(1)
        ).scalar_one()
    operator = _client(demo_ws, "operator")
    pages = {
        "/orders": "电子订单",
        "/payments": "PT",
        "/waybills": "SF",
        f"/lists/pending?copNo={returned}": returned,
        f"/lists/declared?copNo={declared}": declared,
    }
    for path, expected in pages.items():
        r = operator.get(path)
        assert r.status_code == 200, path
        assert "没有记录" not in r.text, path
        assert expected in r.text, path
    r = operator.get(f"/orders?orderNo={order_no}")
    assert order_no in r.text
    r = _client(demo_ws, "customs").get("/review")
    assert r.status_code == 200 and in_review in r.text
