"""`cebhub partner …` and `cebhub certs …`: register partners and their certificates."""

from __future__ import annotations

import argparse
from pathlib import Path

import tomlkit

from hub import config
from hub.cli.common import fail, print_json, workspace
from hub.clock import utcnow
from hub.config import Role, SignaturePolicy
from hub.signing import certificate_pem, load_trusted
from hub.trust import expiring_certificates
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
    amqp_options = (args.amqp_url, args.queue, args.exchange, args.routing_key)
    if args.transport == "amqp" and not args.amqp_url:
        return fail("--transport amqp needs --amqp-url (e.g. amqp://user:pass@host:5672/%2F)")
    if args.transport != "amqp" and any(o is not None for o in amqp_options):
        return fail("--amqp-url, --queue, --exchange and --routing-key need --transport amqp")
    sftp = _sftp_table(args)
    if isinstance(sftp, int):
        return sftp
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
    if args.transport == "amqp":
        amqp = tomlkit.table()
        amqp.add("url", args.amqp_url)
        if args.queue:
            amqp.add("queue", args.queue)
        amqp.add("exchange", args.exchange or "")
        if args.routing_key is not None:
            amqp.add("routing_key", args.routing_key)
        entry.add("amqp", amqp)
    if sftp is not None:
        entry.add("sftp", sftp)
    partners[args.id] = entry
    config.write_document(ws, doc)
    ws.inbox_of(args.id).mkdir(parents=True, exist_ok=True)
    ws.outbox_of(args.id).mkdir(parents=True, exist_ok=True)
    print(f"partner {args.id} added ({args.role}); files go in {ws.inbox_of(args.id)}")
    return 0


SFTP_OPTIONS = (
    "sftp_host", "sftp_port", "sftp_user", "sftp_key", "known_hosts", "remote_dir",
    "remote_inbox", "processed_dir", "poll_seconds", "after_pickup",
)  # fmt: skip


def _sftp_table(args: argparse.Namespace) -> tomlkit.items.Table | int | None:
    """The [partners.ID.sftp] table from the --sftp-* options; an exit code when they are wrong."""
    given = [o for o in SFTP_OPTIONS if getattr(args, o) is not None]
    if args.transport != "sftp":
        if given:
            return fail(
                "--sftp-*, --known-hosts, --remote-* and --poll-seconds need --transport sftp"
            )
        return None
    missing = [o for o in ("sftp_host", "sftp_user", "sftp_key", "known_hosts") if o not in given]
    if missing:
        flags = ", ".join("--" + o.replace("_", "-") for o in missing)
        return fail(f"--transport sftp needs {flags}")
    key, known = Path(args.sftp_key).resolve(), Path(args.known_hosts).resolve()
    if not key.is_file():
        return fail(f"--sftp-key {key}: no such file")
    if not known.is_file():
        # Never fetched for the operator: a key taken unchecked from the network pins nothing.
        return fail(
            f"--known-hosts {known}: no such file; get the server's host key from the partner "
            f"(or ssh-keyscan it and compare the fingerprint with theirs)"
        )
    table = tomlkit.table()
    table.add("host", args.sftp_host)
    table.add("port", args.sftp_port or 22)
    table.add("username", args.sftp_user)
    table.add("key_file", str(key))
    table.add("known_hosts", str(known))
    table.add("remote_dir", args.remote_dir or "outbox")
    if args.processed_dir:
        table.add("processed_dir", args.processed_dir)
    table.add("after_pickup", args.after_pickup or "move")
    table.add("remote_inbox", args.remote_inbox or "inbox")
    table.add("poll_seconds", args.poll_seconds or 30.0)
    return table


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
    rows = expiring_certificates(ws, config.load(ws), args.days)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"no certificate expires within {args.days} days")
    for r in rows:
        what = "EXPIRED" if r["expired"] else f"expires in {r['days_left']} days"
        cover = (
            f"certificate {r['successor_key_name']} takes over"
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
    add.add_argument("--amqp-url", help="amqp: broker URL, amqp://user:pass@host:5672/vhost")
    add.add_argument("--queue", help="amqp: queue the hub consumes (the partner's messages)")
    add.add_argument("--exchange", help="amqp: exchange the hub publishes to (default: '')")
    add.add_argument("--routing-key", help="amqp: routing key of what the hub publishes")
    add.add_argument("--sftp-host", help="sftp: the partner's server")
    add.add_argument("--sftp-port", type=int, help="sftp: port (default 22)")
    add.add_argument("--sftp-user", help="sftp: user the hub logs in as")
    add.add_argument("--sftp-key", metavar="FILE", help="sftp: the hub's private key file")
    add.add_argument(
        "--known-hosts", metavar="FILE",
        help="sftp: known_hosts with the server's host key (pinned, never added to)",
    )  # fmt: skip
    add.add_argument("--remote-dir", help="sftp: folder the hub pulls from (default outbox)")
    add.add_argument("--remote-inbox", help="sftp: folder the hub pushes to (default inbox)")
    add.add_argument("--processed-dir", help="sftp: where pulled files go (default processed)")
    add.add_argument("--poll-seconds", type=float, help="sftp: poll interval (default 30)")
    add.add_argument(
        "--after-pickup", choices=["move", "delete"],
        help="sftp: move pulled files to the processed folder (default) or delete them",
    )  # fmt: skip
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
