"""The `cebhub keys new|export` and `cebhub sign` commands."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from lxml import etree

from hub.signing.certs import (
    DEFAULT_DAYS,
    KEY_TYPES,
    certificate_pem,
    fingerprint,
    key_name,
    load_certificate,
    load_private_key,
)
from hub.signing.hubkeys import hub_cert_path, load_hub_key, new_hub_key
from hub.signing.sign import DEFAULT_ALGORITHM, sign_bytes
from hub.signing.verify import ALGORITHM_BY_NAME
from hub.workspace import Workspace


def register(subparsers: argparse._SubParsersAction) -> None:
    keys = subparsers.add_parser("keys", help="the hub's own signing key and certificate")
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    actions.required = True

    new = actions.add_parser("new", help="make a new hub key and self-signed certificate")
    new.add_argument("--force", action="store_true", help="replace an existing hub key")
    new.add_argument("--type", dest="key_type", choices=KEY_TYPES, default="rsa")
    new.add_argument("--days", type=int, default=DEFAULT_DAYS, help="certificate validity")
    new.set_defaults(func=cmd_keys_new)

    export = actions.add_parser("export", help="print the hub certificate (PEM) for partners")
    export.set_defaults(func=cmd_keys_export)

    sign = subparsers.add_parser("sign", help="sign a CEB message as a partner's system would")
    sign.add_argument("file", type=Path, metavar="FILE")
    sign.add_argument("--key", required=True, type=Path, help="private key (PEM)")
    sign.add_argument("--cert", required=True, type=Path, help="certificate of the key (PEM)")
    sign.add_argument("-o", "--output", type=Path, metavar="OUT", help="default: stdout")
    sign.add_argument("--algorithm", choices=list(ALGORITHM_BY_NAME), default=DEFAULT_ALGORITHM)
    sign.set_defaults(func=cmd_sign)


def cmd_keys_new(args: argparse.Namespace) -> int:
    ws = Workspace.locate(args.workspace)
    try:
        _, cert = new_hub_key(ws, key_type=args.key_type, days=args.days, force=args.force)
    except FileExistsError as exc:
        print(f"cebhub: {exc}: the hub key exists; use --force to replace it", file=sys.stderr)
        return 1
    print(f"hub certificate {hub_cert_path(ws)}")
    print(f"KeyName {key_name(cert)}  SHA-256 {fingerprint(cert)}")
    print(f"valid {cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}")
    return 0


def cmd_keys_export(args: argparse.Namespace) -> int:
    _, cert = load_hub_key(Workspace.locate(args.workspace))
    sys.stdout.write(certificate_pem(cert).decode("ascii"))
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    try:
        key, cert = load_private_key(args.key), load_certificate(args.cert)
        signed = sign_bytes(
            args.file.read_bytes(), key, cert, algorithm=args.algorithm, replace=True
        )
    except (OSError, ValueError, etree.XMLSyntaxError) as exc:
        print(f"cebhub sign: {exc}", file=sys.stderr)
        return 1
    if args.output:
        _write_atomically(args.output, signed)
    else:
        sys.stdout.buffer.write(signed)
        sys.stdout.buffer.flush()
    return 0


def _write_atomically(path: Path, data: bytes) -> None:
    # A half-written signed file in a watched folder would be picked up and rejected.
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as fh:
        fh.write(data)
    os.chmod(fh.name, 0o644)
    Path(fh.name).replace(path)
