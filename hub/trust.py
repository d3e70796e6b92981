"""Partner trust: each partner's registered certificates, and the pipeline's verify stage."""

from __future__ import annotations

import os
from collections.abc import Callable

from lxml import etree

from hub.config import Partner, Settings, SignaturePolicy
from hub.errors import ConfigError, SignatureError
from hub.messages.types import SignaturePolicy as SpecSignature
from hub.signing import (
    SignatureInvalid,
    SignatureMissing,
    TrustedCert,
    ensure_hub_key,
    has_signature,
    load_trusted,
    sign_enveloped,
    verify_enveloped,
)
from hub.workspace import Workspace


class PartnerCertificates:
    """Loads each partner's certificate files once, and again only when a file changes."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._cache: dict[str, tuple[float, list[TrustedCert]]] = {}

    def _load(self, path: str, partner_id: str) -> list[TrustedCert]:
        full = self.ws.resolve(path)
        try:
            mtime = os.stat(full).st_mtime
        except FileNotFoundError:
            raise ConfigError(f"partner {partner_id}: certificate file {full} not found") from None
        key = f"{partner_id}:{full}"
        cached = self._cache.get(key)
        if cached is None or cached[0] != mtime:
            cached = (mtime, load_trusted(full, label=partner_id))
            self._cache[key] = cached
        return cached[1]

    def of(self, partner: Partner) -> list[TrustedCert]:
        certs: list[TrustedCert] = []
        for path in partner.certificates:
            certs.extend(self._load(path, partner.id))
        return certs


class Verifier:
    """The verify stage: the message must be signed by one of the sender's own certificates."""

    def __init__(self, ws: Workspace, settings: Settings) -> None:
        self.settings = settings
        self.certificates = PartnerCertificates(ws)

    def __call__(self, item) -> None:
        msg_type, partner = item.msg_type, item.partner
        policy = partner.signature_policy(msg_type.root)
        required = (
            policy == SignaturePolicy.REQUIRED or msg_type.signature == SpecSignature.REQUIRED
        )
        if item.envelope_root is not None and has_signature(item.envelope_root):
            self._verify(item, item.envelope_root, "envelope ")
        if not has_signature(item.root):
            if required:
                raise SignatureError(
                    msg_type, f"{msg_type.root} must be signed (ds:Signature missing)"
                )
            return
        item.signed_by = self._verify(item, item.root, "")

    def _verify(self, item, root: etree._Element, what: str) -> str:
        trusted = self.certificates.of(item.partner)
        try:
            cert = verify_enveloped(
                root, trusted, at=item.received_at, allow_sha1=item.partner.allow_sha1
            )
        except SignatureMissing as exc:
            raise SignatureError(item.msg_type, f"{what}signature: {exc.reason}") from None
        except SignatureInvalid as exc:
            raise SignatureError(
                item.msg_type, f"{what}signature: {exc.reason}", digest=exc.digest_mismatch
            ) from None
        return cert.key_name


def hub_envelope_signer(ws: Workspace) -> Callable[[etree._Element], etree._Element]:
    """Signs the envelopes the hub sends with its own key (made on first use)."""
    key, cert = ensure_hub_key(ws)

    def sign(root: etree._Element) -> etree._Element:
        return sign_enveloped(root, key, cert)

    return sign
