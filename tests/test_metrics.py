"""/metrics in Prometheus text that parses and moves with the traffic; /healthz and /readyz."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from hub import config
from hub.console.app import create_app
from hub.generator import DEMO_PARTIES, make_purchases, order_message
from tests.clearance_support import declare_purchase, purchase, set_guarantee, submit


def _client(ws) -> TestClient:
    return TestClient(create_app(ws, config.load(ws)), follow_redirects=False)


def scrape(ws) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics: (name, sorted labels) → value."""
    r = _client(ws).get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def moved(before, after, name: str, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_counters_move_when_messages_are_processed_end_to_end(hub_ws, keys):
    before = scrape(hub_ws)
    good = order_message(make_purchases(2, seed=5), DEMO_PARTIES, sign=keys["platform"].sign)
    submit(hub_ws, "platform", good)
    unsigned = order_message(make_purchases(1, seed=6), DEMO_PARTIES)
    submit(hub_ws, "platform", unsigned)
    submit(hub_ws, "platform", good)  # the same bytes again: a duplicate
    waiting = scrape(hub_ws)
    files = ("cebhub_queue_files", ("folder", "inbox"), ("partner", "platform"))
    assert waiting[(files[0], files[1:])] == 3
    from hub.runner import Hub

    Hub(hub_ws).run_once()
    after = scrape(hub_ws)

    assert (
        moved(before, after, "cebhub_messages_total", type="CEB311Message", outcome="accepted") == 1
    )
    assert (
        moved(before, after, "cebhub_messages_total", type="CEB311Message", outcome="rejected") == 1
    )
    assert moved(before, after, "cebhub_messages_total", type="CEB311Message", outcome="duplicate") == 1  # fmt: skip
    stages = {"parse": 3, "verify": 3, "validate": 2}  # the unsigned one stops at verify
    for stage, n in stages.items():
        assert moved(before, after, "cebhub_stage_seconds_count", stage=stage) == n
    assert moved(before, after, "cebhub_stage_seconds_count", stage="apply") >= 1
    assert moved(before, after, "cebhub_delivery_attempts_total", result="delivered") >= 5
    assert after[(files[0], files[1:])] == 0
    outbox = ("cebhub_queue_files", (("folder", "outbox"), ("partner", "platform")))
    assert after[outbox] >= 3
    quarantine = ("cebhub_queue_files", (("folder", "quarantine"), ("partner", "platform")))
    assert after[quarantine] == 1
    assert after[("cebhub_deliveries", (("partner", "customs"), ("state", "delivered")))] >= 1


def test_review_outcomes_are_counted_by_state_and_reason(hub_ws, keys):
    set_guarantee(hub_ws, "10000")
    before = scrape(hub_ws)
    declare_purchase(hub_ws, keys, purchase(41))
    bad = purchase(42).override("LogisticsHead", consigneeTelephone="13900000000")
    declare_purchase(hub_ws, keys, bad)
    after = scrape(hub_ws)
    name = "cebhub_list_transitions_total"
    assert moved(before, after, name, to_state="closed", reason="") == 1
    assert moved(before, after, name, to_state="returned", reason="R1") == 1
    assert after[("cebhub_lists", (("state", "returned"),))] == 1


def test_retries_and_dead_deliveries_are_counted(hub_ws, keys):
    doc = config.read_document(hub_ws)
    doc["delivery"]["max_attempts"] = 1
    config.write_document(hub_ws, doc)
    shutil.rmtree(hub_ws.outbox_of("platform"))
    hub_ws.outbox_of("platform").write_text("a file where the folder should be")
    before = scrape(hub_ws)
    root = order_message(make_purchases(1, seed=8), DEMO_PARTIES, sign=keys["platform"].sign)
    submit(hub_ws, "platform", root)
    from hub.runner import Hub

    Hub(hub_ws).run_once()
    after = scrape(hub_ws)
    assert moved(before, after, "cebhub_delivery_attempts_total", result="dead") >= 1
    assert after[("cebhub_deliveries", (("partner", "platform"), ("state", "dead")))] >= 1


def test_healthz_and_readyz(hub_ws):
    c = _client(hub_ws)
    assert c.get("/healthz").json() == {"status": "ok"}
    r = c.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"]["database"] == "ok"
    shutil.rmtree(hub_ws.quarantine)
    hub_ws.quarantine.write_text("not a folder")
    r = c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["quarantine"].startswith("error")
    assert r.json()["checks"]["inbox"] == "ok"


def test_metrics_token_when_configured(hub_ws, monkeypatch):
    monkeypatch.setenv("CEBHUB_METRICS_TOKEN", "s3cret")
    c = _client(hub_ws)
    assert c.get("/metrics").status_code == 401
    assert c.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    r = c.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert r.status_code == 200 and "cebhub_queue_files" in r.text


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz"])
def test_ops_endpoints_need_no_session(hub_ws, path):
    assert _client(hub_ws).get(path).status_code == 200
