"""Verification of enveloped XML-DSig signatures under the CEB profile (spec §5)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from hub.clock import as_utc
from hub.constants import DS_NS
from hub.signing.certs import PublicKey, TrustedCert, fingerprint_der

C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SM2_SM3 = (  # spec §5.1 / §5.2: both URIs are seen in the field; we cannot verify either
    "http://www.chinaport.gov.cn/2022/04/xmldsig#sm2-sm3",
    "http://www.w3.org/2000/09/xmldsig#sm2-sm3",
)
ALLOWED_TRANSFORMS = ([ENVELOPED], [ENVELOPED, C14N_10])

HashFactory = Callable[[bytes], Any]  # hashlib.sha256 and friends


def ds(tag: str) -> str:
    """Clark name of an XML-DSig element."""
    return f"{{{DS_NS}}}{tag}"


DS_PREFIX = f"{{{DS_NS}}}"
SIGNATURE = ds("Signature")
KEY_NAME, X509_DATA, X509_CERTIFICATE = ds("KeyName"), ds("X509Data"), ds("X509Certificate")


def c14n(node: etree._Element | etree._ElementTree) -> bytes:
    """Inclusive C14N 1.0 without comments (lxml keeps comments unless told not to)."""
    return etree.tostring(node, method="c14n", exclusive=False, with_comments=False)


@dataclass(frozen=True)
class Algorithm:
    """A signature method of the profile."""

    name: str  # short name used on the command line
    uri: str
    key: str  # "rsa" or "ec", as certs.key_algorithm names them
    hash: hashes.HashAlgorithm
    legacy: bool = False  # SHA-1: only for partners configured for old cards


ALGORITHMS = (
    Algorithm("rsa-sha256", RSA_SHA256, "rsa", hashes.SHA256()),
    Algorithm("ecdsa-sha256", ECDSA_SHA256, "ec", hashes.SHA256()),
    Algorithm("rsa-sha1", RSA_SHA1, "rsa", hashes.SHA1(), legacy=True),
)
ALGORITHM_BY_URI = {a.uri: a for a in ALGORITHMS}
ALGORITHM_BY_NAME = {a.name: a for a in ALGORITHMS}
DIGESTS: dict[str, tuple[HashFactory, bool]] = {
    SHA256: (hashlib.sha256, False),  # (hash function, legacy)
    SHA1: (hashlib.sha1, True),
}


class SignatureProblem(Exception):
    """Base of the verifier's errors; `reason` is fit for a receipt's returnInfo."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SignatureMissing(SignatureProblem):
    """The document carries no ds:Signature."""


class SignatureInvalid(SignatureProblem):
    """The signature breaks the profile, does not verify, or is not by a trusted certificate."""

    def __init__(self, reason: str, digest_mismatch: bool = False) -> None:
        super().__init__(reason)
        self.digest_mismatch = digest_mismatch  # -621028-style code rather than -621029-style


@dataclass(frozen=True)
class _Signed:
    """What one ds:Signature claims, read and checked against the profile."""

    signed_info: etree._Element
    algorithm: Algorithm
    digest: HashFactory
    digest_value: bytes
    signature_value: bytes
    key_name: str | None
    embedded_fingerprints: tuple[str, ...]


def has_signature(root: etree._Element) -> bool:
    """True if a ds:Signature is anywhere in the document (says nothing of its validity).

    Anywhere, not just under the root: a misplaced signature must reach the verifier and fail.
    """
    return next(root.iter(SIGNATURE), None) is not None


def verify_enveloped(
    root: etree._Element,
    trusted: Sequence[TrustedCert],
    *,
    at: datetime,
    allow_sha1: bool = False,
) -> TrustedCert:
    """Verify the document's enveloped signature; return the trusted certificate that made it.

    The reference is the whole document, so a success vouches for `root` and everything under it.
    """
    signature = _the_signature(root)
    signed = _read_signature(signature, allow_sha1=allow_sha1)
    _check_digest(root, signature, signed)
    return _check_signature(signed, trusted, at)


def _the_signature(root: etree._Element) -> etree._Element:
    if root.getparent() is not None:
        raise ValueError("verify_enveloped needs the document root element")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise SignatureInvalid("the document has a DOCTYPE; DTDs are not allowed")
    found = list(root.iter(SIGNATURE, etree.Entity))
    if any(not isinstance(node.tag, str) for node in found):
        raise SignatureInvalid("the document contains entity references")
    if not found:
        raise SignatureMissing("the message has no ds:Signature")
    if len(found) > 1:
        raise SignatureInvalid(f"{len(found)} ds:Signature elements; the profile allows one")
    signature = found[0]
    if signature.getparent() is not root:
        raise SignatureInvalid("ds:Signature is not a child of the document root")
    if root[-1] is not signature:
        raise SignatureInvalid("ds:Signature is not the last child of the document root")
    return signature


def _read_signature(signature: etree._Element, *, allow_sha1: bool) -> _Signed:
    parts = _children(signature, "Signature", ["SignedInfo", "SignatureValue"], ["KeyInfo"])
    # KeyInfo is outside the digest: a foreign element there would be unsigned content.
    if _HAS_FOREIGN(signature):
        raise SignatureInvalid("ds:Signature contains elements outside the XML-DSig namespace")
    signed_info = parts["SignedInfo"]
    references = signed_info.findall(ds("Reference"))
    if len(references) != 1:
        raise SignatureInvalid(f"{len(references)} ds:Reference elements; the profile allows one")
    info = _children(
        signed_info, "SignedInfo", ["CanonicalizationMethod", "SignatureMethod", "Reference"]
    )
    _check_canonicalization(info["CanonicalizationMethod"])
    algorithm = _signature_method(info["SignatureMethod"], allow_sha1=allow_sha1)
    digest, digest_value = _check_reference(info["Reference"], allow_sha1=allow_sha1)
    key_name, fingerprints = _key_info(parts.get("KeyInfo"))
    return _Signed(
        signed_info=signed_info,
        algorithm=algorithm,
        digest=digest,
        digest_value=digest_value,
        signature_value=_base64(parts["SignatureValue"], "SignatureValue"),
        key_name=key_name,
        embedded_fingerprints=fingerprints,
    )


def _children(
    parent: etree._Element, what: str, required: list[str], optional: Sequence[str] = ()
) -> dict[str, etree._Element]:
    """The element children of `parent`, which must be exactly `required` then `optional`, in order."""
    found = [child for child in parent if isinstance(child.tag, str)]
    names = [_local(child.tag) for child in found]
    head, rest = names[: len(required)], names[len(required) :]
    if head != required or rest != list(optional[: len(rest)]):
        expected = ", ".join(required + [f"{o}?" for o in optional])
        raise SignatureInvalid(
            f"ds:{what} holds {', '.join(names) or 'nothing'}; expected {expected}"
        )
    return dict(zip(names, found, strict=True))


def _local(tag: str) -> str:
    """The local name of a ds: tag; any other tag stays in Clark notation so it never matches."""
    return tag[len(DS_PREFIX) :] if tag.startswith(DS_PREFIX) else tag


# Walked in C: a Python walk over the signature's elements cost more than the RSA check.
_HAS_FOREIGN = etree.XPath(f"boolean(descendant::*[namespace-uri() != '{DS_NS}'])")


def _check_canonicalization(method: etree._Element) -> None:
    uri = _algorithm_uri(method)
    if uri != C14N_10:
        raise SignatureInvalid(f"canonicalization {uri} is not allowed; only inclusive C14N 1.0")


def _signature_method(method: etree._Element, *, allow_sha1: bool) -> Algorithm:
    uri = _algorithm_uri(method)
    if uri in SM2_SM3:
        raise SignatureInvalid(f"signature method {uri} (SM2/SM3) is not supported")
    algorithm = ALGORITHM_BY_URI.get(uri)
    if algorithm is None:
        raise SignatureInvalid(f"signature method {uri} is not supported")
    if algorithm.legacy and not allow_sha1:
        raise SignatureInvalid(f"signature method {uri} (SHA-1) is not accepted for this partner")
    return algorithm


def _check_reference(reference: etree._Element, *, allow_sha1: bool) -> tuple[HashFactory, bytes]:
    uri = reference.get("URI")
    if uri != "":
        shown = "no URI" if uri is None else f'URI="{uri}"'
        raise SignatureInvalid(
            f'ds:Reference has {shown}; the profile signs the whole document (URI="")'
        )
    parts = _children(reference, "Reference", ["Transforms", "DigestMethod", "DigestValue"])
    transforms = [child for child in parts["Transforms"] if isinstance(child.tag, str)]
    if any(t.tag != ds("Transform") or len(t) for t in transforms):
        raise SignatureInvalid(
            "ds:Transforms holds something other than plain ds:Transform elements"
        )
    uris = [t.get("Algorithm") for t in transforms]
    if uris not in ALLOWED_TRANSFORMS:
        raise SignatureInvalid(
            f"transforms {', '.join(map(str, uris)) or '(none)'} are not allowed; "
            "only the enveloped-signature transform, optionally followed by C14N 1.0"
        )
    digest_uri = _algorithm_uri(parts["DigestMethod"])
    digest, legacy = DIGESTS.get(digest_uri, (None, False))
    if digest is None:
        raise SignatureInvalid(f"digest method {digest_uri} is not supported")
    if legacy and not allow_sha1:
        raise SignatureInvalid(
            f"digest method {digest_uri} (SHA-1) is not accepted for this partner"
        )
    return digest, _base64(parts["DigestValue"], "DigestValue")


def _algorithm_uri(method: etree._Element) -> str:
    # Parameters (HMACOutputLength, InclusiveNamespaces, ...) have no place in the profile.
    if len(method):
        raise SignatureInvalid(f"ds:{etree.QName(method).localname} must not have children")
    return method.get("Algorithm") or "(none)"


def _key_info(key_info: etree._Element | None) -> tuple[str | None, tuple[str, ...]]:
    if key_info is None:
        return None, ()
    name = key_info.findtext(KEY_NAME)
    fingerprints = tuple(
        _fingerprint(certificate)
        for data in key_info.iterchildren(X509_DATA)
        for certificate in data.iterchildren(X509_CERTIFICATE)
    )
    return (name.strip().lower() if name else None), fingerprints


def _fingerprint(certificate: etree._Element) -> str:
    """The fingerprint of an embedded certificate, by its text: a partner embeds the same one
    in every message, and decoding and hashing it each time cost a tenth of a verification."""
    text = certificate.text or ""
    found = _FINGERPRINTS.get(text)
    if found is None:
        found = fingerprint_der(_base64(certificate, "X509Certificate"))
        if len(text) <= _MAX_REMEMBERED_TEXT:  # a certificate is ~2 KB; a hostile one is not kept
            if len(_FINGERPRINTS) >= _MAX_FINGERPRINTS:  # nor do many fill memory
                _FINGERPRINTS.clear()
            _FINGERPRINTS[text] = found
    return found


_FINGERPRINTS: dict[str, str] = {}
_MAX_FINGERPRINTS = 256
_MAX_REMEMBERED_TEXT = 16 * 1024


def _base64(element: etree._Element, what: str) -> bytes:
    try:
        return base64.b64decode("".join((element.text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalid(f"ds:{what} is not valid base64") from None


def _check_digest(root: etree._Element, signature: etree._Element, signed: _Signed) -> None:
    with _detached(signature):
        canonical = c14n(root.getroottree())
    if not hmac.compare_digest(signed.digest(canonical).digest(), signed.digest_value):
        raise SignatureInvalid(
            "digest mismatch: the document is not what was signed", digest_mismatch=True
        )


@contextmanager
def _detached(signature: etree._Element) -> Iterator[None]:
    """Apply the enveloped-signature transform in place for the duration, then undo it.

    The transform drops the element but not the text that follows it, while lxml's remove()
    takes the tail along, so the tail is parked on the preceding node meanwhile.
    """
    parent = signature.getparent()
    previous = signature.getprevious()
    tail = signature.tail
    before = previous.tail if previous is not None else parent.text
    parent.remove(signature)
    _set_text_before(parent, previous, (before or "") + tail if tail else before)
    try:
        yield
    finally:
        _set_text_before(parent, previous, before)
        parent.append(signature)
        signature.tail = tail


def _set_text_before(parent: etree._Element, previous, text: str | None) -> None:
    if previous is not None:
        previous.tail = text
    else:
        parent.text = text


def _check_signature(signed: _Signed, trusted: Sequence[TrustedCert], at: datetime) -> TrustedCert:
    if not trusted:
        raise SignatureInvalid("the sending partner has no registered certificate")
    usable = [c for c in _by_likelihood(trusted, signed) if _fits(c.public_key, signed.algorithm)]
    if not usable:
        raise SignatureInvalid(f"no registered certificate has a key for {signed.algorithm.name}")
    signed_info = c14n(signed.signed_info)
    current = [c for c in usable if c.valid_at(at)]
    for cert in current:
        if _signature_ok(cert.public_key, signed, signed_info):
            return cert
    for cert in (c for c in usable if not c.valid_at(at)):
        if _signature_ok(cert.public_key, signed, signed_info):
            raise SignatureInvalid(_out_of_validity(cert, at))
    raise SignatureInvalid("signature invalid: not made by a registered certificate of the partner")


def _by_likelihood(trusted: Sequence[TrustedCert], signed: _Signed) -> list[TrustedCert]:
    """KeyName matches first, then embedded-certificate matches, then the rest.

    The embedded certificate only helps pick; it is never trusted itself.
    """

    def rank(cert: TrustedCert) -> int:
        if cert.key_name == signed.key_name:
            return 0
        return 1 if cert.fingerprint in signed.embedded_fingerprints else 2

    return sorted(trusted, key=rank)


def _fits(public_key: PublicKey, algorithm: Algorithm) -> bool:
    if algorithm.key == "rsa":
        return isinstance(public_key, rsa.RSAPublicKey)
    return isinstance(public_key, ec.EllipticCurvePublicKey)


def _signature_ok(public_key: PublicKey, signed: _Signed, data: bytes) -> bool:
    value, hash_ = signed.signature_value, signed.algorithm.hash
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(value, data, padding.PKCS1v15(), hash_)
        else:
            public_key.verify(_raw_to_der(value, public_key), data, ec.ECDSA(hash_))
    except InvalidSignature:
        return False
    return True


def _raw_to_der(value: bytes, public_key: ec.EllipticCurvePublicKey) -> bytes:
    # XML-DSig carries ECDSA signatures as r||s of fixed width; cryptography wants DER.
    width = (public_key.curve.key_size + 7) // 8
    if len(value) != 2 * width:
        raise InvalidSignature
    r, s = int.from_bytes(value[:width], "big"), int.from_bytes(value[width:], "big")
    return encode_dss_signature(r, s)


def _out_of_validity(cert: TrustedCert, at: datetime) -> str:
    who = f"certificate {cert.key_name}" + (f" of {cert.label}" if cert.label else "")
    if as_utc(at) < cert.not_before:
        return f"{who} is not yet valid (valid from {cert.not_before.isoformat()})"
    return f"{who} expired on {cert.not_after.isoformat()}"
