"""Structured logs: JSON lines carrying the message guid, partner, stage and claim."""

from __future__ import annotations

import io
import json
import logging
import subprocess

from hub import logsetup
from hub.devtools.crash import cebhub_command
from hub.generator import DEMO_PARTIES, make_purchases, order_message
from tests.clearance_support import submit


def test_the_json_formatter_takes_context_and_extra():
    stream = io.StringIO()
    log = logging.getLogger("cebhub.test.json")
    log.setLevel(logging.INFO)
    handler = logsetup.handler_for("json", stream)
    log.addHandler(handler)
    try:
        logsetup.set_context(partner="platform", claim="c-1")
        logsetup.update_context(guid="G-1", stage="verify")
        log.info("checked %s", "it")
        with logsetup.context(stage="apply"):
            log.warning("applied", extra={"guid": "G-2"})
        logsetup.clear_context()
        log.error("plain")
    finally:
        log.removeHandler(handler)
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "checked it" and first["level"] == "INFO"
    assert first["logger"] == "cebhub.test.json" and first["time"].endswith("+00:00")
    assert (first["guid"], first["partner"], first["stage"], first["claim"]) == (
        "G-1", "platform", "verify", "c-1",
    )  # fmt: skip
    assert (second["guid"], second["stage"], second["partner"]) == ("G-2", "apply", "platform")
    assert "guid" not in third and "partner" not in third


def test_the_text_format_appends_the_context():
    stream = io.StringIO()
    log = logging.getLogger("cebhub.test.text")
    handler = logsetup.handler_for("text", stream)
    log.addHandler(handler)
    try:
        with logsetup.context(partner="agent", guid="G-3"):
            log.warning("hello")
    finally:
        log.removeHandler(handler)
    assert stream.getvalue().rstrip().endswith("hello guid=G-3 partner=agent")


def test_cebhub_run_logs_one_json_line_per_message_with_guid_partner_and_stage(hub_ws, keys):
    good = order_message(make_purchases(1, seed=9), DEMO_PARTIES, sign=keys["platform"].sign)
    submit(hub_ws, "platform", good)
    submit(hub_ws, "payment", order_message(make_purchases(1, seed=10), DEMO_PARTIES))
    # stderr is a pipe, not a terminal: JSON is the default.
    done = subprocess.run(
        [*cebhub_command(), "-w", str(hub_ws.root), "run", "--once"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    outcomes = [x for x in lines if x["logger"] == "hub.pipeline"]
    assert len(outcomes) == 2
    by_partner = {x["partner"]: x for x in outcomes}
    accepted = by_partner["platform"]
    assert accepted["guid"] == good.get("guid") and accepted["stage"] == "done"
    assert "CEB311Message accepted" in accepted["message"] and accepted["claim"]
    rejected = by_partner["payment"]
    assert "rejected" in rejected["message"] and rejected["guid"]
