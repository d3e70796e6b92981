"""Certificates and keys: PEM files, the CEB KeyName, fingerprints, validity, self-signed certs."""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from hub.clock import as_utc

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

KEY_TYPES = ("rsa", "ec")
RSA_KEY_BITS = 2048  # the spec's generic algorithm pairs SHA-256 with RSA-2048
DEFAULT_DAYS = 3 * 365  # a self-signed certificate is pinned by partners; rollover is manual
KEY_NAME_MIN_DIGITS = 8  # spec §5.2: serial 0x1691f7f is sent as "01691f7f"
SERIAL_BITS = 63  # a 16-hex-digit KeyName, like the e-port's newer card certificates
BACKDATE = timedelta(minutes=5)  # tolerate partners' clocks running a little behind ours


def key_name(cert: x509.Certificate) -> str:
    """The CEB `ds:KeyName`: the serial in lower-case hex, even length, at least 8 digits."""
    digits = format(cert.serial_number, "x")
    width = max(KEY_NAME_MIN_DIGITS, len(digits) + len(digits) % 2)
    return digits.zfill(width)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, lower-case hex."""
    return fingerprint_der(cert.public_bytes(serialization.Encoding.DER))


def fingerprint_der(der: bytes) -> str:
    """SHA-256 of DER certificate bytes, lower-case hex (no parsing needed)."""
    return hashlib.sha256(der).hexdigest()


def is_valid_at(cert: x509.Certificate, at: datetime) -> bool:
    """True if `at` lies within the certificate's validity period."""
    at = as_utc(at)
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


def key_algorithm(key: PrivateKey | PublicKey) -> str:
    """'rsa' or 'ec'; anything else (DSA, Ed25519, SM2 curves we cannot use) is refused."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "rsa"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ec"
    raise ValueError(f"unsupported key type {type(key).__name__}; expected RSA or EC")


@dataclass(frozen=True)
class TrustedCert:
    """A registered certificate, parsed once, with what verification looks it up by."""

    cert: x509.Certificate = field(repr=False)
    public_key: PublicKey = field(repr=False, compare=False)  # follows from `cert`
    key_name: str
    fingerprint: str
    not_before: datetime
    not_after: datetime
    label: str = ""  # the partner id (or "hub") it is registered for

    @classmethod
    def from_certificate(cls, cert: x509.Certificate, label: str = "") -> TrustedCert:
        public_key = cert.public_key()
        key_algorithm(public_key)
        return cls(
            cert=cert,
            public_key=public_key,
            key_name=key_name(cert),
            fingerprint=fingerprint(cert),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            label=label,
        )

    @classmethod
    def from_pem(cls, pem: bytes | str, label: str = "") -> TrustedCert:
        """Parsed at most once per (PEM, label): partner certificates are looked up per message."""
        data = pem.encode("ascii") if isinstance(pem, str) else bytes(pem)
        return _trusted_from_pem(data, label)

    def valid_at(self, at: datetime) -> bool:
        at = as_utc(at)
        return self.not_before <= at <= self.not_after


@functools.lru_cache(maxsize=1024)
def _trusted_from_pem(pem: bytes, label: str) -> TrustedCert:
    return TrustedCert.from_certificate(x509.load_pem_x509_certificate(pem), label)


def load_certificates(data: bytes | str | Path) -> list[x509.Certificate]:
    """All certificates of a PEM bundle (a file path or the PEM itself); a partner may have several."""
    raw = _read(data)
    if b"-----BEGIN" not in raw:
        return [x509.load_der_x509_certificate(raw)]
    return x509.load_pem_x509_certificates(raw)


def load_certificate(data: bytes | str | Path) -> x509.Certificate:
    """The single certificate of a PEM (or DER) file or string."""
    certs = load_certificates(data)
    if len(certs) != 1:
        raise ValueError(f"expected one certificate, found {len(certs)}")
    return certs[0]


def load_trusted(data: bytes | str | Path, label: str = "") -> list[TrustedCert]:
    """The certificates of a PEM bundle as TrustedCerts for `verify_enveloped`."""
    return [TrustedCert.from_certificate(c, label) for c in load_certificates(data)]


def load_private_key(data: bytes | str | Path, password: bytes | None = None) -> PrivateKey:
    """An RSA or EC private key from a PEM file or string.

    Loading checks the key (for RSA, that its primes are prime: ~50 ms); the same bytes
    loaded again in this process are the key already checked. The hub's commands and every
    start load the workspace key anew.
    """
    pem = _read(data)
    known = hashlib.sha256(pem + b"\0" + (password or b"")).digest()  # no password kept
    key = _CHECKED_KEYS.get(known)
    if key is None:
        key = serialization.load_pem_private_key(pem, password=password)
        key_algorithm(key)
        if len(_CHECKED_KEYS) >= _MAX_CHECKED_KEYS:  # the oldest goes
            _CHECKED_KEYS.pop(next(iter(_CHECKED_KEYS)), None)
        _CHECKED_KEYS[known] = key
    return key  # type: ignore[return-value]


_CHECKED_KEYS: dict[bytes, object] = {}
_MAX_CHECKED_KEYS = 64


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def private_key_pem(key: PrivateKey) -> bytes:
    # Unencrypted: the key file is protected by its 0600 mode, and the hub must start unattended.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_pem(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write atomically (temp file + rename); private keys get mode 0600 from the start."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_private_key(key_type: str = "rsa") -> PrivateKey:
    """RSA-2048 or EC P-256."""
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"key type must be one of {', '.join(KEY_TYPES)}, not {key_type!r}")


def new_self_signed(
    common_name: str,
    *,
    key_type: str = "rsa",
    days: int = DEFAULT_DAYS,
    not_before: datetime | None = None,
    serial: int | None = None,
    key: PrivateKey | None = None,
) -> tuple[PrivateKey, x509.Certificate]:
    """A new key (or `key`) and a self-signed certificate valid for `days` from `not_before`."""
    key = key or new_private_key(key_type)
    start = as_utc(not_before) if not_before else datetime.now(UTC) - BACKDATE
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial or _random_serial())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_signing_key_usage(), critical=True)
    )
    return key, builder.sign(key, hashes.SHA256())


def public_keys_match(key: PrivateKey, cert: x509.Certificate) -> bool:
    """True if `cert` certifies the public half of `key`."""
    encoding, fmt = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(encoding, fmt) == cert.public_key().public_bytes(
        encoding, fmt
    )


def _random_serial() -> int:
    return secrets.randbits(SERIAL_BITS) | 1 << (SERIAL_BITS - 4)  # never 0, always 16 digits


def _signing_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _read(data: bytes | str | Path) -> bytes:
    if isinstance(data, Path):
        return data.read_bytes()
    if isinstance(data, str):
        return data.encode("ascii") if "-----BEGIN" in data else Path(data).read_bytes()
    return bytes(data)
