"""Killing a real `cebhub run` at each step boundary loses nothing and duplicates nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub import config
from hub.faults import ENV as CRASH_ENV
from hub.generator import DEMO_PARTIES, make_purchases, order_message, to_bytes
from hub.store.db import dispose_all, engine_for
from hub.store.tables import messages, orders, receipts
from tests.helpers import files, receipt_entries

CEBHUB = str(Path(sys.executable).parent / "cebhub")
POINTS = [
    "after-claim",
    "after-parse",
    "in-transaction",
    "after-commit",
    "after-sync",
    "during-delivery",
    "after-delivery-write",
]


def _cebhub(
    ws, *args, crash: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash:
        env[CRASH_ENV] = crash
    return subprocess.run(
        [CEBHUB, "-w", str(ws.root), *args], env=env, capture_output=True, timeout=timeout
    )


@pytest.mark.parametrize("point", POINTS)
def test_kill_at_each_step_then_restart(hub_ws, keys, point):
    purchases = make_purchases(3, seed=len(point))
    inbox = hub_ws.inbox_of("platform")
    for i, p in enumerate(purchases):
        data = to_bytes(order_message([p], DEMO_PARTIES, sign=keys["platform"].sign))
        (inbox / f"order-{i}.xml").write_bytes(data)

    killed = _cebhub(hub_ws, "run", "--once", crash=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    done = _cebhub(hub_ws, "run", "--once")
    assert done.returncode == 0, done.stderr.decode()[-2000:]

    dispose_all()
    engine = engine_for(config.load(hub_ws), hub_ws)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar() == 3
        assert conn.execute(select(func.count()).select_from(orders)).scalar() == 3
        per_status = dict(
            conn.execute(
                select(receipts.c.return_status, func.count()).group_by(receipts.c.return_status)
            ).all()
        )
    assert per_status == {"2": 3, "120": 3}
    # Files: every input archived once, every receipt and copy delivered once, no temp files.
    assert len(files(hub_ws.archive / "platform", "*/*")) == 3
    assert not files(inbox, "*") and not files(hub_ws.claims / "platform", "*")
    codes = [e.status for e in receipt_entries(hub_ws.outbox_of("platform"))]
    assert sorted(codes) == ["120"] * 3 + ["2"] * 3
    assert len(files(hub_ws.outbox_of("customs"))) == 3
    for partner in ("platform", "customs", "inspection"):
        assert not list(hub_ws.outbox_of(partner).glob(".*")), "temp file left behind"


def test_a_running_hub_takes_a_dropped_file_and_stops_cleanly(hub_ws, keys):
    doc = config.read_document(hub_ws)
    doc["console"]["enabled"] = False
    doc["hub"]["poll_seconds"] = 5.0  # the inotify watch, not the rescan, should pick it up
    config.write_document(hub_ws, doc)
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    proc = subprocess.Popen(
        [CEBHUB, "-w", str(hub_ws.root), "run"], env=env, stderr=subprocess.PIPE
    )
    try:
        time.sleep(1.5)  # let it start and watch the inbox
        data = to_bytes(
            order_message(make_purchases(1, seed=42), DEMO_PARTIES, sign=keys["platform"].sign)
        )
        tmp = hub_ws.inbox_of("platform") / ".order.xml.tmp"
        tmp.write_bytes(data)
        dropped = time.monotonic()
        tmp.rename(hub_ws.inbox_of("platform") / "order.xml")
        deadline = dropped + 20
        while time.monotonic() < deadline and len(files(hub_ws.outbox_of("platform"))) < 2:
            time.sleep(0.05)
        took = time.monotonic() - dropped
        assert [e.status for e in receipt_entries(hub_ws.outbox_of("platform"))] == ["2", "120"]
        print(f"drop to receipt: {took:.3f}s")  # reported, never asserted
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
    assert rc == 0, proc.stderr.read().decode()[-2000:]
