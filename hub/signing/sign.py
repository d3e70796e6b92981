"""Enveloped XML-DSig signing under the CEB profile: what partners do, and what the hub does."""

from __future__ import annotations

import base64

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree

from hub.constants import DS_NS
from hub.signing.certs import PrivateKey, key_algorithm, key_name, public_keys_match
from hub.signing.verify import (
    ALGORITHM_BY_NAME,
    C14N_10,
    DIGESTS,
    ENVELOPED,
    SHA1,
    SHA256,
    SIGNATURE,
    Algorithm,
    c14n,
    ds,
)

DEFAULT_ALGORITHM = "rsa-sha256"


def sign_enveloped(
    root: etree._Element,
    key: PrivateKey,
    cert: x509.Certificate,
    *,
    algorithm: str = DEFAULT_ALGORITHM,
) -> etree._Element:
    """Append a ds:Signature over the whole document as the root's last child; return `root`.

    Nothing else in the document changes, so it must be serialised as it stands (no re-indenting).
    """
    chosen = _algorithm(algorithm, key, cert)
    if root.getparent() is not None:
        raise ValueError("sign_enveloped needs the document root element")
    if next(root.iter(SIGNATURE), None) is not None:
        raise ValueError("the document is already signed; remove its ds:Signature first")
    digest_uri = SHA1 if chosen.legacy else SHA256
    digest = DIGESTS[digest_uri][0](c14n(root.getroottree())).digest()
    signature = etree.SubElement(root, SIGNATURE, nsmap={"ds": DS_NS})
    signed_info = _signed_info(signature, chosen, digest_uri, digest)
    value = etree.SubElement(signature, ds("SignatureValue"))
    _key_info(signature, cert)
    # SignedInfo is canonicalised in place so it carries the namespaces in scope at the root.
    value.text = _b64(_sign(key, chosen, c14n(signed_info)))
    return root


def sign_bytes(
    xml: bytes,
    key: PrivateKey,
    cert: x509.Certificate,
    *,
    algorithm: str = DEFAULT_ALGORITHM,
    replace: bool = False,
) -> bytes:
    """Sign a serialised document; with `replace`, a ds:Signature it already has is dropped first."""
    root = parse_document(xml)
    if replace:
        remove_signature(root)
    sign_enveloped(root, key, cert, algorithm=algorithm)
    # The tree, not just the root, so processing instructions around the root stay as digested.
    return etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=True)


def remove_signature(root: etree._Element) -> int:
    """Drop the root's ds:Signature children (keeping the text after them); return how many."""
    removed = 0
    for signature in root.findall(SIGNATURE):
        previous, tail = signature.getprevious(), signature.tail
        root.remove(signature)
        if tail and previous is not None:
            previous.tail = (previous.tail or "") + tail
        elif tail:
            root.text = (root.text or "") + tail
        removed += 1
    return removed


def parse_document(xml: bytes) -> etree._Element:
    """Parse a document to sign: no DTD, no entities, no network."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(xml, parser)
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise ValueError("the document has a DOCTYPE; DTDs are not allowed")
    return root


def _algorithm(name: str, key: PrivateKey, cert: x509.Certificate) -> Algorithm:
    chosen = ALGORITHM_BY_NAME.get(name)
    if chosen is None:
        raise ValueError(f"algorithm must be one of {', '.join(ALGORITHM_BY_NAME)}, not {name!r}")
    if key_algorithm(key) != chosen.key:
        raise ValueError(f"{name} needs an {chosen.key.upper()} key, not {key_algorithm(key)}")
    if not public_keys_match(key, cert):
        raise ValueError("the certificate is not for this key")
    return chosen


def _signed_info(
    signature: etree._Element, algorithm: Algorithm, digest_uri: str, digest: bytes
) -> etree._Element:
    signed_info = etree.SubElement(signature, ds("SignedInfo"))
    etree.SubElement(signed_info, ds("CanonicalizationMethod"), Algorithm=C14N_10)
    etree.SubElement(signed_info, ds("SignatureMethod"), Algorithm=algorithm.uri)
    reference = etree.SubElement(signed_info, ds("Reference"), URI="")
    transforms = etree.SubElement(reference, ds("Transforms"))
    etree.SubElement(transforms, ds("Transform"), Algorithm=ENVELOPED)
    etree.SubElement(reference, ds("DigestMethod"), Algorithm=digest_uri)
    etree.SubElement(reference, ds("DigestValue")).text = _b64(digest)
    return signed_info


def _key_info(signature: etree._Element, cert: x509.Certificate) -> None:
    key_info = etree.SubElement(signature, ds("KeyInfo"))
    etree.SubElement(key_info, ds("KeyName")).text = key_name(cert)
    x509_data = etree.SubElement(key_info, ds("X509Data"))
    der = cert.public_bytes(serialization.Encoding.DER)
    etree.SubElement(x509_data, ds("X509Certificate")).text = _b64(der)


def _sign(key: PrivateKey, algorithm: Algorithm, data: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), algorithm.hash)
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(algorithm.hash)))
    # XML-DSig wants r||s, each left-padded to the curve's byte length.
    width = (key.curve.key_size + 7) // 8
    return r.to_bytes(width, "big") + s.to_bytes(width, "big")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
