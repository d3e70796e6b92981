"""`cebhub deliveries` and `cebhub resend`: outbound files, their attempts and errors; re-send."""

from __future__ import annotations

import argparse
import getpass
import logging
from typing import Any

from sqlalchemy import and_, insert, or_, select, update

from hub.cli.common import fail, print_json, settings, workspace
from hub.clock import utcnow
from hub.console.tables import audit
from hub.store.db import engine_for
from hub.store.states import DeliveryState
from hub.store.tables import deliveries

log = logging.getLogger(__name__)

RETRYING = "retrying"  # shown for a pending delivery that has failed at least once


def shown_state(state: str, attempts: int) -> str:
    return RETRYING if state == DeliveryState.PENDING and attempts else state


def _failed():
    return or_(
        deliveries.c.state == DeliveryState.DEAD,
        and_(deliveries.c.state == DeliveryState.PENDING, deliveries.c.attempts > 0),
    )


def query_deliveries(
    engine, *, failed: bool = False, everything: bool = False, partner: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:  # fmt: skip
    """Deliveries newest first: not yet delivered (default), failed ones, or all."""
    c = deliveries.c
    q = select(
        c.id, c.partner_id, c.file_name, c.state, c.attempts, c.next_attempt_at, c.last_error,
        c.created_at, c.delivered_at,
    ).order_by(c.id.desc()).limit(limit)  # fmt: skip
    if failed:
        q = q.where(_failed())
    elif not everything:
        q = q.where(c.state != DeliveryState.DELIVERED)
    if partner:
        q = q.where(c.partner_id == partner)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    return [
        {
            "id": r.id,
            "partner": r.partner_id,
            "file": r.file_name,
            "state": shown_state(r.state, r.attempts),
            "attempts": r.attempts,
            "next_attempt_at": r.next_attempt_at if r.state == DeliveryState.PENDING else None,
            "last_error": r.last_error,
            "created_at": r.created_at,
            "delivered_at": r.delivered_at,
        }
        for r in rows
    ]


def cmd_deliveries(args: argparse.Namespace) -> int:
    ws = workspace(args)
    s = settings(ws)
    if args.partner and args.partner not in s.partners:
        return fail(f"no partner {args.partner}")
    rows = query_deliveries(
        engine_for(s, ws), failed=args.failed, everything=args.all, partner=args.partner,
        limit=args.limit,
    )  # fmt: skip
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no failed deliveries" if args.failed else "no deliveries waiting")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Deliveries")
    for col in ("id", "partner", "file", "state", "attempts", "next attempt", "last error"):
        table.add_column(col, overflow="fold")
    for r in rows:
        nxt = r["next_attempt_at"]
        table.add_row(
            str(r["id"]), r["partner"], r["file"], r["state"], str(r["attempts"]),
            nxt.strftime("%Y-%m-%d %H:%M:%S") if nxt else "-", r["last_error"] or "",
        )  # fmt: skip
    Console().print(table)
    return 0


def resend(engine, ids: list[int], actor: str) -> list[dict[str, Any]]:
    """Make the deliveries pending now with their attempts reset; audited. Raises KeyError."""
    now = utcnow()
    c = deliveries.c
    with engine.begin() as conn:
        rows = conn.execute(
            select(c.id, c.partner_id, c.file_name, c.state, c.attempts, c.last_error).where(
                c.id.in_(ids)
            )
        ).all()
        missing = sorted(set(ids) - {r.id for r in rows})
        if missing:
            raise KeyError(", ".join(map(str, missing)))
        conn.execute(
            update(deliveries)
            .where(c.id.in_(ids))
            .values(
                state=DeliveryState.PENDING, attempts=0, next_attempt_at=now, last_error=None,
                delivered_at=None,
            )
        )  # fmt: skip
        for r in rows:
            detail = (
                f"{r.partner_id} {r.file_name}: was {shown_state(r.state, r.attempts)} after "
                f"{r.attempts} attempt(s)"
                + (f"; last error: {r.last_error}" if r.last_error else "")
            )
            conn.execute(
                insert(audit).values(
                    at=now, actor=actor, action="resend", target=f"delivery {r.id}", detail=detail
                )
            )
            log.info("resend by %s: delivery %s (%s)", actor, r.id, detail)
    return [
        {"id": r.id, "partner": r.partner_id, "file": r.file_name, "was": r.state} for r in rows
    ]


def cmd_resend(args: argparse.Namespace) -> int:
    ws = workspace(args)
    s = settings(ws)
    engine = engine_for(s, ws)
    ids = list(dict.fromkeys(args.ids))
    if args.dead:
        c = deliveries.c
        q = select(c.id).where(c.state == DeliveryState.DEAD)
        if args.partner:
            q = q.where(c.partner_id == args.partner)
        with engine.connect() as conn:
            ids += [i for i in conn.execute(q).scalars() if i not in ids]
    elif args.partner:
        return fail("--partner goes with --dead")
    if not ids:
        return fail("nothing to re-send: give delivery ids (see `cebhub deliveries`) or --dead")
    try:
        done = resend(engine, ids, actor=f"cli:{getpass.getuser()}")
    except KeyError as exc:
        return fail(f"no delivery {exc.args[0]}; nothing was changed")
    for r in done:
        print(f"delivery {r['id']} to {r['partner']} ({r['file']}): {r['was']} → pending")
    print(f"{len(done)} delivery(ies) will be sent at the next round of `cebhub run`")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("deliveries", help="outbound files: state, attempts, next attempt, error")
    p.add_argument("--failed", action="store_true", help="only retrying and dead-lettered ones")
    p.add_argument("--all", action="store_true", help="delivered ones too")
    p.add_argument("--partner", metavar="ID", help="only deliveries to this partner")
    p.add_argument("--limit", type=int, default=200, help="at most this many, newest first")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_deliveries)

    r = sub.add_parser("resend", help="deliver again: dead or delivered → pending, attempts reset")
    r.add_argument("ids", nargs="*", type=int, metavar="ID", help="delivery ids")
    r.add_argument("--dead", action="store_true", help="every dead-lettered delivery")
    r.add_argument("--partner", metavar="ID", help="with --dead: only this partner's")
    r.set_defaults(func=cmd_resend)
