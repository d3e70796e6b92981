"""Certificate rollover through the command line, and the hub's own signature as partners see it."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta

import pytest
from lxml import etree
from signxml import XMLVerifier
from signxml.exceptions import InvalidDigest
from sqlalchemy import select

from hub import config
from hub.clock import utcnow
from hub.constants import DXP_NS
from hub.generator import DEMO_PARTIES, dxp_envelope, make_purchases, order_message, to_bytes
from hub.runner import Hub
from hub.signing import certificate_pem, key_name, new_self_signed, sign_enveloped, write_pem
from hub.store.db import engine_for
from hub.store.tables import messages
from tests.helpers import cli, files, receipt_entries

CODES = f"{DEMO_PARTIES.ebp_code},{DEMO_PARTIES.ebc_code}"


class Card:
    """A partner's key and certificate, the certificate also as a PEM file."""

    def __init__(self, folder, name: str, *, start_days_ago: int, days: int) -> None:
        start = utcnow() - timedelta(days=start_days_ago)
        self.key, self.cert = new_self_signed(f"shop {name}", not_before=start, days=days)
        self.name = key_name(self.cert)
        self.pem = folder / f"{name}.cert.pem"
        write_pem(self.pem, certificate_pem(self.cert))

    def sign(self, root: etree._Element) -> etree._Element:
        return sign_enveloped(root, self.key, self.cert)


def _shop(ws, *cards: Card) -> None:
    """A platform partner `shop`, with customs to route to."""
    certs = [a for c in cards for a in ("--cert", c.pem)]
    assert cli(ws, "partner", "add", "shop", "--role", "platform", "--codes", CODES, *certs) == 0
    assert cli(ws, "partner", "add", "customs", "--role", "customs", "--codes", "C") == 0


def _send(ws, card: Card, seed: int) -> list[str]:
    """Submit an order signed with `card`, run the hub once; the new receipt codes."""
    out = ws.outbox_of("shop")
    before = len(receipt_entries(out))
    src = ws.root / f"order-{seed}.xml"
    src.write_bytes(
        to_bytes(order_message(make_purchases(1, seed=seed), DEMO_PARTIES, sign=card.sign))
    )
    assert cli(ws, "submit", src, "--from", "shop") == 0
    assert cli(ws, "run", "--once") == 0
    return [e.status for e in receipt_entries(out)[before:]]


def _signers(ws) -> list[str | None]:
    with engine_for(config.load(ws), ws).connect() as conn:
        return [r.signed_by for r in conn.execute(select(messages).order_by(messages.c.id))]


def _output(capsys, ws, *args) -> str:
    capsys.readouterr()
    assert cli(ws, *args) == 0
    return capsys.readouterr().out


def _expiring(capsys, ws, days: int) -> list[dict]:
    return json.loads(_output(capsys, ws, "certs", "expiring", "--days", days, "--json"))


def test_old_and_new_certificates_are_both_accepted_while_they_overlap(ws, tmp_path, capsys):
    old = Card(tmp_path, "old", start_days_ago=355, days=365)  # runs out in about 10 days
    new = Card(tmp_path, "new", start_days_ago=1, days=730)
    _shop(ws, old)
    assert _send(ws, old, 1) == ["2", "120"]

    # Before the rollover: the old certificate will break the partner, and says when.
    [row] = _expiring(capsys, ws, 30)
    assert (row["partner"], row["key_name"], row["expired"]) == ("shop", old.name, False)
    assert row["not_after"] == old.cert.not_valid_after_utc.isoformat()
    assert 0 <= row["days_left"] <= 10
    assert (row["successor"], row["successor_key_name"]) == (False, None)
    text = _output(capsys, ws, "certs", "expiring", "--days", "30")
    assert old.name in text and "NO successor" in text

    assert cli(ws, "partner", "cert", "add", "shop", new.pem) == 0
    listed = _output(capsys, ws, "partner", "cert", "list", "shop")
    assert old.name in listed and new.name in listed and "NOT VALID NOW" not in listed

    assert _send(ws, new, 2) == ["2", "120"]
    assert _send(ws, old, 3) == ["2", "120"]  # the overlap: the old card still works
    assert _signers(ws) == [old.name, new.name, old.name]

    # After the rollover nothing breaks: the new certificate covers the old one's end.
    [row] = _expiring(capsys, ws, 30)
    assert (row["key_name"], row["successor"], row["successor_key_name"]) == (
        old.name,
        True,
        new.name,
    )
    assert f"certificate {new.name} takes over" in _output(
        capsys, ws, "certs", "expiring", "--days", "30"
    )


def test_once_the_old_certificate_has_expired_only_the_new_one_is_accepted(ws, tmp_path, capsys):
    old = Card(tmp_path, "old", start_days_ago=400, days=365)  # expired 35 days ago
    new = Card(tmp_path, "new", start_days_ago=60, days=730)
    _shop(ws, old, new)
    listed = _output(capsys, ws, "partner", "cert", "list", "shop")
    assert f"{old.name}" in listed and "NOT VALID NOW" in listed

    assert _send(ws, old, 10) == ["-1001"]
    [refused] = receipt_entries(ws.outbox_of("shop"))
    assert f"certificate {old.name} of shop expired" in refused.info
    assert len(files(ws.quarantine / "shop")) == 1
    assert _send(ws, new, 11) == ["2", "120"]
    assert _signers(ws) == [None, new.name]

    [row] = _expiring(capsys, ws, 0)
    assert (row["key_name"], row["expired"], row["successor_key_name"]) == (
        old.name,
        True,
        new.name,
    )

    assert cli(ws, "partner", "cert", "remove", "shop", old.name) == 0
    listed = _output(capsys, ws, "partner", "cert", "list", "shop")
    assert old.name not in listed and new.name in listed
    assert _expiring(capsys, ws, 30) == []
    assert _send(ws, new, 12) == ["2", "120"]
    assert _send(ws, old, 13) == ["-1001"]


def test_a_later_certificate_that_leaves_a_gap_is_no_successor(ws, tmp_path, capsys):
    ending = Card(tmp_path, "ending", start_days_ago=355, days=365)  # about 10 days left
    later = Card(tmp_path, "later", start_days_ago=-20, days=365)  # starts in 20 days
    _shop(ws, ending, later)
    rows = {r["key_name"]: r for r in _expiring(capsys, ws, 30)}
    assert rows[ending.name]["successor"] is False


def test_a_certificate_added_while_the_hub_runs_is_used_without_a_restart(ws, tmp_path):
    old = Card(tmp_path, "old", start_days_ago=30, days=365)
    new = Card(tmp_path, "new", start_days_ago=1, days=365)
    _shop(ws, old)
    hub = Hub(ws)  # started before the rollover, and never restarted

    def send(card: Card, seed: int) -> list[str]:
        before = len(receipt_entries(ws.outbox_of("shop")))
        root = order_message(make_purchases(1, seed=seed), DEMO_PARTIES, sign=card.sign)
        (ws.inbox_of("shop") / f"order-{seed}.xml").write_bytes(to_bytes(root))
        hub.run_once()
        return [e.status for e in receipt_entries(ws.outbox_of("shop"))[before:]]

    assert send(new, 20) == ["-1001"]
    assert cli(ws, "partner", "cert", "add", "shop", new.pem) == 0
    assert send(new, 21) == ["2", "120"]
    assert cli(ws, "partner", "cert", "remove", "shop", old.name) == 0
    assert send(old, 22) == ["-1001"]


def test_a_receipt_envelope_signed_by_the_hub_verifies_with_the_exported_certificate(
    ws, tmp_path, capsys
):
    card = Card(tmp_path, "card", start_days_ago=1, days=365)
    _shop(ws, card)
    doc = config.read_document(ws)
    doc["partners"]["shop"]["dxp_id"] = DEMO_PARTIES.ebp_dxp_id
    config.write_document(ws, doc)
    payload = to_bytes(order_message(make_purchases(1, seed=30), DEMO_PARTIES, sign=card.sign))
    src = ws.root / "env.xml"
    src.write_bytes(
        dxp_envelope(
            payload,
            sender_id=DEMO_PARTIES.ebp_dxp_id,
            receiver_id="DXPEDCCEB0000002",
            msg_type="CEB311Message",
        )
    )
    assert cli(ws, "submit", src, "--from", "shop") == 0
    assert cli(ws, "run", "--once") == 0
    exported = _output(capsys, ws, "keys", "export")
    assert exported.startswith("-----BEGIN CERTIFICATE-----")

    sent = files(ws.outbox_of("shop"))
    assert len(sent) == 1  # CEB312 with status 2, then 120
    for path in sent:
        # signxml alone, trusting nothing but the certificate the operator handed out.
        result = XMLVerifier().verify(path.read_bytes(), x509_cert=exported)
        signed = result.signed_xml
        assert signed.tag == f"{{{DXP_NS}}}DxpMsg"
        receipt = etree.fromstring(base64.b64decode(signed.findtext(f"{{{DXP_NS}}}Data")))
        assert etree.QName(receipt).localname == "CEB312Message"

    # The same file with its receipt changed no longer verifies.
    data = sent[0].read_bytes()
    root = etree.fromstring(data)
    inner = base64.b64decode(root.findtext(f"{{{DXP_NS}}}Data"))
    forged = re.sub(rb"<returnStatus>[^<]*<", b"<returnStatus>-1<", inner)
    assert forged != inner
    root.find(f"{{{DXP_NS}}}Data").text = base64.b64encode(forged).decode()
    with pytest.raises(InvalidDigest):
        XMLVerifier().verify(etree.tostring(root), x509_cert=exported)
