"""`cebhub run --workers N`: several processes over one workspace, every message exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from hub import config
from hub.faults import ENV as CRASH_ENV
from hub.store.db import dispose_all, engine_for
from hub.store.tables import messages, receipts
from tests.helpers import drop_orders, files, receipt_entries

CEBHUB = str(Path(sys.executable).parent / "cebhub")
ENV = {k: v for k, v in os.environ.items() if k != CRASH_ENV}


def test_two_workers_once_answer_every_message_exactly_once(hub_ws, keys):
    doc = config.read_document(hub_ws)
    doc["hub"]["batch_size"] = 5  # small batches so both workers take a share
    config.write_document(hub_ws, doc)
    drop_orders(hub_ws, keys, 60, seed=3)
    done = subprocess.run(
        [CEBHUB, "-w", str(hub_ws.root), "run", "--once", "--workers", "2"],
        env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    dispose_all()
    with engine_for(config.load(hub_ws), hub_ws).connect() as conn:
        states = dict(
            conn.execute(select(messages.c.state, func.count()).group_by(messages.c.state)).all()
        )
        per_status = dict(
            conn.execute(
                select(receipts.c.return_status, func.count()).group_by(receipts.c.return_status)
            ).all()
        )
    assert states == {"accepted": 60}
    assert per_status == {"2": 60, "120": 60}
    assert sorted(e.status for e in receipt_entries(hub_ws.outbox_of("platform"))) == (
        ["120"] * 60 + ["2"] * 60
    )
    assert len(files(hub_ws.outbox_of("customs"))) == 60
    assert not files(hub_ws.inbox_of("platform"), "*") and not files(
        hub_ws.claims / "platform", "*"
    )


def test_workers_stopped_while_still_starting_exit_cleanly(hub_ws):
    """SIGTERM right after the start: a worker still importing dies of the signal itself,
    which is the stop that was asked for, not a failure."""
    proc = _two_workers(hub_ws)
    try:
        deadline = time.monotonic() + 60
        while len(_children(proc.pid)) < 2:  # both started: the supervisor forwards signals now
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.01)
        time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    assert rc == 0, proc.stderr.read()[-3000:]


def _two_workers(ws) -> subprocess.Popen:
    """`cebhub run --workers 2` on `ws`, console off, its stderr kept."""
    doc = config.read_document(ws)
    doc["console"]["enabled"] = False
    config.write_document(ws, doc)
    return subprocess.Popen(
        [CEBHUB, "-w", str(ws.root), "run", "--workers", "2"],
        env=ENV, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_workers_stop_together_on_sigterm(hub_ws, keys):
    proc = _two_workers(hub_ws)
    try:
        drop_orders(hub_ws, keys, 4, seed=8)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(files(hub_ws.outbox_of("platform"))) < 8:
            time.sleep(0.1)
        assert len(receipt_entries(hub_ws.outbox_of("platform"))) == 8
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    assert rc == 0, proc.stderr.read()[-3000:]
