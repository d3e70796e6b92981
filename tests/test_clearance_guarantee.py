"""The guarantee under concurrency: two processes declaring against one balance never overdraw it."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

from sqlalchemy import func, select

from hub import config
from hub.clearance.tables import guarantee_ledger, lists
from hub.generator import make_purchases
from tests.clearance_support import balance, db, run, send_documents, send_list, set_guarantee

CLI = "import sys; from hub.cli import main; sys.exit(main(sys.argv[1:]))"
ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_two_processes_declaring_against_one_guarantee_never_overdraw_it(hub_ws, keys):
    # Without a customs endpoint the review runs inside `cebhub declare`, in each process.
    doc = config.read_document(hub_ws)
    doc["routes"]["CEB621Message"] = []
    config.write_document(hub_ws, doc)
    bought = make_purchases(60, seed=71)
    send_documents(hub_ws, keys, bought)
    send_list(hub_ws, keys, bought, app_status="1")
    run(hub_ws)
    start = Decimal("3000")
    set_guarantee(hub_ws, start)

    halves = [bought[0::2], bought[1::2]]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CLI,
                "-w",
                str(hub_ws.root),
                "declare",
                "--actor",
                f"p{i}",
                *(p.cop_no for p in half),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i, half in enumerate(halves)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()

    with db(hub_ws).connect() as conn:
        rows = conn.execute(select(lists.c.state, lists.c.tax, lists.c.return_info)).all()
        ledger = conn.execute(select(func.sum(guarantee_ledger.c.amount))).scalar()
    accepted = [r for r in rows if r.state == "closed"]
    short = [r for r in rows if r.state == "returned"]
    assert len(accepted) + len(short) == 60
    assert accepted and short  # the balance ran out part way, as intended
    assert all(r.return_info.startswith("[R5]") for r in short)
    left = balance(hub_ws)
    assert left >= 0
    assert left == start - sum(r.tax for r in accepted)
    assert ledger == left  # set + debits, nothing lost or doubled
