"""Partner trust through the hub: who may sign what, and what happens to what fails."""

from __future__ import annotations

import base64
import copy
import dataclasses
from datetime import timedelta

import pytest
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureMethod,
    XMLSigner,
    XMLVerifier,
    methods,
)
from sqlalchemy import select

from hub import codes, config, pipeline
from hub.clock import utcnow
from hub.constants import CEB_NS, DS_NS
from hub.errors import MessageRejected, NotPermitted, SignatureError
from hub.generator import (
    DEMO_PARTIES,
    dxp_envelope,
    list_message,
    make_purchases,
    order_message,
    to_bytes,
)
from hub.messages.types import LIST, ORDER
from hub.runner import build_stages
from hub.signing import (
    certificate_pem,
    key_name,
    new_self_signed,
    remove_signature,
    sign_enveloped,
    write_pem,
)
from hub.store.db import engine_for
from hub.store.tables import deliveries, messages, orders, receipts
from hub.trust import drop_comments
from tests.helpers import cli, files, receipt_entries

NS = {"ceb": CEB_NS, "ds": DS_NS}
SIGNATURE_INVALID = codes.SIGNATURE_INVALID  # CEB311: the spec has no code of its own (DXP 1001)
DIGEST_MISMATCH = codes.SIGNATURE_MISMATCH  # DXP 1004
NOT_PERMITTED = ORDER.codes.not_permitted  # -10102: enterprise code invalid


# ---------------------------------------------------------------- helpers


def _db(ws):
    return engine_for(config.load(ws), ws)


def _order(seed: int, sign=None, parties=DEMO_PARTIES, **override) -> etree._Element:
    purchase = make_purchases(1, seed=seed)[0]
    if override:
        purchase = purchase.override("OrderHead", **override)
    return order_message([purchase], parties, sign=sign)


def _signed_with(key, cert, algorithm: str = "rsa-sha256"):
    return lambda root: sign_enveloped(root, key, cert, algorithm=algorithm)


def _edit(data: bytes, change) -> bytes:
    """`data` after `change(root)`, serialised as it stands (no re-indenting)."""
    root = etree.fromstring(data)
    change(root)
    return to_bytes(root)


def _send(ws, data: bytes, partner: str = "platform", name: str = "order.xml") -> None:
    src = ws.root / name
    src.write_bytes(data)
    assert cli(ws, "submit", src, "--from", partner) == 0
    assert cli(ws, "run", "--once") == 0


def _set_partner(ws, partner: str, **values) -> None:
    doc = config.read_document(ws)
    for name, value in values.items():
        doc["partners"][partner][name] = value
    config.write_document(ws, doc)


def _add_cert(ws, partner: str, cert, name: str) -> None:
    path = ws.root / f"{name}.cert.pem"
    write_pem(path, certificate_pem(cert))
    assert cli(ws, "partner", "cert", "add", partner, path) == 0


def assert_accepted(ws, signed_by: str | None, partner: str = "platform") -> None:
    got = [e.status for e in receipt_entries(ws.outbox_of(partner), "CEB312Message")]
    assert got == ["2", "120"], receipt_entries(ws.outbox_of(partner))
    with _db(ws).connect() as conn:
        msg = conn.execute(select(messages)).one()
        assert (msg.state, msg.signed_by) == ("accepted", signed_by)
        assert conn.execute(select(orders)).first() is not None
    assert len(files(ws.outbox_of("customs"))) == 1  # routed on, exactly as received


def assert_rejected(
    ws, code: str, why: str = "", partner: str = "platform", signed_by: str | None = None
) -> str:
    """Answered with `code` in the type's receipt; nothing stored, nothing routed; quarantined."""
    entries = receipt_entries(ws.outbox_of(partner))  # one per record, in one receipt
    assert entries and {(e.msg_type, e.status) for e in entries} == {("CEB312Message", code)}
    entry = entries[0]
    assert why in entry.info, entry.info
    with _db(ws).connect() as conn:
        msg = conn.execute(select(messages)).one()
        assert (msg.state, msg.return_status, msg.body, msg.signed_by) == (
            "rejected",
            code,
            None,
            signed_by,
        )
        assert conn.execute(select(orders)).first() is None
        assert {r.return_status for r in conn.execute(select(receipts))} == {code}
        assert {d.partner_id for d in conn.execute(select(deliveries))} == {partner}
    assert not files(ws.outbox_of("customs")) and not files(ws.outbox_of("inspection"))
    quarantined = files(ws.quarantine / partner, "*")
    [original] = [p for p in quarantined if not p.name.endswith(".reason.txt")]
    [reason] = [p for p in quarantined if p.name.endswith(".reason.txt")]
    assert reason.name == original.name + ".reason.txt"
    assert code in reason.read_text(encoding="utf-8")
    return entry.info


# ---------------------------------------------------------------- accepted


def test_rsa_sha256_signed_order_is_accepted(hub_ws, keys):
    _send(hub_ws, to_bytes(_order(1, sign=keys["platform"].sign)))
    assert_accepted(hub_ws, key_name(keys["platform"].cert))


def test_ecdsa_sha256_signed_order_is_accepted(hub_ws):
    key, cert = new_self_signed("platform EC card", key_type="ec")
    _add_cert(hub_ws, "platform", cert, "platform-ec")
    _send(hub_ws, to_bytes(_order(2, sign=_signed_with(key, cert, "ecdsa-sha256"))))
    assert_accepted(hub_ws, key_name(cert))


def test_unsigned_order_is_accepted_where_the_policy_is_optional(hub_ws):
    _set_partner(hub_ws, "platform", signature_by_type={"CEB311Message": "optional"})
    _send(hub_ws, to_bytes(_order(3)))
    assert_accepted(hub_ws, None)


def test_sha1_is_accepted_from_a_partner_allowed_to_use_it(hub_ws, keys):
    _set_partner(hub_ws, "platform", allow_sha1=True)
    platform = keys["platform"]
    _send(hub_ws, to_bytes(_order(4, sign=_signed_with(platform.key, platform.cert, "rsa-sha1"))))
    assert_accepted(hub_ws, key_name(platform.cert))


def test_a_comment_slipped_into_a_signed_field_does_not_cut_the_value_processed(hub_ws, keys):
    # C14N drops comments, so the signature still verifies; the value stored must be the signed one.
    data = to_bytes(_order(5, sign=keys["platform"].sign))
    order_no = etree.fromstring(data).findtext(".//ceb:orderNo", namespaces=NS)
    cut = data.replace(f">{order_no}<".encode(), f">{order_no[:3]}<!---->{order_no[3:]}<".encode())
    assert cut != data
    _send(hub_ws, cut)
    assert_accepted(hub_ws, key_name(keys["platform"].cert))
    with _db(hub_ws).connect() as conn:
        assert conn.execute(select(orders.c.order_no)).scalar() == order_no
    [entry] = receipt_entries(hub_ws.outbox_of("platform"))[:1]
    assert entry.fields["orderNo"] == order_no


def test_drop_comments_keeps_the_text_around_them():
    root = etree.fromstring(b"<a>x<!--1-->y<b/>p<!--2-->q<!--3--><c><!--4-->z</c></a>")
    assert drop_comments(root) == 4
    assert etree.tostring(root) == b"<a>xy<b/>pq<c>z</c></a>"


# ---------------------------------------------------------------- rejected: the signature


def test_digest_tampered_amount_is_a_digest_mismatch(hub_ws, keys):
    def cheaper(root):
        root.find(".//ceb:acturalPaid", NS).text = "0.01"

    _send(hub_ws, _edit(to_bytes(_order(10, sign=keys["platform"].sign)), cheaper))
    assert_rejected(hub_ws, DIGEST_MISMATCH, "digest mismatch")


def test_signature_value_tampered_is_invalid(hub_ws, keys):
    def flip(root):
        value = root.find("ds:Signature/ds:SignatureValue", NS)
        raw = bytearray(base64.b64decode(value.text))
        raw[10] ^= 0x01
        value.text = base64.b64encode(bytes(raw)).decode()

    _send(hub_ws, _edit(to_bytes(_order(11, sign=keys["platform"].sign)), flip))
    assert_rejected(hub_ws, SIGNATURE_INVALID, "not made by a registered certificate")


def test_order_signed_by_an_unregistered_key_is_rejected(hub_ws):
    # The key embeds its own, perfectly valid certificate: that alone earns no trust.
    key, cert = new_self_signed("platform (claims to be)")
    _send(hub_ws, to_bytes(_order(12, sign=_signed_with(key, cert))))
    assert_rejected(hub_ws, SIGNATURE_INVALID, "not made by a registered certificate")


@pytest.mark.parametrize("other", ["payment", "stranger"])
def test_order_signed_with_another_partners_key_is_rejected(hub_ws, keys, other):
    # payment's certificate is registered, but for payment: it does not speak for the platform.
    _send(hub_ws, to_bytes(_order(13, sign=keys[other].sign)))
    assert_rejected(hub_ws, SIGNATURE_INVALID, "not made by a registered certificate")


def test_order_signed_with_an_expired_certificate_is_rejected(hub_ws):
    start = utcnow() - timedelta(days=400)
    key, cert = new_self_signed("platform old card", not_before=start, days=365)
    _add_cert(hub_ws, "platform", cert, "platform-expired")
    _send(hub_ws, to_bytes(_order(14, sign=_signed_with(key, cert))))
    assert_rejected(hub_ws, SIGNATURE_INVALID, f"certificate {key_name(cert)} of platform expired")


def test_sha1_from_a_partner_not_allowed_to_use_it_is_rejected(hub_ws, keys):
    platform = keys["platform"]
    _send(hub_ws, to_bytes(_order(15, sign=_signed_with(platform.key, platform.cert, "rsa-sha1"))))
    assert_rejected(hub_ws, SIGNATURE_INVALID, "SHA-1")


def test_unsigned_order_is_rejected_where_a_signature_is_required(hub_ws):
    _send(hub_ws, to_bytes(_order(16)))
    assert_rejected(hub_ws, SIGNATURE_INVALID, "ds:Signature missing")


def test_a_second_unsigned_order_moved_into_the_signed_tree_is_rejected(hub_ws, keys):
    def smuggle(root):
        forged = copy.deepcopy(root.find("ceb:Order", NS))
        forged.find(".//ceb:orderNo", NS).text = "FORGED-0001"
        root.find("ceb:Order", NS).addnext(forged)

    _send(hub_ws, _edit(to_bytes(_order(17, sign=keys["platform"].sign)), smuggle))
    assert_rejected(hub_ws, DIGEST_MISMATCH, "digest mismatch")


def test_signed_order_hidden_under_the_signature_behind_a_forged_one_is_rejected(hub_ws, keys):
    # The classic wrapping attack: the signed original moves into ds:Object, a forged order
    # stands where a processor would look for it.
    original = etree.fromstring(to_bytes(_order(18, sign=keys["platform"].sign)))
    forged = copy.deepcopy(original)
    signature = forged[-1]
    forged.find(".//ceb:orderNo", NS).text = "FORGED-0002"
    etree.SubElement(signature, f"{{{DS_NS}}}Object").append(copy.deepcopy(original))
    _send(hub_ws, to_bytes(forged))
    assert_rejected(hub_ws, SIGNATURE_INVALID, "2 ds:Signature elements")


def test_a_signature_referencing_one_element_by_id_is_rejected(hub_ws, keys):
    # A valid signature over the first Order only (signxml says so); a second, unsigned Order
    # rides along. The profile signs the whole document (URI=""), so the hub refuses it.
    root = _order(19)
    remove_signature(root)
    first = root.find("ceb:Order", NS)
    first.set("Id", "order-1")
    platform = keys["platform"]
    signer = XMLSigner(
        method=methods.enveloped,
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0,
    )
    signed = signer.sign(root, key=platform.key, cert=[platform.cert], reference_uri="#order-1")
    forged = copy.deepcopy(signed.find("ceb:Order", NS))
    del forged.attrib["Id"]
    forged.find(".//ceb:orderNo", NS).text = "FORGED-0003"
    signed.find("ceb:BaseTransfer", NS).addprevious(forged)
    data = to_bytes(signed)
    pem = certificate_pem(platform.cert).decode()
    assert XMLVerifier().verify(data, x509_cert=pem, id_attribute="Id") is not None
    assert signed.find(".//ds:Reference", NS).get("URI") == "#order-1"
    _send(hub_ws, data)
    assert_rejected(hub_ws, SIGNATURE_INVALID, 'URI="#order-1"')


def test_a_badly_signed_message_is_refused_before_the_schema_is_looked_at(hub_ws, keys):
    # It breaks the XSD too, but the signature is checked first: it never gets deeper.
    bad = _order(20, sign=keys["stranger"].sign, orderType="X")
    _send(hub_ws, to_bytes(bad))
    assert_rejected(hub_ws, SIGNATURE_INVALID)


def test_a_well_signed_message_that_breaks_the_schema_gets_a_ceb900(hub_ws, keys):
    _send(hub_ws, to_bytes(_order(21, sign=keys["platform"].sign, orderType="X")))
    [entry] = receipt_entries(hub_ws.outbox_of("platform"))
    assert (entry.msg_type, entry.status) == ("CEB900Message", codes.SCHEMA_ERROR)


def test_an_envelope_signed_by_someone_else_is_rejected(hub_ws, keys):
    _set_partner(hub_ws, "platform", dxp_id=DEMO_PARTIES.ebp_dxp_id)
    payload = to_bytes(_order(22, sign=keys["platform"].sign))
    env = etree.fromstring(
        dxp_envelope(
            payload,
            sender_id=DEMO_PARTIES.ebp_dxp_id,
            receiver_id="DXPEDCCEB0000002",
            msg_type="CEB311Message",
        )
    )
    keys["stranger"].sign(env)
    _send(hub_ws, to_bytes(env))
    info = assert_rejected(hub_ws, SIGNATURE_INVALID, "envelope signature")
    assert "not made by a registered certificate" in info


# ---------------------------------------------------------------- rejected: codes not the partner's


def test_order_declared_for_codes_not_the_partners_is_rejected(hub_ws, keys):
    bad = _order(30, sign=keys["platform"].sign, ebpCode="9999999999", ebcCode="9999999998")
    _send(hub_ws, to_bytes(bad))
    signer = key_name(keys["platform"].cert)  # it verified: who signed it is on record
    assert_rejected(hub_ws, NOT_PERMITTED, "ebpCode '9999999999'", signed_by=signer)


def test_order_transmitted_under_a_code_not_the_partners_is_rejected(hub_ws, keys):
    other = dataclasses.replace(DEMO_PARTIES, cop_code="9999999997", cop_name="其他传输企业")
    _send(hub_ws, to_bytes(_order(31, sign=keys["platform"].sign, parties=other)))
    signer = key_name(keys["platform"].cert)
    assert_rejected(hub_ws, NOT_PERMITTED, "BaseTransfer copCode '9999999997'", signed_by=signer)


# ---------------------------------------------------------------- CEB621 at the check stages
# Lists may not have a handler yet; verify and permission run before any handler is needed.


@pytest.fixture
def list_check(hub_ws, monkeypatch):
    """Runs pipeline.check on a list from the agent; returns the Inbound it checked."""
    if LIST.root not in pipeline.HANDLERS:
        # identify only asks whether a handler exists; these stages never call it.
        monkeypatch.setitem(pipeline.HANDLERS, LIST.root, object())
    settings = config.load(hub_ws)
    stages = build_stages(hub_ws, settings)

    def check(data: bytes, partner: str = "agent") -> pipeline.Inbound:
        item = pipeline.Inbound(
            settings.partners[partner], "claim-1", "list.xml", data, received_at=utcnow()
        )
        pipeline.check(item, settings, stages)
        return item

    return check


def _list(seed: int, sign=None, parties=DEMO_PARTIES, **override) -> bytes:
    purchase = make_purchases(1, seed=seed)[0]
    if override:
        purchase = purchase.override("InventoryHead", **override)
    return to_bytes(list_message([purchase], parties, sign=sign))


def _refused(check, data: bytes, kind=SignatureError) -> MessageRejected:
    with pytest.raises(kind) as info:
        check(data)
    return info.value


def test_signed_list_passes_verification_and_permission(list_check, keys):
    item = list_check(_list(40, sign=keys["agent"].sign))
    assert item.signed_by == key_name(keys["agent"].cert)


def test_unsigned_list_is_refused_even_where_the_partner_policy_is_optional(hub_ws, list_check):
    _set_partner(hub_ws, "agent", signature="optional")  # the spec's XSD requires it for 621
    error = _refused(list_check, _list(41))
    assert error.return_status == codes.LIST_SIGNATURE_INVALID == "-621029"


def test_list_with_a_tampered_amount_is_refused_with_621028(list_check, keys):
    def cheaper(root):
        root.find(".//ceb:InventoryList/ceb:totalPrice", NS).text = "0.01"

    error = _refused(list_check, _edit(_list(42, sign=keys["agent"].sign), cheaper))
    assert error.return_status == codes.LIST_DIGEST_MISMATCH == "-621028"


def test_list_with_a_tampered_signature_value_is_refused_with_621029(list_check, keys):
    def flip(root):
        value = root.find("ds:Signature/ds:SignatureValue", NS)
        raw = bytearray(base64.b64decode(value.text))
        raw[-1] ^= 0x80
        value.text = base64.b64encode(bytes(raw)).decode()

    error = _refused(list_check, _edit(_list(43, sign=keys["agent"].sign), flip))
    assert error.return_status == codes.LIST_SIGNATURE_INVALID


@pytest.mark.parametrize("other", ["platform", "stranger"])
def test_list_signed_with_another_key_is_refused_with_621029(list_check, keys, other):
    error = _refused(list_check, _list(44, sign=keys[other].sign))
    assert error.return_status == codes.LIST_SIGNATURE_INVALID


def test_list_declared_by_another_agent_is_refused_with_621015(list_check, keys):
    data = _list(45, sign=keys["agent"].sign, agentCode="9999999996")
    error = _refused(list_check, data, NotPermitted)
    assert error.return_status == codes.LIST_NOT_PERMITTED == "-621015"
    assert "agentCode '9999999996'" in error.return_info


def test_list_transmitted_under_another_code_is_refused_with_621015(list_check, keys):
    other = dataclasses.replace(DEMO_PARTIES, cop_code="9999999995", cop_name="其他传输企业")
    error = _refused(list_check, _list(46, sign=keys["agent"].sign, parties=other), NotPermitted)
    assert error.return_status == codes.LIST_NOT_PERMITTED


def test_list_from_another_partner_with_its_own_valid_signature_is_refused(list_check, keys):
    # The platform signs correctly with its own key, but declares as the agent.
    with pytest.raises(NotPermitted) as info:
        list_check(_list(47, sign=keys["platform"].sign), partner="platform")
    assert info.value.return_status == codes.LIST_NOT_PERMITTED
