"""The guarantee under concurrency: two processes declaring against one balance never overdraw it."""

# ruff: noqa: F811  (fixtures are imported, then requested by name)
from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal

from sqlalchemy import func, select, update

from hub import config, metrics
from hub.clearance.tables import guarantee_ledger, lists
from hub.clearance.tables import guarantees as guarantees_table
from hub.generator import make_purchases
from tests.clearance_support import (
    balance,
    db,
    list_receipts,
    run,
    send_documents,
    send_list,
    set_guarantee,
)
from tests.helpers import traced_sql
from tests.test_store_backends import pg_ws  # noqa: F401

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


def _sweep_of_three(hub_ws, keys, start: Decimal) -> list:
    """Three lists declared with their documents (the sweep reviews them together) against
    a guarantee of `start`; their purchases."""
    bought = make_purchases(3, seed=72)
    send_documents(hub_ws, keys, bought)
    send_list(hub_ws, keys, bought)
    set_guarantee(hub_ws, start)
    return bought


def test_a_sweep_takes_its_lists_tax_off_the_guarantee_in_one_update_at_its_end(hub_ws, keys):
    """The guarantee's row is written once a sweep transaction, after every list's step (on
    PostgreSQL, locked from there to the commit): not once a list, from the first list on."""
    _sweep_of_three(hub_ws, keys, Decimal("10000"))
    statements: list[str] = []
    with traced_sql(statements):
        run(hub_ws)
        run(hub_ws)
    debits = [s for s in statements if s.lstrip().startswith("UPDATE guarantees")]
    with db(hub_ws).connect() as conn:
        rows = conn.execute(select(lists.c.state, lists.c.tax)).all()
        ledger = conn.execute(select(guarantee_ledger.c.kind, guarantee_ledger.c.amount)).all()
    assert [r.state for r in rows] == ["closed"] * 3
    assert len(debits) == 1, debits
    total = sum(r.tax for r in rows)
    assert Decimal(re.search(r"guarantees\.balance - ([\d.]+)\)", debits[0]).group(1)) == total
    assert balance(hub_ws) == Decimal("10000") - total
    assert sorted(a for k, a in ledger if k == "debit") == sorted(-r.tax for r in rows)


def test_a_guarantee_drawn_on_during_a_sweep_has_its_lists_done_again_debit_by_debit(
    hub_ws, keys, monkeypatch, caplog
):
    """The sweep reads a balance that covers its lists, but another worker has drawn the
    guarantee down to a cent since: the end's conditional UPDATE takes nothing, the lists
    are done again with their debits made at once, and each is returned for reason 5.
    Nothing of the first attempt stays: no debit in the ledger, no receipt."""
    from hub.clearance import guarantee as guarantees

    _sweep_of_three(hub_ws, keys, Decimal("0.01"))
    read, seen = guarantees.balance, []

    def read_before_the_other_worker(conn, code):
        seen.append(code)
        return Decimal("10000") if len(seen) == 1 else read(conn, code)

    monkeypatch.setattr(guarantees, "balance", read_before_the_other_worker)
    before = {state: _moves_counted(state) for state in ("sent", "accepted", "returned")}
    with caplog.at_level("INFO", logger="hub.clearance.sweep"):
        run(hub_ws)
        run(hub_ws)
    assert seen  # the sweep read the balance it deferred against
    # /metrics counts the moves that were written: the first attempt's acceptances were not.
    counted = {state: _moves_counted(state) - n for state, n in before.items()}
    assert counted == {"sent": 3, "accepted": 0, "returned": 3}
    assert "was drawn on during the sweep" in caplog.text
    with db(hub_ws).connect() as conn:
        rows = conn.execute(select(lists.c.state, lists.c.return_info)).all()
        kinds = conn.execute(select(guarantee_ledger.c.kind)).scalars().all()
    assert [r.state for r in rows] == ["returned"] * 3
    assert all(r.return_info.startswith("[R5]") for r in rows)
    assert kinds == ["set"]  # the first attempt's debits were rolled back with it
    assert balance(hub_ws) == Decimal("0.01")
    for p in make_purchases(3, seed=72):
        assert [s for s, _ in list_receipts(hub_ws, p.cop_no)] == ["2", "3", "100"]


def _moves_counted(state: str) -> float:
    """`cebhub_list_transitions_total` for the state, whatever the reason code."""
    return sum(
        sample.value
        for metric in metrics.REGISTRY.collect()
        for sample in metric.samples
        if sample.name == "cebhub_list_transitions_total" and sample.labels["to_state"] == state
    )


def test_on_postgresql_another_workers_draw_during_a_sweep_sends_its_lists_round_again(
    pg_ws, keys, monkeypatch, caplog
):
    """Two writers for real: just after the sweep reads the balance, another connection
    commits a draw that leaves a cent. The sweep's UPDATE at its end finds it (its condition
    fails), and the lists are done again: each returned for reason 5, the balance untouched."""
    from hub.clearance import guarantee as guarantees

    _sweep_of_three(pg_ws, keys, Decimal("10000"))
    read, drawn = guarantees.balance, []

    def read_then_another_worker_draws(conn, code):
        have = read(conn, code)
        if not drawn:
            drawn.append(code)
            with db(pg_ws).begin() as other:
                other.execute(
                    update(guarantees_table)
                    .where(guarantees_table.c.assure_code == code)
                    .values(balance=Decimal("0.01"))
                )
        return have

    monkeypatch.setattr(guarantees, "balance", read_then_another_worker_draws)
    with caplog.at_level("INFO", logger="hub.clearance.sweep"):
        run(pg_ws)
        run(pg_ws)
    assert drawn and "was drawn on during the sweep" in caplog.text
    with db(pg_ws).connect() as conn:
        rows = conn.execute(select(lists.c.state, lists.c.return_info)).all()
        kinds = conn.execute(select(guarantee_ledger.c.kind)).scalars().all()
    assert [r.state for r in rows] == ["returned"] * 3
    assert all("balance 0.01" in r.return_info for r in rows)
    assert kinds == ["set"] and balance(pg_ws) == Decimal("0.01")
