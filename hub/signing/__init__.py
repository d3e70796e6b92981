"""XML-DSig for CEB messages: verify partners' enveloped signatures, sign what the hub sends."""

from hub.signing.certs import (
    PrivateKey,
    PublicKey,
    TrustedCert,
    certificate_pem,
    fingerprint,
    is_valid_at,
    key_name,
    load_certificate,
    load_certificates,
    load_private_key,
    load_trusted,
    new_self_signed,
    private_key_pem,
    write_pem,
)
from hub.signing.hubkeys import ensure_hub_key, load_hub_key, new_hub_key
from hub.signing.sign import remove_signature, sign_bytes, sign_enveloped
from hub.signing.verify import (
    SignatureInvalid,
    SignatureMissing,
    SignatureProblem,
    has_signature,
    verify_enveloped,
)

__all__ = [
    "PrivateKey",
    "PublicKey",
    "SignatureInvalid",
    "SignatureMissing",
    "SignatureProblem",
    "TrustedCert",
    "certificate_pem",
    "ensure_hub_key",
    "fingerprint",
    "has_signature",
    "is_valid_at",
    "key_name",
    "load_certificate",
    "load_certificates",
    "load_hub_key",
    "load_private_key",
    "load_trusted",
    "new_hub_key",
    "new_self_signed",
    "private_key_pem",
    "remove_signature",
    "sign_bytes",
    "sign_enveloped",
    "verify_enveloped",
    "write_pem",
]
