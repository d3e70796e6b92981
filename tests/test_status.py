"""`cebhub status --json`: lists per state, quarantine reasons and certificates about to expire."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hub.generator import DEMO_PARTIES, make_purchases, order_message, to_bytes
from hub.signing import certificate_pem, new_self_signed, write_pem
from tests.helpers import cli


def _status(ws, capsys) -> dict:
    capsys.readouterr()
    assert cli(ws, "status", "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_status_counts_lists_quarantine_reasons_and_expiring_certificates(hub_ws, keys, capsys):
    inbox = hub_ws.inbox_of("platform")
    for i in range(3):
        (inbox / f"junk-{i}.xml").write_bytes(b"not xml")
    (inbox / "empty.xml").write_bytes(b"")
    root = order_message(make_purchases(1, seed=2), DEMO_PARTIES, sign=keys["platform"].sign)
    (inbox / "ok.xml").write_bytes(to_bytes(root))
    soon = datetime.now(UTC) - timedelta(days=360)  # a one-year certificate with 5 days left
    _, cert = new_self_signed("short-lived", days=365, not_before=soon)
    pem = hub_ws.root / "short.pem"
    write_pem(pem, certificate_pem(cert))
    assert cli(hub_ws, "partner", "cert", "add", "customs", pem) == 0  # its only one
    assert cli(hub_ws, "run", "--once") == 0

    data = _status(hub_ws, capsys)
    assert data["messages"] == {"rejected": 4, "accepted": 1}
    assert data["quarantine"]["files"] == 4
    reasons = {r["reason"]: r["files"] for r in data["quarantine"]["top_reasons"]}
    assert reasons == {"-0001 not well-formed XML": 3, "-0001 empty file": 1}
    assert data["lists"] == {}
    [expiring] = data["certificates_expiring"]
    assert expiring["partner"] == "customs" and not expiring["expired"]
    assert 3 <= expiring["days_left"] <= 5 and expiring["successor"] is False
    assert cli(hub_ws, "status") == 0  # the table view renders the same data
    out = capsys.readouterr().out
    assert "Certificates expiring" in out and "not well-formed XML" in out
