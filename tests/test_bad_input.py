"""Bad input: each file gets a clear CEB900 (or the spec's code), is quarantined, and the hub goes on."""

from __future__ import annotations

import pytest
from lxml import etree

from hub.generator import DEMO_PARTIES, make_purchases, order_message, to_bytes
from tests.helpers import cli, files, receipt_entries

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<ceb:CEB311Message xmlns:ceb="http://www.chinaport.gov.cn/ceb" guid="X" version="1.0">&x;</ceb:CEB311Message>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<lolz>&lol3;</lolz>"""


def _order(keys, mutate=None, seed=1) -> bytes:
    root = order_message(make_purchases(1, seed=seed), DEMO_PARTIES)
    if mutate:
        mutate(root)
    return to_bytes(keys["platform"].sign(root))


def _drop(root, name: str):
    el = root.find(f".//{{*}}{name}")
    el.getparent().remove(el)


def _set(root, name: str, value: str):
    root.find(f".//{{*}}{name}").text = value


CASES = {
    "empty.xml": (lambda k: b"", "-0001", "empty"),
    "junk.xml": (lambda k: b"\x00\x01binary junk\xff", "-0001", "not well-formed"),
    "truncated.xml": (lambda k: _order(k)[:700], "-0001", "not well-formed"),
    "namespace.xml": (
        lambda k: _order(k).replace(b"http://www.chinaport.gov.cn/ceb", b"urn:other"),
        "-0001",
        "namespace",
    ),
    "unknown.xml": (
        lambda k: (
            b'<ceb:CEB999Message xmlns:ceb="http://www.chinaport.gov.cn/ceb" guid="A" version="1.0"/>'
        ),
        "-0001",
        "CEB999Message",
    ),
    "missing.xml": (lambda k: _order(k, lambda r: _drop(r, "orderNo"), seed=2), "-0002", "orderNo"),
    "too-long.xml": (
        lambda k: _order(k, lambda r: _set(r, "orderNo", "N" * 61), seed=3),
        "-0002",
        "orderNo",
    ),
    "xxe.xml": (lambda k: XXE, "-0001", "DOCTYPE"),
    "laughs.xml": (lambda k: LAUGHS, "-0001", "DOCTYPE"),
    "huge.xml": (lambda k: b"<a>" + b"x" * (50 * 1024 * 1024) + b"</a>", "-0999", "over the limit"),
}


def test_each_bad_file_is_answered_and_quarantined_and_good_work_goes_on(hub_ws, keys):
    inbox = hub_ws.inbox_of("platform")
    for name, (make, _, _) in CASES.items():
        (inbox / name).write_bytes(make(keys))
    good = make_purchases(1, seed=99)
    (inbox / "good.xml").write_bytes(
        to_bytes(order_message(good, DEMO_PARTIES, sign=keys["platform"].sign))
    )

    assert cli(hub_ws, "run", "--once") == 0

    entries = receipt_entries(hub_ws.outbox_of("platform"))
    format_errors = [e for e in entries if e.msg_type == "CEB900Message"]
    assert len(format_errors) == len(CASES)
    by_origin = {e.fields["oriCopMsgId"]: e for e in format_errors}
    for name, (_, code, words) in CASES.items():
        matching = [e for e in format_errors if e.status == code and words in e.info]
        assert matching, f"{name}: no CEB900 {code} mentioning {words!r} in {by_origin}"
    quarantined = files(hub_ws.quarantine / "platform", "*--*")
    assert len([p for p in quarantined if not p.name.endswith(".reason.txt")]) == len(CASES)
    reasons = [p.read_text() for p in quarantined if p.name.endswith(".reason.txt")]
    assert len(reasons) == len(CASES) and all("reason: -0" in r for r in reasons)
    # The good order in the same batch was stored and answered.
    ok = [e for e in entries if e.msg_type == "CEB312Message"]
    assert [e.status for e in ok] == ["2", "120"]
    assert not files(inbox, "*") and not files(hub_ws.claims / "platform", "*")


@pytest.mark.parametrize("field", ["ebpCode", "acturalPaid", "buyerIdNumber"])
def test_schema_errors_name_the_field(hub_ws, keys, field):
    root = order_message(make_purchases(1, seed=4), DEMO_PARTIES)
    _drop(root, field)
    (hub_ws.inbox_of("platform") / "bad.xml").write_bytes(to_bytes(keys["platform"].sign(root)))
    cli(hub_ws, "run", "--once")
    [entry] = receipt_entries(hub_ws.outbox_of("platform"))
    assert entry.msg_type == "CEB900Message" and entry.status == "-0002"
    assert field in entry.info and "CEB311Message" in entry.info
    assert entry.fields["oriMessageType"] == "CEB311Message"


def test_receipts_for_bad_input_are_schema_valid(hub_ws, keys):
    from hub import schemas

    (hub_ws.inbox_of("platform") / "junk.xml").write_bytes(b"junk")
    cli(hub_ws, "run", "--once")
    [path] = files(hub_ws.outbox_of("platform"))
    schemas.validate(etree.fromstring(path.read_bytes()))


def test_a_file_that_cannot_be_quarantined_holds_up_nothing_and_is_finished_later(hub_ws, keys):
    """The quarantine folder refuses a bad file (a file stands where its folder goes). The bad
    file is answered once and stays claimed; the good file of its batch and the next batch are
    archived; the hub's retry quarantines it once the folder can be made."""
    from hub.runner import Hub

    inbox = hub_ws.inbox_of("platform")
    (inbox / "junk.xml").write_bytes(b"\x00 not xml")
    (inbox / "good.xml").write_bytes(_order(keys, seed=31))
    blocker = hub_ws.quarantine / "platform"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    hub = Hub(hub_ws)
    try:
        hub.process_claims(hub.inbox.claim(10))  # did not raise
        [held] = files(hub_ws.claims / "platform")
        assert held.name.endswith("junk.xml")
        (inbox / "later.xml").write_bytes(_order(keys, seed=32))
        hub.process_claims(hub.inbox.claim(10))
        archived = sorted(p.name.partition("--")[2] for p in files(hub_ws.archive, "*/*/*.xml"))
        assert archived == ["good.xml", "later.xml"]
        assert hub.retry_unfinished() == 0  # still refused: kept for the next try
        assert files(hub_ws.claims / "platform") == [held]

        blocker.unlink()
        assert hub.retry_unfinished() == 1
        assert hub.retry_unfinished() == 0  # nothing left
        hub.deliver()
    finally:
        hub.close()
    assert not files(hub_ws.claims / "platform")
    assert [p.name for p in files(blocker)] == [held.name]
    assert "not well-formed" in (blocker / f"{held.name}.reason.txt").read_text()
    answers = [e for e in receipt_entries(hub_ws.outbox_of("platform")) if e.status == "-0001"]
    assert len(answers) == 1  # answered when recorded, not again when finished


def test_a_claimed_file_that_cannot_be_read_is_answered_and_the_batch_goes_on(hub_ws, keys):
    """Between its claim and its read the file became unreadable (here: a folder took its
    place). It is answered with the hub's own error code, without our paths, and quarantined;
    the rest of its batch is recorded."""
    from hub.runner import Hub

    inbox = hub_ws.inbox_of("platform")
    (inbox / "a.xml").write_bytes(_order(keys, seed=41))
    (inbox / "b.xml").write_bytes(_order(keys, seed=42))
    hub = Hub(hub_ws)
    try:
        claims = hub.inbox.claim(10)
        broken = next(c for c in claims if c.original_name == "b.xml")
        broken.path.unlink()
        broken.path.mkdir()  # reading it now fails: Is a directory
        (broken.path / "x").write_text("not the message")
        states = {d.inbound.file_name: d.state for d in hub.process_claims(claims)}
        hub.deliver()
    finally:
        hub.close()
    assert states == {"a.xml": "accepted", "b.xml": "rejected"}
    [answer] = [e for e in receipt_entries(hub_ws.outbox_of("platform")) if e.status == "-3999"]
    assert (
        "could not be read: Is a directory" in answer.info and str(hub_ws.root) not in answer.info
    )
    assert [p.name for p in (hub_ws.quarantine / "platform").iterdir() if p.is_dir()] == [
        broken.path.name
    ]
    assert not any((hub_ws.claims / "platform").iterdir())
