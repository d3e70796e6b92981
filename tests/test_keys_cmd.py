"""`cebhub keys new|export` and `cebhub sign`, run through the command line's main()."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree
from signxml import XMLVerifier

import hub.cli
from hub.signing import (
    TrustedCert,
    certificate_pem,
    load_certificate,
    load_private_key,
    new_self_signed,
    private_key_pem,
    remove_signature,
    verify_enveloped,
    write_pem,
)
from hub.signing.sign import parse_document
from hub.signing.verify import SIGNATURE
from tests.helpers import SAMPLES

SAMPLE = SAMPLES / "CEB621Message.xml"


@pytest.fixture
def cebhub(monkeypatch, capsysbinary):
    """Run `cebhub ARGS…`; return (exit code, stdout bytes, stderr text)."""
    # Only this module's commands: the other command groups are tested in their own modules.
    monkeypatch.setattr(hub.cli, "COMMAND_MODULES", ("hub.cli.keys_cmd",))

    def run(*argv: str) -> tuple[int, bytes, str]:
        code = hub.cli.main(list(argv))
        out, err = capsysbinary.readouterr()
        return code, out, err.decode()

    return run


@pytest.fixture(scope="module")
def partner(tmp_path_factory) -> dict[str, Path]:
    """A partner's RSA and EC keys and certificates, as PEM files."""
    folder = tmp_path_factory.mktemp("partner")
    files = {}
    for kind in ("rsa", "ec"):
        key, cert = new_self_signed(f"partner {kind}", key_type=kind)
        files[f"{kind}.key"] = folder / f"{kind}.key.pem"
        files[f"{kind}.cert"] = folder / f"{kind}.cert.pem"
        write_pem(files[f"{kind}.key"], private_key_pem(key), private=True)
        write_pem(files[f"{kind}.cert"], certificate_pem(cert))
    return files


def test_keys_cmd_is_registered():
    assert "hub.cli.keys_cmd" in hub.cli.COMMAND_MODULES


def test_keys_new_writes_a_private_key_and_its_certificate(cebhub, tmp_path):
    code, out, _ = cebhub("-w", str(tmp_path), "keys", "new")
    assert code == 0
    key_file, cert_file = tmp_path / "keys" / "hub.key.pem", tmp_path / "keys" / "hub.cert.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key, cert = load_private_key(key_file), load_certificate(cert_file)
    assert key.key_size == 2048
    assert cert.public_key() == key.public_key()
    assert TrustedCert.from_certificate(cert).key_name.encode() in out


def test_keys_new_refuses_to_overwrite_without_force(cebhub, tmp_path):
    assert cebhub("-w", str(tmp_path), "keys", "new")[0] == 0
    cert_file = tmp_path / "keys" / "hub.cert.pem"
    first = cert_file.read_bytes()
    code, _, err = cebhub("-w", str(tmp_path), "keys", "new")
    assert code == 1
    assert "--force" in err
    assert cert_file.read_bytes() == first
    assert cebhub("-w", str(tmp_path), "keys", "new", "--force")[0] == 0
    assert cert_file.read_bytes() != first


def test_keys_new_ec(cebhub, tmp_path):
    assert cebhub("-w", str(tmp_path), "keys", "new", "--type", "ec")[0] == 0
    key = load_private_key(tmp_path / "keys" / "hub.key.pem")
    assert isinstance(key, ec.EllipticCurvePrivateKey)


def test_keys_export_prints_the_hub_certificate(cebhub, tmp_path):
    cebhub("-w", str(tmp_path), "keys", "new")
    code, out, _ = cebhub("-w", str(tmp_path), "keys", "export")
    assert code == 0
    assert out == (tmp_path / "keys" / "hub.cert.pem").read_bytes()
    assert x509.load_pem_x509_certificate(out)


def test_keys_export_without_a_key_is_a_configuration_error(cebhub, tmp_path):
    code, out, err = cebhub("-w", str(tmp_path), "keys", "export")
    assert code == 2
    assert out == b""
    assert "keys new" in err


def test_sign_replaces_the_placeholder_signature(cebhub, partner, tmp_path):
    out_file = tmp_path / "signed.xml"
    code, _, _ = cebhub(
        "sign", str(SAMPLE), "--key", str(partner["rsa.key"]), "--cert", str(partner["rsa.cert"]),
        "-o", str(out_file),
    )  # fmt: skip
    assert code == 0
    root = parse_document(out_file.read_bytes())
    assert len(list(root.iter(SIGNATURE))) == 1
    trusted = TrustedCert.from_pem(partner["rsa.cert"].read_bytes(), "partner")
    assert verify_enveloped(root, [trusted], at=datetime.now(UTC)) == trusted
    pem = partner["rsa.cert"].read_text()
    XMLVerifier().verify(out_file.read_bytes(), x509_cert=pem)


def test_sign_ecdsa_to_stdout(cebhub, partner):
    code, out, _ = cebhub(
        "sign", str(SAMPLE), "--key", str(partner["ec.key"]), "--cert", str(partner["ec.cert"]),
        "--algorithm", "ecdsa-sha256",
    )  # fmt: skip
    assert code == 0
    assert out.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    XMLVerifier().verify(out, x509_cert=partner["ec.cert"].read_text())


def test_sign_with_a_certificate_of_another_key_fails(cebhub, partner):
    code, out, err = cebhub(
        "sign", str(SAMPLE), "--key", str(partner["rsa.key"]), "--cert", str(partner["ec.cert"]),
    )  # fmt: skip
    assert code == 1
    assert out == b""
    assert "not for this key" in err


def test_sign_refuses_a_document_with_a_doctype(cebhub, partner, tmp_path):
    evil = tmp_path / "evil.xml"
    evil.write_bytes(b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>')
    code, _, err = cebhub(
        "sign", str(evil), "--key", str(partner["rsa.key"]), "--cert", str(partner["rsa.cert"]),
    )  # fmt: skip
    assert code == 1
    assert "DOCTYPE" in err


def test_sign_reports_a_file_that_is_not_xml(cebhub, partner, tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"not xml")
    code, _, err = cebhub(
        "sign", str(bad), "--key", str(partner["rsa.key"]), "--cert", str(partner["rsa.cert"]),
    )  # fmt: skip
    assert code == 1
    assert err


def test_signed_output_is_byte_stable_outside_the_signature(cebhub, partner, tmp_path):
    out_file = tmp_path / "signed.xml"
    cebhub(
        "sign", str(SAMPLE), "--key", str(partner["rsa.key"]), "--cert", str(partner["rsa.cert"]),
        "-o", str(out_file),
    )  # fmt: skip
    original = parse_document(SAMPLE.read_bytes())
    signed = parse_document(out_file.read_bytes())
    for root in (original, signed):
        remove_signature(root)
    assert etree.tostring(signed) == etree.tostring(original)
