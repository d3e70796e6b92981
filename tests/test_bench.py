"""`cebhub bench` end to end: a small run answers every message and reports every figure."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

from hub.bench.run import CREATE_PROBE_FILES, SLOW_CREATE_US, slow_create_note

WORKER = "import sys; from hub.cli import main; sys.exit(main(sys.argv[1:]))"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1/test"


def test_bench_json_has_every_figure_and_every_message_is_answered(tmp_path):
    kept = tmp_path / "kept"
    args = ["bench", "--messages", "40", "--json", "--keep", kept, "--batch-size", "7"]
    done = subprocess.run(
        [sys.executable, "-c", WORKER, *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    for name in (
        "messages", "answered", "unanswered", "states", "mix", "workers", "database",
        "messages_per_second", "hub_seconds", "latency_ms", "peak_rss_mb", "floor", "ratio",
        "machine", "notes",
    ):  # fmt: skip
        assert name in result, name
    assert result["messages"] == result["answered"] == 40 and result["unanswered"] == 0
    assert sum(result["states"].values()) == 40
    assert set(result["latency_ms"]) == {"p50", "p95", "p99"}
    assert set(result["floor"]["micros_per_message"]) == {
        "parse", "verify", "validate", "store", "sign",
    }  # fmt: skip
    assert result["floor"]["messages"] > 0 and result["ratio"] > 0
    assert result["database"] == "sqlite" and result["workers"] == 1
    assert result["batch_size"] == 7  # six transactions for 40 messages, as configured
    assert result["machine"]["file_create_us"] > 0  # what a file costs here, beside the figures
    # The probe's files stay beside the workspace: deleting them would slow the hub's creates.
    assert len(list((kept / "create-probe").iterdir())) == CREATE_PROBE_FILES
    # The mix is the declaration types the pipeline handles, in equal parts.
    ws = kept / "ws"
    dropped = {p.name.partition("--")[2] for p in (ws / "archive").glob("*/*/*")}
    dropped |= {p.name.partition("--")[2] for p in (ws / "quarantine").glob("*/*.xml")}
    assert len(dropped) == 40
    assert {name.split("_")[0] for name in dropped} == set(result["mix"])
    assert not list((ws / "inbox").glob("*/*.xml")) and not list((ws / "claims").glob("*/*"))
    assert tomllib.loads((ws / "config" / "hub.toml").read_text())["hub"]["batch_size"] == 7


def test_bench_at_a_rate_drops_into_a_running_hub_and_answers_every_message(tmp_path):
    kept = tmp_path / "kept"
    args = ["bench", "--messages", "40", "--rate", "50", "--json", "--keep", kept]
    done = subprocess.run(
        [sys.executable, "-c", WORKER, *args], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["rate"] == 50
    assert result["messages"] == result["answered"] == 40 and result["unanswered"] == 0
    assert set(result["latency_ms"]) == {"p50", "p95", "p99"} and result["peak_rss_mb"] > 0
    ws = kept / "ws"
    # Every file went through the inbox of the real `cebhub run`, which logged it in JSON.
    assert not list((ws / "bench-staging").glob("*/*.xml"))
    assert len(list((ws / "archive").glob("*/*/*"))) == 40
    logged = [json.loads(line) for line in (ws / "bench-run.log").read_text().splitlines()]
    assert sum(1 for e in logged if e.get("stage") == "done") == 40
    # The run had its console off: it measured the hub, not a web server.
    assert tomllib.loads((ws / "config" / "hub.toml").read_text())["console"]["enabled"] is False


def test_a_slow_file_create_is_noted_with_what_makes_it_slow():
    assert slow_create_note(6.0) is None and slow_create_note(SLOW_CREATE_US) is None
    note = slow_create_note(480.4)
    assert note is not None and "480 µs" in note
    assert "deleted in the last minutes" in note and "--keep" in note


def test_bench_refuses_a_rate_with_workers_or_a_profile(tmp_path):
    for extra in (["--workers", "2"], ["--profile", str(tmp_path / "p")]):
        done = subprocess.run(
            [sys.executable, "-c", WORKER, "bench", "--rate", "10", *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0 and "--rate" in done.stderr


def test_bench_refuses_a_batch_size_the_hub_would_refuse():
    done = subprocess.run(
        [sys.executable, "-c", WORKER, "bench", "--batch-size", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "--batch-size" in done.stderr


def test_the_paced_bench_asks_whether_all_is_answered_without_the_write_lock(
    hub_ws, keys, monkeypatch
):
    """While the hub runs, the bench polls the store; an ordinary connection's BEGIN takes
    SQLite's write lock, and the hub's commits then waited for each poll (a count over every
    delivery row, longer the longer the run). The poll reads: it answers while a writer
    holds the lock, with no wait allowed at all."""
    import sqlite3

    from hub.bench import run as bench_run
    from hub.runner import Hub
    from hub.store import db
    from tests.helpers import drop_orders

    drop_orders(hub_ws, keys, 3)
    Hub(hub_ws).run_once()
    db.dispose_all()
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 0)  # a wait for the lock fails at once
    bench_run._all_answered(hub_ws, 3)  # its engine, migrated (a write) before the lock is held
    writer = sqlite3.connect(hub_ws.database_file, isolation_level=None, timeout=0)
    try:
        writer.execute("BEGIN IMMEDIATE")  # the hub, in the middle of a batch
        assert bench_run._all_answered(hub_ws, 3)
        assert not bench_run._all_answered(hub_ws, 4)  # one more than were dropped
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        db.dispose_all()


def test_bench_of_two_postgresql_workers_keeps_their_log_lines_in_the_workspace(tmp_path):
    """Every message answered; the workers' log (a line a message) is kept beside the
    workspace, as a paced run's is, and not written to the terminal of the bench."""
    kept = tmp_path / "kept"
    args = ["bench", "--messages", "40", "--workers", "2", "--json", "--keep", kept]
    args += ["--database-url", PG_URL]
    done = subprocess.run(
        [sys.executable, "-c", WORKER, *args], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert (result["workers"], result["database"]) == (2, "postgresql")
    assert result["messages"] == result["answered"] == 40 and result["unanswered"] == 0
    log = (kept / "ws" / "bench-workers.log").read_text().splitlines()
    assert sum(1 for line in log if json.loads(line).get("stage") == "done") == 40
    assert '"stage": "done"' not in done.stderr
