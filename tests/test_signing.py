"""The CEB signature profile: real keys, the official CEB621 sample, signxml as a cross-check."""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureMethod,
    XMLSigner,
    XMLVerifier,
)

from hub.constants import CEB_NS, DS_NS, DXP_NS, ceb
from hub.signing import (
    PrivateKey,
    SignatureInvalid,
    SignatureMissing,
    TrustedCert,
    certificate_pem,
    ensure_hub_key,
    has_signature,
    key_name,
    load_hub_key,
    new_self_signed,
    remove_signature,
    sign_bytes,
    sign_enveloped,
    verify_enveloped,
)
from hub.signing.certs import fingerprint_der
from hub.signing.sign import parse_document
from hub.signing.verify import ds
from hub.workspace import Workspace
from tests.helpers import SAMPLES

NOW = datetime.now(UTC)
XPATH_TRANSFORM = "http://www.w3.org/TR/1999/REC-xpath-19991116"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
SHA1_DIGEST = "http://www.w3.org/2000/09/xmldsig#sha1"
C14N_WITH_COMMENTS = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"


@dataclass(frozen=True)
class Signer:
    """A key with its certificate, as a partner or the hub holds them."""

    key: PrivateKey
    cert: x509.Certificate
    label: str

    @property
    def trusted(self) -> TrustedCert:
        return TrustedCert.from_certificate(self.cert, self.label)

    @property
    def pem(self) -> str:
        return certificate_pem(self.cert).decode("ascii")


def _signer(label: str, *, key_type="rsa", key=None, start_days_ago=1, days=365) -> Signer:
    start = NOW - timedelta(days=start_days_ago)
    key, cert = new_self_signed(label, key_type=key_type, key=key, days=days, not_before=start)
    return Signer(key, cert, label)


@pytest.fixture(scope="session")
def keys() -> dict[str, Signer]:
    """Every key the tests sign with, generated once per run."""
    rsa = _signer("partner-a")
    return {
        "rsa": rsa,
        "ec": _signer("partner-a", key_type="ec"),
        "other": _signer("partner-b"),
        "stranger": _signer("nobody"),
        # Rollover: the old certificate runs out 60 days from now, the new one overlaps it.
        "old": _signer("partner-a", key=rsa.key, start_days_ago=300, days=360),
        "new": _signer("partner-a", start_days_ago=10),
        "expired": _signer("partner-a", start_days_ago=400),
        "future": _signer("partner-a", start_days_ago=-30),
    }


def sample_root() -> etree._Element:
    """The official CEB621 sample without its placeholder signature."""
    root = parse_document((SAMPLES / "CEB621Message.xml").read_bytes())
    assert remove_signature(root) == 1
    return root


def signed(signer: Signer, algorithm: str = "rsa-sha256", root=None) -> bytes:
    root = sample_root() if root is None else root
    sign_enveloped(root, signer.key, signer.cert, algorithm=algorithm)
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True)


def verify(data: bytes | etree._Element, *signers: Signer, at=NOW, **kw) -> TrustedCert:
    root = parse_document(data) if isinstance(data, bytes) else data
    return verify_enveloped(root, [s.trusted for s in signers], at=at, **kw)


def rejected(data, *signers: Signer, at=NOW, **kw) -> SignatureInvalid:
    with pytest.raises(SignatureInvalid) as info:
        verify(data, *signers, at=at, **kw)
    return info.value


def edit(data: bytes, change) -> bytes:
    """`data` after `change(root)`, serialised as the wire would carry it."""
    root = parse_document(data)
    change(root)
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True)


def first(root, path: str) -> etree._Element:
    return root.find(path, {"ceb": CEB_NS, "ds": DS_NS})


def c14n(root: etree._Element) -> bytes:
    return etree.tostring(root.getroottree(), method="c14n", with_comments=False)


def with_comment(root: etree._Element) -> etree._Element:
    first(root, "ceb:Inventory/ceb:InventoryHead").insert(0, etree.Comment(" operator note "))
    return root


# --- the profile's good cases ---------------------------------------------------------------


def test_rsa_sha256_signature_verifies(keys):
    data = signed(keys["rsa"])
    assert verify(data, keys["rsa"]).cert == keys["rsa"].cert


def test_ecdsa_sha256_signature_verifies(keys):
    data = signed(keys["ec"], "ecdsa-sha256")
    assert verify(data, keys["rsa"], keys["ec"]).cert == keys["ec"].cert


def test_signature_is_last_child_with_keyname_and_certificate(keys):
    root = parse_document(signed(keys["rsa"]))
    signature = root[-1]
    assert signature.tag == ds("Signature")
    assert signature.findtext(f"{ds('KeyInfo')}/{ds('KeyName')}") == key_name(keys["rsa"].cert)
    der = base64.b64decode(signature.findtext(f".//{ds('X509Certificate')}"))
    assert x509.load_der_x509_certificate(der) == keys["rsa"].cert


def test_signing_changes_nothing_else_in_the_canonical_document(keys):
    before = c14n(sample_root())
    root = parse_document(signed(keys["rsa"]))
    remove_signature(root)
    assert c14n(root) == before


def test_reindenting_after_signing_breaks_the_digest(keys):
    # spec §5.2: the bytes sent must be the document that was signed.
    root = parse_document(signed(keys["rsa"]))
    etree.indent(root, space="  ")
    assert rejected(root, keys["rsa"]).digest_mismatch


def test_verifying_leaves_the_document_as_it_was(keys):
    good = parse_document(signed(keys["rsa"]))
    before = etree.tostring(good)
    verify(good, keys["rsa"])
    assert etree.tostring(good) == before
    bad = parse_document(signed(keys["rsa"]))
    first(bad, ".//ceb:totalPrice").text = "1"
    before = etree.tostring(bad)
    rejected(bad, keys["rsa"])
    assert etree.tostring(bad) == before


def test_default_namespace_document_verifies_both_ways(keys):
    # Receipts use a default namespace; inclusive C14N carries it into SignedInfo.
    root = etree.fromstring(
        f'<CEB622Message xmlns="{CEB_NS}" guid="4CDE1CFD-EDED-46B1-946C-B8022E42FC94" '
        'version="1.0">\n\t<InventoryReturn><returnStatus>2</returnStatus></InventoryReturn>\n'
        "</CEB622Message>"
    )
    data = signed(keys["rsa"], root=root)
    assert verify(data, keys["rsa"])
    XMLVerifier().verify(data, x509_cert=keys["rsa"].pem)


@pytest.mark.parametrize("key", ["rsa", "ec"])
def test_our_signature_verifies_with_signxml_alone(keys, key):
    algorithm = "ecdsa-sha256" if key == "ec" else "rsa-sha256"
    data = signed(keys[key], algorithm)
    result = XMLVerifier().verify(data, x509_cert=keys[key].pem)
    assert result.signed_xml.tag == ceb("CEB621Message")


@pytest.mark.parametrize(
    ("key", "method"),
    [("rsa", SignatureMethod.RSA_SHA256), ("ec", SignatureMethod.ECDSA_SHA256)],
)
def test_signxml_signature_verifies_with_ours(keys, key, method):
    signer = XMLSigner(
        signature_algorithm=method,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0,
    )
    root = signer.sign(sample_root(), key=keys[key].key, cert=[keys[key].cert])
    data = etree.tostring(root, encoding="UTF-8", xml_declaration=True)
    assert verify(data, keys[key]).cert == keys[key].cert


def test_comments_are_outside_the_signature_both_ways(keys):
    data = signed(keys["rsa"], root=with_comment(sample_root()))
    XMLVerifier().verify(data, x509_cert=keys["rsa"].pem)
    assert verify(data, keys["rsa"])
    signer = XMLSigner(c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0)
    root = signer.sign(with_comment(sample_root()), key=keys["rsa"].key, cert=[keys["rsa"].cert])
    assert verify(etree.tostring(root), keys["rsa"])


def test_signxml_signature_with_keyname_verifies_with_ours(keys):
    signer = XMLSigner(c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0)
    root = signer.sign(
        sample_root(),
        key=keys["rsa"].key,
        cert=[keys["rsa"].cert],
        key_name=key_name(keys["rsa"].cert),
    )
    assert verify(etree.tostring(root), keys["rsa"])


# --- tampering --------------------------------------------------------------------------------


def test_amount_changed_after_signing_is_a_digest_mismatch(keys):
    data = edit(signed(keys["rsa"]), lambda r: setattr(first(r, ".//ceb:totalPrice"), "text", "1"))
    problem = rejected(data, keys["rsa"])
    assert problem.digest_mismatch
    assert "digest" in problem.reason


def test_signature_value_tampered_is_invalid_not_a_digest_mismatch(keys):
    def flip(root):
        value = first(root, "ds:Signature/ds:SignatureValue")
        raw = bytearray(base64.b64decode(value.text))
        raw[10] ^= 0x01
        value.text = base64.b64encode(bytes(raw)).decode()

    problem = rejected(edit(signed(keys["rsa"]), flip), keys["rsa"])
    assert not problem.digest_mismatch
    assert "signature invalid" in problem.reason


def test_tampered_content_with_recomputed_digest_is_invalid(keys):
    # An attacker can recompute DigestValue but not the signature over SignedInfo.
    root = parse_document(signed(keys["rsa"]))
    signature = root[-1]
    first(root, ".//ceb:totalPrice").text = "1"
    root.remove(signature)
    sign_enveloped(root, keys["stranger"].key, keys["stranger"].cert)
    forged_digest = first(root, ".//ds:DigestValue").text
    root.remove(root[-1])
    root.append(signature)
    first(root, ".//ds:DigestValue").text = forged_digest
    problem = rejected(root, keys["rsa"])
    assert not problem.digest_mismatch


def test_ecdsa_signature_value_tampered_is_invalid(keys):
    def flip(root):
        value = first(root, "ds:Signature/ds:SignatureValue")
        raw = bytearray(base64.b64decode(value.text))
        raw[-1] ^= 0x01
        value.text = base64.b64encode(bytes(raw)).decode()

    data = edit(signed(keys["ec"], "ecdsa-sha256"), flip)
    assert not rejected(data, keys["ec"]).digest_mismatch


# --- who signed -------------------------------------------------------------------------------


def test_unregistered_key_is_rejected_though_it_embeds_a_valid_certificate(keys):
    problem = rejected(signed(keys["stranger"]), keys["rsa"], keys["ec"])
    assert "registered" in problem.reason


def test_another_partners_key_is_rejected(keys):
    # Partner B's certificate is registered, but for B: the list passed in is A's.
    data = signed(keys["other"])
    assert verify(data, keys["other"]).label == "partner-b"
    rejected(data, keys["rsa"], keys["ec"])


def test_no_registered_certificate_is_rejected(keys):
    assert "no registered" in rejected(signed(keys["rsa"])).reason


def test_ecdsa_signature_against_rsa_certificates_only_is_rejected(keys):
    rejected(signed(keys["ec"], "ecdsa-sha256"), keys["rsa"], keys["other"])


def test_expired_certificate_is_rejected(keys):
    problem = rejected(signed(keys["expired"]), keys["expired"])
    assert "expired" in problem.reason
    assert not problem.digest_mismatch


def test_not_yet_valid_certificate_is_rejected(keys):
    assert "not yet valid" in rejected(signed(keys["future"]), keys["future"]).reason


def test_validity_is_judged_at_receipt_time(keys):
    data = signed(keys["expired"])
    assert verify(data, keys["expired"], at=NOW - timedelta(days=200))


def test_keyname_mismatch_still_verifies_by_trying_each_certificate(keys):
    def rename(root):
        first(root, "ds:Signature/ds:KeyInfo/ds:KeyName").text = "deadbeef"
        x509_data = first(root, "ds:Signature/ds:KeyInfo/ds:X509Data")
        x509_data.getparent().remove(x509_data)

    data = edit(signed(keys["rsa"]), rename)
    assert verify(data, keys["other"], keys["ec"], keys["rsa"]).cert == keys["rsa"].cert


def test_certificate_rollover(keys):
    old_signed, new_signed = signed(keys["old"]), signed(keys["new"])
    both = (keys["old"], keys["new"])
    assert verify(old_signed, *both).cert == keys["old"].cert
    assert verify(new_signed, *both).cert == keys["new"].cert
    later = NOW + timedelta(days=90)
    assert verify(new_signed, *both, at=later).cert == keys["new"].cert
    assert "expired" in rejected(old_signed, *both, at=later).reason


# --- algorithms -------------------------------------------------------------------------------


def test_sha1_is_rejected_unless_allowed(keys):
    data = signed(keys["rsa"], "rsa-sha1")
    assert "SHA-1" in rejected(data, keys["rsa"]).reason
    assert verify(data, keys["rsa"], allow_sha1=True)


def test_sha1_digest_is_rejected_unless_allowed(keys):
    data = edit(
        signed(keys["rsa"]),
        lambda r: first(r, ".//ds:DigestMethod").set("Algorithm", SHA1_DIGEST),
    )
    assert "SHA-1" in rejected(data, keys["rsa"]).reason
    # Allowed, it is checked: the SHA-256 value does not match a SHA-1 digest.
    assert rejected(data, keys["rsa"], allow_sha1=True).digest_mismatch


def test_official_sample_sm2_signature_is_rejected_as_unsupported(keys):
    root = parse_document((SAMPLES / "CEB621Message.xml").read_bytes())
    assert "SM2" in rejected(root, keys["rsa"]).reason


@pytest.mark.parametrize("uri", [EXC_C14N, C14N_WITH_COMMENTS])
def test_other_canonicalization_is_rejected(keys, uri):
    data = edit(
        signed(keys["rsa"]),
        lambda r: first(r, ".//ds:CanonicalizationMethod").set("Algorithm", uri),
    )
    assert "canonicalization" in rejected(data, keys["rsa"]).reason


# --- structure and wrapping -------------------------------------------------------------------


def test_missing_signature(keys):
    root = sample_root()
    assert not has_signature(root)
    with pytest.raises(SignatureMissing):
        verify(root, keys["rsa"])
    assert has_signature(parse_document(signed(keys["rsa"])))
    nested = sample_root()
    etree.SubElement(first(nested, "ceb:BaseTransfer"), ds("Signature"))
    assert has_signature(nested)


def test_reference_to_an_id_is_rejected(keys):
    def point_at_id(root):
        first(root, "ceb:Inventory").set("Id", "inv1")
        first(root, ".//ds:Reference").set("URI", "#inv1")

    assert "URI" in rejected(edit(signed(keys["rsa"]), point_at_id), keys["rsa"]).reason


def test_xpath_transform_is_rejected(keys):
    def add_xpath(root):
        transform = etree.SubElement(
            first(root, ".//ds:Transforms"), ds("Transform"), Algorithm=XPATH_TRANSFORM
        )
        etree.SubElement(transform, ds("XPath")).text = "not(ancestor-or-self::ceb:Inventory)"

    assert "Transform" in rejected(edit(signed(keys["rsa"]), add_xpath), keys["rsa"]).reason


def test_two_references_are_rejected(keys):
    def second_reference(root):
        reference = first(root, ".//ds:Reference")
        reference.addnext(copy.deepcopy(reference))

    assert "Reference" in rejected(edit(signed(keys["rsa"]), second_reference), keys["rsa"]).reason


def test_signature_not_last_child_is_rejected(keys):
    def move_up(root):
        root.insert(0, root[-1])

    assert "last child" in rejected(edit(signed(keys["rsa"]), move_up), keys["rsa"]).reason


def test_signature_below_the_root_is_rejected(keys):
    def move_down(root):
        first(root, "ceb:BaseTransfer").append(root[-1])

    assert (
        "child of the document root"
        in rejected(edit(signed(keys["rsa"]), move_down), keys["rsa"]).reason
    )


def test_two_signatures_are_rejected(keys):
    other = parse_document(signed(keys["other"]))[-1]

    def add_second(root):
        first(root, "ceb:BaseTransfer").append(copy.deepcopy(other))

    assert "2 ds:Signature" in rejected(edit(signed(keys["rsa"]), add_second), keys["rsa"]).reason


def test_unsigned_inventory_added_to_the_signed_tree_is_rejected(keys):
    def smuggle(root):
        forged = copy.deepcopy(first(root, "ceb:Inventory"))
        first(forged, ".//ceb:copNo").text = "FORGED0001"
        first(root, "ceb:BaseTransfer").addprevious(forged)

    assert rejected(edit(signed(keys["rsa"]), smuggle), keys["rsa"]).digest_mismatch


def test_inventory_hidden_in_keyinfo_is_rejected(keys):
    # KeyInfo is outside the digest: anything there would be unsigned.
    def smuggle(root):
        first(root, "ds:Signature/ds:KeyInfo").append(copy.deepcopy(first(root, "ceb:Inventory")))

    assert "namespace" in rejected(edit(signed(keys["rsa"]), smuggle), keys["rsa"]).reason


def test_signed_content_moved_under_object_behind_a_forged_root_is_rejected(keys):
    original = parse_document(signed(keys["rsa"]))
    signature = original[-1]
    forged = sample_root()
    first(forged, ".//ceb:copNo").text = "FORGED0001"
    forged.append(signature)
    obj = etree.SubElement(signature, ds("Object"))
    obj.append(copy.deepcopy(original))
    assert "Object" in rejected(forged, keys["rsa"]).reason


def test_forged_root_with_the_original_signature_is_a_digest_mismatch(keys):
    signature = parse_document(signed(keys["rsa"]))[-1]
    forged = sample_root()
    first(forged, ".//ceb:copNo").text = "FORGED0001"
    forged.append(signature)
    assert rejected(forged, keys["rsa"]).digest_mismatch


def test_doctype_is_rejected_at_the_verifier(keys):
    data = signed(keys["rsa"])
    head, body = data.split(b"?>", 1)
    with_dtd = head + b'?>\n<!DOCTYPE ceb:CEB621Message [<!ENTITY x "1">]>' + body
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(with_dtd, parser)
    assert "DOCTYPE" in rejected(root, keys["rsa"]).reason


def test_verifier_needs_the_document_root(keys):
    root = parse_document(signed(keys["rsa"]))
    with pytest.raises(ValueError):
        verify(first(root, "ceb:Inventory"), keys["rsa"])


# --- signing ----------------------------------------------------------------------------------


def test_sign_bytes_replaces_an_existing_signature(keys):
    data = sign_bytes(
        (SAMPLES / "CEB621Message.xml").read_bytes(),
        keys["rsa"].key,
        keys["rsa"].cert,
        replace=True,
    )
    root = parse_document(data)
    assert len(root.findall(f".//{ds('Signature')}")) == 1
    assert verify(root, keys["rsa"])


def test_sign_refuses_an_already_signed_document(keys):
    root = parse_document(signed(keys["rsa"]))
    with pytest.raises(ValueError, match="already signed"):
        sign_enveloped(root, keys["rsa"].key, keys["rsa"].cert)


def test_sign_refuses_a_certificate_of_another_key(keys):
    with pytest.raises(ValueError, match="not for this key"):
        sign_enveloped(sample_root(), keys["rsa"].key, keys["other"].cert)


def test_sign_refuses_an_algorithm_for_another_key_type(keys):
    with pytest.raises(ValueError, match="EC key"):
        sign_enveloped(sample_root(), keys["rsa"].key, keys["rsa"].cert, algorithm="ecdsa-sha256")


@pytest.mark.parametrize(
    ("serial", "expected"),
    [(0x1691F7F, "01691f7f"), (0x3000000000CDE6F, "03000000000cde6f"), (0xABC, "00000abc"),
     (0x123456789, "0123456789")],
)  # fmt: skip
def test_key_name_is_the_serial_in_even_length_lower_hex(keys, serial, expected):
    _, cert = new_self_signed("serial", key=keys["rsa"].key, serial=serial)
    assert key_name(cert) == expected


def test_hub_signed_dxp_envelope_verifies_with_signxml_and_the_exported_certificate(tmp_path):
    ws = Workspace(tmp_path)
    key, cert = ensure_hub_key(ws)
    assert load_hub_key(ws)[1] == cert
    exported = ws.keys.joinpath("hub.cert.pem").read_text()
    payload = base64.b64encode(signed(Signer(key, cert, "hub"))).decode()
    envelope = etree.fromstring(
        f'<dxp:DxpMsg xmlns:dxp="{DXP_NS}" ver="1.0"><dxp:TransInfo>'
        "<dxp:CopMsgId>7c1e7b2e-8d4f-4a51-9a5e-1d2f3a4b5c6d</dxp:CopMsgId>"
        "<dxp:SenderId>DXPEDCCEB0000002</dxp:SenderId>"
        "<dxp:ReceiverIds><dxp:ReceiverId>DXPENT0000000001</dxp:ReceiverId></dxp:ReceiverIds>"
        "<dxp:CreatTime>2024-05-01T10:00:00</dxp:CreatTime><dxp:MsgType>CEB622Message</dxp:MsgType>"
        f"</dxp:TransInfo><dxp:Data>{payload}</dxp:Data></dxp:DxpMsg>"
    )
    sign_enveloped(envelope, key, cert)
    data = etree.tostring(envelope, encoding="UTF-8", xml_declaration=True)
    result = XMLVerifier().verify(data, x509_cert=exported)
    assert result.signed_xml.find(f"{{{DXP_NS}}}Data").text == payload
    hub = TrustedCert.from_pem(exported, "hub")
    # The hub key was made just now, maybe long after NOW was taken at import.
    assert verify_enveloped(parse_document(data), [hub], at=datetime.now(UTC)) == hub


def test_embedded_certificates_are_remembered_only_when_certificate_sized(keys):
    """KeyInfo is read before the signature is checked, so anyone may fill it: a partner's
    own certificate is remembered by its text, a text of megabytes is not kept."""
    from hub.signing import verify

    verify._FINGERPRINTS.clear()
    root = parse_document(signed(keys["rsa"]))
    certificate = first(root, ".//ds:X509Certificate")
    verify._key_info(first(root, "ds:Signature/ds:KeyInfo"))
    assert list(verify._FINGERPRINTS) == [certificate.text]
    certificate.text = base64.b64encode(b"\x00" * 3_000_000).decode()
    _, (fingerprint,) = verify._key_info(first(root, "ds:Signature/ds:KeyInfo"))
    assert fingerprint == fingerprint_der(b"\x00" * 3_000_000)
    assert all(len(text) < 16 * 1024 for text in verify._FINGERPRINTS)


def test_a_key_s_bytes_are_checked_once_and_a_wrong_password_still_fails(monkeypatch):
    from cryptography.hazmat.primitives import serialization

    from hub.signing import certs

    key, _ = new_self_signed("key cache test")
    pem = certs.private_key_pem(key)
    locked = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    checked = []
    real = serialization.load_pem_private_key

    def counting(data, password=None, **kwargs):
        checked.append(data)
        return real(data, password=password, **kwargs)

    monkeypatch.setattr(serialization, "load_pem_private_key", counting)
    full = {bytes([n % 256]) * 32: object() for n in range(certs._MAX_CHECKED_KEYS)}
    monkeypatch.setattr(certs, "_CHECKED_KEYS", full)  # a full cache still takes new keys
    first = certs.load_private_key(pem)
    assert certs.load_private_key(pem) is first  # the same bytes: checked once
    assert len(checked) == 1
    other, _ = new_self_signed("another key")
    assert certs.load_private_key(certs.private_key_pem(other)) is not first
    assert len(checked) == 2
    with pytest.raises(ValueError):
        certs.load_private_key(locked, password=b"wrong")
    opened = certs.load_private_key(locked, password=b"secret")
    assert opened.private_numbers() == key.private_numbers()
    with pytest.raises(ValueError):  # the right password once does not open it for another
        certs.load_private_key(locked, password=b"wrong")
