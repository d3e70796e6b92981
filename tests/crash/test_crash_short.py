"""Short form of the crash harness: a few hundred messages, a dozen SIGKILLs, every invariant."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from hub.devtools.crash import POINTS
from hub.faults import ENV as CRASH_ENV
from hub.generator import DEMO_PARTIES, make_purchases, order_message, to_bytes
from tests.crash.harness import crash_run

CEBHUB = str(Path(sys.executable).parent / "cebhub")


def test_a_dozen_kills_lose_nothing_and_duplicate_nothing(tmp_path):
    report = crash_run(tmp_path, messages=240, kills=12, seed=8)
    assert not report.unexpected_exits, report.unexpected_exits
    assert not report.violations, "\n".join(report.violations[:40])
    # Every named point was reached and killed the process at least once.
    assert set(report.kills_at_point) == set(POINTS), report.kills_at_point
    assert report.kills == 12


def _cebhub(ws, *args, crash: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash:
        env[CRASH_ENV] = crash
    return subprocess.run(
        [CEBHUB, "-w", str(ws.root), *args], env=env, capture_output=True, timeout=120
    )


def test_a_kill_mid_delivery_leaves_no_temp_file(hub_ws, keys):
    data = to_bytes(
        order_message(make_purchases(1, seed=5), DEMO_PARTIES, sign=keys["platform"].sign)
    )
    (hub_ws.inbox_of("platform") / "order.xml").write_bytes(data)
    # Four deliveries (two receipts, two copies): die before the second, the first one staged.
    killed = _cebhub(hub_ws, "run", "--once", crash="during-delivery:2")
    assert killed.returncode == -signal.SIGKILL
    assert _cebhub(hub_ws, "run", "--once").returncode == 0
    left = [p.name for p in hub_ws.outbox.rglob(".*") if p.is_file()]
    assert not left, f"temp files left behind: {left}"
