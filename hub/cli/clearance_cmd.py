"""List, review, guarantee and identity commands: the console's clearance screens, scripted."""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation
from pathlib import Path

from hub.clearance import actions, guarantee, identity, queries
from hub.clearance.lifecycle import Desk, find
from hub.clearance.manual import decide
from hub.clearance.states import Authority, Decision
from hub.cli.common import fail, print_json, settings, workspace
from hub.clock import utcnow
from hub.errors import RecordRejected
from hub.routing import Router
from hub.runner import envelope_signer
from hub.store.db import engine_for


def _engine(args: argparse.Namespace):
    ws = workspace(args)
    return engine_for(settings(ws), ws)


def _open(args: argparse.Namespace):
    ws = workspace(args)
    s = settings(ws)
    return ws, s, engine_for(s, ws)


def _desk(ws, s, conn, actor: str) -> Desk:
    router = Router(s, sign_envelope=envelope_signer(ws), root=ws.root)
    return Desk(conn, router, utcnow(), actor=actor, root=ws.root)


def cmd_declare(args: argparse.Namespace) -> int:
    """Declare temporary or returned lists by copNo; one transaction per list."""
    ws, s, engine = _open(args)
    router = Router(s, sign_envelope=envelope_signer(ws), root=ws.root)
    results, failed = [], 0
    for cop_no in args.cop_no:
        try:
            with engine.begin() as conn:
                row = find(conn, cop_no=cop_no)
                if row is None:
                    raise RecordRejected("-621001", f"no list with copNo {cop_no}")
                desk = Desk(conn, router, utcnow(), actor=args.actor, root=ws.root)
                row = actions.declare(desk, row)
                results.append({"copNo": cop_no, "preNo": row.pre_no, "state": row.state})
        except RecordRejected as exc:
            failed += 1
            results.append({"copNo": cop_no, "error": exc.return_status, "info": exc.info})
    if args.json:
        print_json(results)
    else:
        for r in results:
            if "error" in r:
                print(f"{r['copNo']}: refused {r['error']} {r['info']}")
            else:
                print(f"{r['copNo']}: {r['state']} (preNo {r['preNo']})")
        print(f"{len(results) - failed} declared, {failed} refused")
    return 1 if failed else 0


def cmd_delete(args: argparse.Namespace) -> int:
    ws, s, engine = _open(args)
    try:
        with engine.begin() as conn:
            row = find(conn, cop_no=args.cop_no)
            if row is None:
                return fail(f"no list with copNo {args.cop_no}")
            actions.delete(_desk(ws, s, conn, args.actor), row)
    except RecordRejected as exc:
        return fail(f"{exc.return_status} {exc.info}")
    print(f"{args.cop_no}: deleted")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    ws, s, engine = _open(args)
    try:
        with engine.begin() as conn:
            row = find(conn, pre_no=args.pre_no)
            if row is None:
                return fail(f"no list with preNo {args.pre_no}")
            authority = Authority(args.authority)
            desk = _desk(ws, s, conn, f"{authority} officer")
            row = decide(desk, row, authority, Decision(args.decision), args.reason or "")
    except RecordRejected as exc:
        return fail(f"{exc.return_status} {exc.info}")
    print(f"{args.pre_no}: {row.state}")
    return 0


def cmd_guarantee_set(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        amount = Decimal(args.amount)
    except InvalidOperation:
        return fail(f"amount {args.amount!r} is not a number")
    if amount < 0:
        return fail("a guarantee balance cannot be negative")
    with engine.begin() as conn:
        guarantee.set_balance(conn, args.code, amount, utcnow())
    print(f"guarantee {args.code}: balance {amount}")
    return 0


def cmd_guarantee_show(args: argparse.Namespace) -> int:
    engine = _engine(args)
    with engine.connect() as conn:
        have = guarantee.balance(conn, args.code)
    if have is None:
        return fail(f"no guarantee for {args.code}")
    print(f"guarantee {args.code}: balance {have}")
    return 0


def cmd_identity_import(args: argparse.Namespace) -> int:
    engine = _engine(args)
    path = Path(args.csv)
    if not path.is_file():
        return fail(f"{path}: not found")
    with engine.begin() as conn:
        n = identity.import_csv(conn, path, utcnow())
    print(f"{n} identities imported from {path.name}")
    return 0


def cmd_lists(args: argparse.Namespace) -> int:
    engine = _engine(args)
    with engine.connect() as conn:
        page = queries.list_query(
            conn,
            queries.ListFilter(status=args.status, buyer=args.buyer, order_no=args.order_no),
            page=args.page,
            size=args.size,
        )
    if args.json:
        print_json(page)
        return 0
    for r in page["rows"]:
        print(f"{r['preNo']}  {r['copNo']}  {r['orderNo']}  {r['status']:<13} {r['invtNo'] or '-'}")
    print(f"{page['total']} lists")
    return 0


def cmd_orders(args: argparse.Namespace) -> int:
    engine = _engine(args)
    with engine.connect() as conn:
        if args.order_no and args.details:
            data = queries.order_details(conn, args.ebp_code, args.order_no)
            if data is None:
                return fail(f"no order {args.order_no}")
            print_json(data)
            return 0
        page = queries.order_query(
            conn,
            queries.OrderFilter(
                order_no=args.order_no,
                ebp_code=args.ebp_code,
                ebc_code=args.ebc_code,
                buyer=args.buyer,
                since=args.since,
                until=args.until,
                status=args.status,
            ),
            page=args.page,
            size=args.size,
        )
    if args.json:
        print_json(page)
        return 0
    for r in page["rows"]:
        print(
            f"{r['orderNo']}  {r['ebpCode']}  {r['buyerName']}  {r['acturalPaid']}  {r['status']}"
        )
    print(f"{page['total']} orders")
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    engine = _engine(args)
    with engine.connect() as conn:
        data = queries.list_details(conn, pre_no=args.pre_no)
    if data is None:
        return fail(f"no list with preNo {args.pre_no}")
    if args.json:
        print_json(data)
        return 0
    for r in data["log"]:
        print(
            f"{r['at']}  {r['actor']:<12} {r['from'] or '-':>13} → {r['to']:<13} "
            f"{r['code'] or '':>8}  {r['reason']}"
        )
    return 0


def _paging(p: argparse.ArgumentParser) -> None:
    p.add_argument("--page", type=int, default=1)
    p.add_argument("--size", type=int, default=50)
    p.add_argument("--json", action="store_true", help="machine-readable output")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lists", help="declaration lists, by status")
    p.add_argument(
        "--status", help="temporary, declared, sent, returned, accepted, … or 'to-declare'"
    )
    p.add_argument("--buyer", help="buyer name or ID number")
    p.add_argument("--order-no")
    _paging(p)
    p.set_defaults(func=cmd_lists)

    p = sub.add_parser("declare", help="declare temporary or returned lists (batch)")
    p.add_argument("cop_no", nargs="+", metavar="COPNO")
    p.add_argument("--actor", default="cli", help="who declares, for the operation log")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_declare)

    p = sub.add_parser("list-delete", help="delete a temporary or returned list")
    p.add_argument("cop_no", metavar="COPNO")
    p.add_argument("--actor", default="cli")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("review", help="a manual review decision")
    p.add_argument("pre_no", metavar="PRENO")
    p.add_argument("--as", dest="authority", required=True, choices=[a.value for a in Authority])
    p.add_argument("--decision", required=True, choices=[d.value for d in Decision])
    p.add_argument("--reason", default="")
    p.set_defaults(func=cmd_review)

    g = sub.add_parser("guarantee", help="guarantee balances").add_subparsers(dest="action")
    g.required = True
    p = g.add_parser("set", help="set the balance of an assureCode's guarantee")
    p.add_argument("code")
    p.add_argument("amount")
    p.set_defaults(func=cmd_guarantee_set)
    p = g.add_parser("show", help="show a guarantee's balance")
    p.add_argument("code")
    p.set_defaults(func=cmd_guarantee_show)

    i = sub.add_parser("identity", help="the real-name registry").add_subparsers(dest="action")
    i.required = True
    p = i.add_parser("import", help="import id-number,name rows from a CSV file")
    p.add_argument("csv")
    p.set_defaults(func=cmd_identity_import)

    p = sub.add_parser("orders", help="electronic order query")
    p.add_argument("--order-no")
    p.add_argument("--ebp-code")
    p.add_argument("--ebc-code")
    p.add_argument("--buyer", help="buyer name or ID number")
    p.add_argument("--since", help="YYYYMMDD (appTime)")
    p.add_argument("--until", help="YYYYMMDD (appTime)")
    p.add_argument("--status", help="receipt status, e.g. 120")
    p.add_argument("--details", action="store_true", help="head and goods of --order-no")
    _paging(p)
    p.set_defaults(func=cmd_orders)

    p = sub.add_parser("log", help="a list's details and operation log")
    p.add_argument("pre_no", metavar="PRENO")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_log)
