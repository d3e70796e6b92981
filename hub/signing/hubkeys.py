"""The hub's own signing key and self-signed certificate in the workspace's keys/ folder."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from hub.errors import ConfigError
from hub.signing.certs import (
    DEFAULT_DAYS,
    PrivateKey,
    certificate_pem,
    load_certificate,
    load_private_key,
    new_self_signed,
    private_key_pem,
    public_keys_match,
    write_pem,
)
from hub.workspace import Workspace

HUB_KEY_FILE = "hub.key.pem"
HUB_CERT_FILE = "hub.cert.pem"
HUB_COMMON_NAME = "cebhub single window"


def hub_key_path(ws: Workspace) -> Path:
    return ws.keys / HUB_KEY_FILE


def hub_cert_path(ws: Workspace) -> Path:
    return ws.keys / HUB_CERT_FILE


def has_hub_key(ws: Workspace) -> bool:
    return hub_key_path(ws).is_file() and hub_cert_path(ws).is_file()


def load_hub_key(ws: Workspace) -> tuple[PrivateKey, x509.Certificate]:
    """The hub's key and certificate; a ConfigError if they are missing or do not belong together."""
    key_path, cert_path = hub_key_path(ws), hub_cert_path(ws)
    for path in (key_path, cert_path):
        if not path.is_file():
            raise ConfigError(f"{path}: missing; run `cebhub keys new` to create the hub key")
    try:
        key, cert = load_private_key(key_path), load_certificate(cert_path)
    except ValueError as exc:
        raise ConfigError(f"{ws.keys}: cannot read the hub key or certificate: {exc}") from exc
    if not public_keys_match(key, cert):
        raise ConfigError(f"{cert_path}: not the certificate of {key_path}")
    return key, cert


def new_hub_key(
    ws: Workspace, *, key_type: str = "rsa", days: int = DEFAULT_DAYS, force: bool = False
) -> tuple[PrivateKey, x509.Certificate]:
    """Make a new hub key and certificate; FileExistsError if one exists and not `force`."""
    if not force:
        for path in (hub_key_path(ws), hub_cert_path(ws)):
            if path.exists():
                raise FileExistsError(path)
    key, cert = new_self_signed(HUB_COMMON_NAME, key_type=key_type, days=days)
    # Key first: ensure_hub_key can finish a key left without a certificate.
    write_pem(hub_key_path(ws), private_key_pem(key), private=True)
    write_pem(hub_cert_path(ws), certificate_pem(cert))
    return key, cert


def ensure_hub_key(ws: Workspace) -> tuple[PrivateKey, x509.Certificate]:
    """The hub's key and certificate, made (RSA-2048) if the workspace has none yet."""
    key_path, cert_path = hub_key_path(ws), hub_cert_path(ws)
    if not key_path.exists():
        # A certificate left without its key can sign nothing: start over.
        return new_hub_key(ws, force=True)
    if not cert_path.exists():
        key, cert = new_self_signed(HUB_COMMON_NAME, key=load_private_key(key_path))
        write_pem(cert_path, certificate_pem(cert))
        return key, cert
    return load_hub_key(ws)
