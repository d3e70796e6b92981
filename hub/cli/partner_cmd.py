"""`cebhub partner …` and `cebhub certs …`: register partners and their certificates."""

from __future__ import annotations

import argparse
from datetime import timedelta

import tomlkit

from hub import config
from hub.cli.common import fail, print_json, workspace
from hub.clock import utcnow
from hub.config import Role, SignaturePolicy
from hub.signing import certificate_pem, load_trusted
from hub.workspace import Workspace


def _codes(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def store_certificate(ws: Workspace, partner_id: str, source: str) -> list[str]:
    """Copy a partner's PEM into keys/partners/<id>/ and return workspace-relative paths."""
    certs = load_trusted(source, label=partner_id)  # refuses what is not a certificate
    folder = ws.partner_certs / partner_id
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for cert in certs:
        dst = folder / f"{cert.key_name}.pem"
        dst.write_bytes(certificate_pem(cert.cert))
        paths.append(str(dst.relative_to(ws.root)))
    return paths


def cmd_add(args: argparse.Namespace) -> int:
    ws = workspace(args)
    doc = config.read_document(ws)
    partners = doc.setdefault("partners", tomlkit.table(is_super_table=True))
    if args.id in partners:
        return fail(f"partner {args.id} exists; remove it first or edit {ws.config_file}")
    entry = tomlkit.table()
    entry.add("name", args.name or args.id)
    entry.add("role", args.role)
    entry.add("codes", _codes(args.codes))
    if args.dxp_id:
        entry.add("dxp_id", args.dxp_id)
    entry.add("envelope", args.envelope)
    entry.add("transport", args.transport)
    certs: list[str] = []
    for pem in args.cert or []:
        certs.extend(store_certificate(ws, args.id, pem))
    entry.add("certificates", certs)
    entry.add("signature", args.signature)
    if args.allow_sha1:
        entry.add("allow_sha1", True)
    if args.ready != "immediate":
        entry.add("ready", args.ready)
    partners[args.id] = entry
    config.write_document(ws, doc)
    ws.inbox_of(args.id).mkdir(parents=True, exist_ok=True)
    ws.outbox_of(args.id).mkdir(parents=True, exist_ok=True)
    print(f"partner {args.id} added ({args.role}); files go in {ws.inbox_of(args.id)}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    ws = workspace(args)
    settings = config.load(ws)
    rows = [
        {
            "id": p.id,
            "name": p.name,
            "role": p.role.value,
            "codes": p.codes,
            "dxp_id": p.dxp_id,
            "transport": p.transport,
            "envelope": p.envelope,
            "certificates": len(p.certificates),
        }
        for p in settings.partners.values()
    ]
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        print(
            f"{r['id']:<16} {r['role']:<10} {','.join(r['codes']):<24} {r['transport']:<9} "
            f"certs={r['certificates']}  {r['name']}"
        )
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    ws = workspace(args)
    doc = config.read_document(ws)
    partners = doc.get("partners", {})
    if args.id not in partners:
        return fail(f"no partner {args.id}")
    del partners[args.id]
    config.write_document(ws, doc)
    print(f"partner {args.id} removed (its folders and certificates are kept)")
    return 0


def cmd_cert_add(args: argparse.Namespace) -> int:
    ws = workspace(args)
    doc = config.read_document(ws)
    entry = doc.get("partners", {}).get(args.id)
    if entry is None:
        return fail(f"no partner {args.id}")
    current = list(entry.get("certificates", []))
    for path in store_certificate(ws, args.id, args.pem):
        if path not in current:
            current.append(path)
    entry["certificates"] = current
    config.write_document(ws, doc)
    print(f"partner {args.id} now has {len(current)} certificate(s)")
    return 0


def _certificates(ws: Workspace, partner_id: str, paths: list[str]):
    for path in paths:
        for cert in load_trusted(ws.resolve(path), label=partner_id):
            yield path, cert


def cmd_cert_list(args: argparse.Namespace) -> int:
    ws = workspace(args)
    settings = config.load(ws)
    partner = settings.partner(args.id)
    if partner is None:
        return fail(f"no partner {args.id}")
    now = utcnow()
    for path, cert in _certificates(ws, partner.id, partner.certificates):
        state = "valid" if cert.valid_at(now) else "NOT VALID NOW"
        print(
            f"{cert.key_name:<20} {cert.not_before:%Y-%m-%d} → {cert.not_after:%Y-%m-%d} "
            f"{state:<13} {cert.cert.subject.rfc4514_string()}  ({path})"
        )
    return 0


def cmd_cert_remove(args: argparse.Namespace) -> int:
    ws = workspace(args)
    doc = config.read_document(ws)
    entry = doc.get("partners", {}).get(args.id)
    if entry is None:
        return fail(f"no partner {args.id}")
    kept, removed = [], []
    for path in entry.get("certificates", []):
        names = {c.key_name for _, c in _certificates(ws, args.id, [path])}
        (removed if args.key_name in names or path == args.key_name else kept).append(path)
    if not removed:
        return fail(f"partner {args.id} has no certificate {args.key_name}")
    entry["certificates"] = kept
    config.write_document(ws, doc)
    print(f"removed {', '.join(removed)}; partner {args.id} has {len(kept)} certificate(s)")
    return 0


def cmd_expiring(args: argparse.Namespace) -> int:
    ws = workspace(args)
    settings = config.load(ws)
    now = utcnow()
    horizon = now + timedelta(days=args.days)
    rows = []
    for partner in settings.partners.values():
        certs = list(_certificates(ws, partner.id, partner.certificates))
        for path, cert in certs:
            if cert.not_after > horizon:
                continue
            # A partner only breaks if no other certificate stays valid past this one.
            successor = any(c.not_after > cert.not_after for _, c in certs if c is not cert)
            rows.append(
                {
                    "partner": partner.id,
                    "key_name": cert.key_name,
                    "not_after": cert.not_after.isoformat(),
                    "days_left": (cert.not_after - now).days,
                    "expired": cert.not_after < now,
                    "successor": successor,
                    "file": path,
                }
            )
    rows.sort(key=lambda r: r["not_after"])
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"no certificate expires within {args.days} days")
    for r in rows:
        what = "EXPIRED" if r["expired"] else f"expires in {r['days_left']} days"
        cover = (
            "a newer certificate takes over"
            if r["successor"]
            else "NO successor: messages will be rejected"
        )
        print(f"{r['partner']:<16} {r['key_name']:<20} {what} ({r['not_after'][:10]}); {cover}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("partner", help="register and inspect partners")
    ps = p.add_subparsers(dest="partner_command", metavar="ACTION")
    ps.required = True

    add = ps.add_parser("add", help="register a partner")
    add.add_argument("id", help="partner id (also its folder name under inbox/ and outbox/)")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--codes", required=True, help="customs codes it may act as, comma-separated")
    add.add_argument("--cert", action="append", metavar="PEM", help="certificate (repeatable)")
    add.add_argument("--name", help="display name")
    add.add_argument("--dxp-id", help="its DXP id (envelope SenderId/ReceiverId)")
    add.add_argument("--envelope", choices=["none", "dxp"], default="none")
    add.add_argument("--transport", choices=["directory", "sftp", "amqp"], default="directory")
    add.add_argument(
        "--signature", choices=[s.value for s in SignaturePolicy], default="required",
        help="signature policy for its messages (default: required)",
    )  # fmt: skip
    add.add_argument("--allow-sha1", action="store_true", help="accept legacy RSA-SHA1 signatures")
    add.add_argument(
        "--ready", choices=["immediate", "done-file", "stable-size"], default="immediate",
        help="when a file in its inbox may be taken",
    )  # fmt: skip
    add.set_defaults(func=cmd_add)

    lst = ps.add_parser("list", help="list partners")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)

    rm = ps.add_parser("remove", help="remove a partner")
    rm.add_argument("id")
    rm.set_defaults(func=cmd_remove)

    cert = ps.add_parser("cert", help="a partner's certificates (rollover)")
    cs = cert.add_subparsers(dest="cert_command", metavar="ACTION")
    cs.required = True
    c_add = cs.add_parser("add", help="add a certificate (old and new both verify while valid)")
    c_add.add_argument("id")
    c_add.add_argument("pem")
    c_add.set_defaults(func=cmd_cert_add)
    c_list = cs.add_parser("list", help="list certificates with their validity")
    c_list.add_argument("id")
    c_list.set_defaults(func=cmd_cert_list)
    c_rm = cs.add_parser("remove", help="remove a certificate by key name (serial) or file")
    c_rm.add_argument("id")
    c_rm.add_argument("key_name")
    c_rm.set_defaults(func=cmd_cert_remove)

    certs = sub.add_parser("certs", help="certificates across partners")
    css = certs.add_subparsers(dest="certs_command", metavar="ACTION")
    css.required = True
    exp = css.add_parser("expiring", help="certificates that expire within N days")
    exp.add_argument("--days", type=int, default=30)
    exp.add_argument("--json", action="store_true")
    exp.set_defaults(func=cmd_expiring)
