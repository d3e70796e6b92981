"""Partner trust: each partner's registered certificates, and the pipeline's verify stage."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from lxml import etree

from hub import config
from hub.clock import utcnow
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

log = logging.getLogger(__name__)

FileStamp = tuple[int, int]  # (mtime in ns, size): a rewrite within one mtime tick still shows


def _stamp(path: os.PathLike | str) -> FileStamp:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size


class PartnerCertificates:
    """Each partner's registered certificates, re-read only when hub.toml or a PEM file changes.

    The certificate list is taken from hub.toml as it is now, not as it was when the hub
    started: `cebhub partner cert add|remove` takes effect on a running hub (rollover without
    downtime). Everything else in the settings still needs a restart.
    """

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._files: dict[str, tuple[FileStamp, list[TrustedCert]]] = {}
        self._config_stamp: FileStamp | None = None
        self._paths: dict[str, list[str]] = {}
        self._seen: dict[str, FileStamp] = {}  # stamps looked at in this batch
        self._resolved: dict[str, Path] = {}  # certificate paths as hub.toml gives them

    def new_batch(self) -> None:
        """Look at the files again: a change made before this batch applies to all of it."""
        self._seen.clear()

    def _stamp(self, path: os.PathLike | str) -> FileStamp:
        # One stat per file per batch, not per message (each was ~10-30 µs here).
        key = os.fspath(path)
        stamp = self._seen.get(key)
        if stamp is None:
            stamp = self._seen[key] = _stamp(key)
        return stamp

    def _load(self, path: str, partner_id: str) -> list[TrustedCert]:
        full = self._resolved.get(path)
        if full is None:
            full = self._resolved[path] = self.ws.resolve(path)
        try:
            stamp = self._stamp(full)
        except FileNotFoundError:
            raise ConfigError(f"partner {partner_id}: certificate file {full} not found") from None
        key = f"{partner_id}:{full}"
        cached = self._files.get(key)
        if cached is None or cached[0] != stamp:
            cached = (stamp, load_trusted(full, label=partner_id))
            self._files[key] = cached
        return cached[1]

    def paths(self, partner: Partner) -> list[str]:
        """The partner's certificate files as hub.toml lists them now."""
        try:
            stamp = self._stamp(self.ws.config_file)
        except FileNotFoundError:  # settings made in code, not from a workspace file
            return list(partner.certificates)
        if stamp != self._config_stamp:
            try:
                current = config.load(self.ws)
            except ConfigError as exc:
                # A half-edited hub.toml must not stop verification: keep what was last good.
                log.warning("certificates not reloaded, %s", exc)
            else:
                self._paths = {p.id: list(p.certificates) for p in current.partners.values()}
            self._config_stamp = stamp
        return self._paths.get(partner.id, list(partner.certificates))

    def of(self, partner: Partner) -> list[TrustedCert]:
        certs: list[TrustedCert] = []
        for path in self.paths(partner):
            certs.extend(self._load(path, partner.id))
        return certs


class Verifier:
    """The verify stage: the message must be signed by one of the sender's own certificates."""

    def __init__(self, ws: Workspace, settings: Settings) -> None:
        self.settings = settings
        self.certificates = PartnerCertificates(ws)

    def new_batch(self) -> None:
        """Certificates added or removed since the last batch count from this one on."""
        self.certificates.new_batch()

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
        else:
            item.signed_by = self._verify(item, item.root, "")
        drop_comments(item.root)

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


def drop_comments(root: etree._Element) -> int:
    """Remove the comments inside the message, joining the text around them; return how many.

    C14N 1.0 leaves comments out of the digest, so a comment slipped into a signed field
    (`<orderNo>EO2<!---->025…</orderNo>`) keeps the signature valid while `.text` reads only
    "EO2". Without comments the tree reads as exactly the canonical form that was verified.
    """
    found = list(root.iter(etree.Comment))  # the root's own siblings are not processed
    for comment in found:
        parent, previous, tail = comment.getparent(), comment.getprevious(), comment.tail
        parent.remove(comment)  # lxml takes the tail along: put it back where it was
        if not tail:
            continue
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    return len(found)


def hub_envelope_signer(ws: Workspace) -> Callable[[etree._Element], etree._Element]:
    """Signs the envelopes the hub sends with its own key (made on first use)."""
    key, cert = ensure_hub_key(ws)

    def sign(root: etree._Element) -> etree._Element:
        return sign_enveloped(root, key, cert)

    return sign


def partner_certificates(ws: Workspace, partner: Partner) -> list[tuple[str, TrustedCert]]:
    """(file, certificate) of every certificate registered for a partner."""
    return [
        (path, cert)
        for path in partner.certificates
        for cert in load_trusted(ws.resolve(path), label=partner.id)
    ]


def expiring_certificates(ws: Workspace, settings: Settings, days: int) -> list[dict]:
    """Certificates that run out within `days`, soonest first, and whether one takes over."""
    now = utcnow()
    horizon = now + timedelta(days=days)
    rows = []
    for partner in settings.partners.values():
        certs = partner_certificates(ws, partner)
        for path, cert in certs:
            if cert.not_after > horizon:
                continue
            # A partner only breaks if no other certificate is valid when this one runs out
            # and stays valid past it (one that starts later leaves a gap).
            successor = next(
                (
                    c
                    for _, c in certs
                    if c is not cert and c.not_before <= cert.not_after < c.not_after
                ),
                None,
            )
            rows.append(
                {
                    "partner": partner.id,
                    "key_name": cert.key_name,
                    "not_after": cert.not_after.isoformat(),
                    "days_left": (cert.not_after - now).days,
                    "expired": cert.not_after < now,
                    "successor": successor is not None,
                    "successor_key_name": successor.key_name if successor else None,
                    "file": path,
                }
            )
    rows.sort(key=lambda r: r["not_after"])
    return rows
