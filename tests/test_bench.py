"""`cebhub bench` end to end: a small run answers every message and reports every figure."""

from __future__ import annotations

import json
import subprocess
import sys

WORKER = "import sys; from hub.cli import main; sys.exit(main(sys.argv[1:]))"


def test_bench_json_has_every_figure_and_every_message_is_answered(tmp_path):
    kept = tmp_path / "kept"
    done = subprocess.run(
        [sys.executable, "-c", WORKER, "bench", "--messages", "40", "--json", "--keep", kept],
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
    # The mix is the declaration types the pipeline handles, in equal parts.
    ws = kept / "ws"
    dropped = {p.name.partition("--")[2] for p in (ws / "archive").glob("*/*/*")}
    dropped |= {p.name.partition("--")[2] for p in (ws / "quarantine").glob("*/*.xml")}
    assert len(dropped) == 40
    assert {name.split("_")[0] for name in dropped} == set(result["mix"])
    assert not list((ws / "inbox").glob("*/*.xml")) and not list((ws / "claims").glob("*/*"))
