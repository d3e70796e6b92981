"""`cebhub status --json` and the ops dashboard through known states; its actions, audited."""

from __future__ import annotations

import json
import os
import re
import shutil
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub import config
from hub.console.app import create_app
from hub.console.auth import add_user
from hub.console.tables import audit
from hub.generator import DEMO_PARTIES, make_purchases, order_message
from hub.runner import Hub
from hub.store.db import engine_for
from hub.store.tables import deliveries
from tests.clearance_support import declare_purchase, purchase, set_guarantee, submit, the_list
from tests.console_support import csrf_of
from tests.helpers import cli

PASSWORD = "ops-pass-1"


def _engine(ws):
    return engine_for(config.load(ws), ws)


def _age_files(folder, names, seconds_ago: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    when = time.time() - seconds_ago
    for name in names:
        path = folder / name
        path.write_bytes(b"<x/>")
        os.utime(path, (when, when))


@pytest.fixture
def stuck(hub_ws, keys):
    """Known backlog: 3 inbox files (oldest 10 min), 2 outbox files (1 h), one quarantined
    file, and the platform's deliveries dead (its outbox is a file; one attempt allowed)."""
    ws = hub_ws
    doc = config.read_document(ws)
    doc["delivery"]["max_attempts"] = 1
    config.write_document(ws, doc)
    for seed in (3, 4):  # two orders: two receipts
        root = order_message(make_purchases(1, seed=seed), DEMO_PARTIES, sign=keys["platform"].sign)
        submit(ws, "platform", root)
    shutil.rmtree(ws.outbox_of("platform"))
    ws.outbox_of("platform").write_text("not a folder")
    Hub(ws).run_once()
    # Files that arrive for a partner the hub does not pick up now (no run follows).
    _age_files(ws.inbox_of("payment"), ["a.xml", "b.xml"], 60)
    _age_files(ws.inbox_of("payment"), ["c.xml"], 600)
    _age_files(ws.outbox_of("agent"), ["r1.xml", "r2.xml"], 3600)
    q = ws.quarantine / "logistics"
    _age_files(q, ["18eb-ab-1-host--waybill.xml"], 7200)
    (q / "18eb-ab-1-host--waybill.xml.reason.txt").write_text(
        "file: waybill.xml\npartner: logistics\nreason: -1001 CEB511Message must be signed\n"
    )
    add_user(_engine(ws), "olga", "ops", [], PASSWORD)
    add_user(_engine(ws), "alice", "operator", [DEMO_PARTIES.ebp_code], PASSWORD)
    return ws


def test_status_json_counts_and_ages(stuck, capsys):
    capsys.readouterr()
    assert cli(stuck, "status", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    payment = data["partners"]["payment"]["inbox"]
    assert payment["files"] == 3 and 600 <= payment["oldest_age_seconds"] < 7200
    agent = data["partners"]["agent"]["outbox"]
    assert agent["files"] == 2 and 3600 <= agent["oldest_age_seconds"] < 7200
    assert data["partners"]["platform"]["inbox"]["files"] == 0
    assert data["quarantine"]["files"] == 1
    with _engine(stuck).connect() as conn:
        dead = conn.execute(
            select(deliveries.c.id).where(
                deliveries.c.partner_id == "platform", deliveries.c.state == "dead"
            )
        ).all()
    assert len(dead) == 2  # the orders' receipts
    assert data["delivery_backlog"]["dead"] == len(dead)
    assert data["delivery_backlog"]["by_partner"]["platform"]["dead"] == len(dead)
    assert data["messages"] == {"accepted": 2}


def _login(ws, user: str) -> TestClient:
    c = TestClient(create_app(ws, config.load(ws)), follow_redirects=False)
    token = csrf_of(c.get("/login").text)
    assert c.post("/login", data={"name": user, "password": PASSWORD, "csrf": token}).status_code == 303  # fmt: skip
    return c


def _row(html: str, table: str, marker: str) -> str:
    section = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    rows = [r for r in section.split("<tr") if marker in r]
    assert rows, f"{marker} not in #{table}"
    return rows[0]


def _audit(ws, action: str) -> list:
    with _engine(ws).connect() as conn:
        return conn.execute(select(audit).where(audit.c.action == action)).all()


def test_dashboard_shows_the_backlog_oldest_first(stuck):
    html = _login(stuck, "olga").get("/ops").text
    assert 'http-equiv="refresh"' in html
    assert ">3 <small" in _row(html, "folders", 'data-partner="payment"')
    assert "(10m)" in _row(html, "folders", 'data-partner="payment"')
    assert ">2 <small" in _row(html, "folders", 'data-partner="agent"')
    q = _row(html, "quarantine", "waybill.xml")
    assert "-1001 CEB511Message must be signed" in q and "2.0h" in q
    dead = [
        r for r in html.split('id="deliveries"')[1].split("</table>")[0].split("<tr") if "dead" in r
    ]
    assert len(dead) >= 2
    ids = [int(m) for m in re.findall(r'data-id="(\d+)"', "".join(dead))]
    assert ids == sorted(ids)  # oldest first


def test_only_ops_and_admin_see_the_dashboard(stuck):
    alice = _login(stuck, "alice")
    assert alice.get("/ops").status_code == 403
    assert 'href="/ops"' not in alice.get("/orders").text  # no menu entry either
    assert 'href="/ops"' in _login(stuck, "olga").get("/orders").text
    anonymous = TestClient(create_app(stuck, config.load(stuck)), follow_redirects=False)
    assert anonymous.get("/ops").status_code == 303


def test_resend_a_dead_delivery(stuck):
    c = _login(stuck, "olga")
    html = c.get("/ops").text
    token = csrf_of(html)
    with _engine(stuck).connect() as conn:
        delivery_id = (
            conn.execute(
                select(deliveries.c.id)
                .where(deliveries.c.state == "dead")
                .order_by(deliveries.c.id)
            )
            .scalars()
            .first()
        )
    assert c.post(f"/ops/deliveries/{delivery_id}/resend").status_code == 403  # no CSRF token
    assert _login(stuck, "alice").post(
        f"/ops/deliveries/{delivery_id}/resend", data={"csrf": token}
    ).status_code in (403,)
    stuck.outbox_of("platform").unlink()  # the fix
    r = c.post(f"/ops/deliveries/{delivery_id}/resend", data={"csrf": token})
    assert r.status_code == 303
    with _engine(stuck).connect() as conn:
        row = conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).one()
    assert row.state == "pending" and row.attempts == 0
    [entry] = _audit(stuck, "resend")
    assert entry.actor == "olga" and entry.target == f"delivery {delivery_id}"
    Hub(stuck).run_once()
    with _engine(stuck).connect() as conn:
        assert (
            conn.execute(select(deliveries.c.state).where(deliveries.c.id == delivery_id)).scalar()
            == "delivered"
        )
    assert (stuck.outbox_of("platform") / row.file_name).is_file()


def test_release_a_quarantined_file_back_to_the_inbox(stuck):
    c = _login(stuck, "olga")
    token = csrf_of(c.get("/ops").text)
    name = "18eb-ab-1-host--waybill.xml"
    for bad in ("../../etc/passwd", "18eb-ab-1-host--waybill.xml.reason.txt", "nothing.xml"):
        r = c.post("/ops/quarantine/logistics/release", data={"csrf": token, "name": bad})
        assert r.status_code == 404
    r = c.post("/ops/quarantine/logistics/release", data={"csrf": token, "name": name})
    assert r.status_code == 303
    assert (stuck.inbox_of("logistics") / "waybill.xml").is_file()
    assert not list((stuck.quarantine / "logistics").iterdir())
    [entry] = _audit(stuck, "release")
    assert entry.target == f"logistics/{name}" and "CEB511Message must be signed" in entry.detail
    assert "没有 None" in _row(c.get("/ops").text, "quarantine", "没有")


def test_review_again_a_sent_and_a_returned_list(stuck, keys):
    ws = stuck
    set_guarantee(ws, "10000")
    stuck.outbox_of("platform").unlink()
    waiting = purchase(51)
    from tests.clearance_support import run, send_documents, send_list

    send_documents(ws, keys, [waiting], waybill=False)
    send_list(ws, keys, [waiting])
    run(ws)
    run(ws)
    returned = purchase(52).override("LogisticsHead", consigneeTelephone="13900000000")
    declare_purchase(ws, keys, returned)
    sent_id, returned_id = the_list(ws, waiting.cop_no).id, the_list(ws, returned.cop_no).id
    assert the_list(ws, waiting.cop_no).state == "sent"
    c = _login(ws, "olga")
    html = c.get("/ops").text
    assert "not received" in _row(html, "lists", f'data-id="{sent_id}"')
    assert "[R1]" in _row(html, "returned", f'data-id="{returned_id}"')
    token = csrf_of(html)
    r = c.post(f"/ops/lists/{sent_id}/rereview", data={"csrf": token})
    assert r.status_code == 303 and "sent" in r.headers["location"]
    r = c.post(f"/ops/lists/{returned_id}/rereview", data={"csrf": token})
    assert r.status_code == 303
    assert the_list(ws, returned.cop_no).state == "declared"
    run(ws)
    assert the_list(ws, returned.cop_no).state == "returned"  # the same data fails again
    actions = _audit(ws, "rereview")
    assert len(actions) == 2 and {a.actor for a in actions} == {"olga"}
    assert "returned → declared" in actions[1].detail
    closed = purchase(53)
    declare_purchase(ws, keys, closed)
    r = c.post(f"/ops/lists/{the_list(ws, closed.cop_no).id}/rereview", data={"csrf": token})
    assert r.status_code == 409
