"""Operations: /metrics, /healthz, /readyz, and the ops dashboard with its audited actions."""

from __future__ import annotations

import hmac
import os
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import Connection, and_, or_, select, text

from hub import metrics
from hub.clearance.states import ListState
from hub.clearance.tables import lists
from hub.clock import as_utc
from hub.console.auth import Principal, UserRole, record
from hub.console.deps import PageUser, checked_form, console, not_found, nudge, render
from hub.errors import RecordRejected
from hub.status import age_text
from hub.store.states import DeliveryState
from hub.store.tables import deliveries
from hub.workspace import Workspace

router = APIRouter(include_in_schema=False)

METRICS_TOKEN_ENV = "CEBHUB_METRICS_TOKEN"  # when set, /metrics wants "Bearer <token>"
STUCK_LIMIT = 50  # rows per table on the dashboard
STUCK_LISTS = (ListState.DECLARED, ListState.SENT, ListState.MANUAL_REVIEW)
REFRESH_SECONDS = 15
READY_FOLDERS = ("inbox", "outbox", "claims", "archive", "quarantine")


# ---------------------------------------------------------------- metrics and health


@router.get("/metrics")
def metrics_endpoint(request: Request):
    """Prometheus text. Open (the console listens on localhost by default); with
    $CEBHUB_METRICS_TOKEN set, only a scraper that sends that bearer token is answered."""
    token = os.environ.get(METRICS_TOKEN_ENV)
    if token:
        scheme, _, sent = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip(), token):
            return Response("a valid bearer token is required\n", 401, media_type="text/plain")
    c = console(request)
    body = metrics.exposition(c.ws, c.settings, c.engine)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
def healthz():
    """The process is up and answering."""
    return {"status": "ok"}


def readiness(ws: Workspace, engine) -> dict[str, Any]:
    """The database answers and every workspace folder takes a file."""
    checks: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means not ready
        checks["database"] = f"error: {exc.__class__.__name__}: {exc}"[:300]
    for name in READY_FOLDERS:
        folder = ws.root / name
        probe = folder / f".ready-{uuid.uuid4().hex}.tmp"  # a temp name: never claimed
        try:
            probe.write_bytes(b"")
            probe.unlink()
            checks[name] = "ok"
        except OSError as exc:
            checks[name] = f"error: {exc.strerror or exc}"
    ok = all(v == "ok" for v in checks.values())
    return {"status": "ok" if ok else "not ready", "checks": checks}


@router.get("/readyz")
def readyz(request: Request):
    c = console(request)
    result = readiness(c.ws, c.engine)
    return JSONResponse(result, 200 if result["status"] == "ok" else 503)


# ---------------------------------------------------------------- what is stuck


def _ops(who: Principal) -> None:
    if who.role not in (UserRole.OPS, UserRole.ADMIN):
        raise HTTPException(403, "the operations dashboard is for ops and admin users")


def _age(when: datetime | float | None, now: float) -> float | None:
    if when is None:
        return None
    if isinstance(when, datetime):
        when = as_utc(when).timestamp()
    return max(0.0, round(now - when, 1))


def _files(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _reason(note: Path) -> str:
    try:
        body = note.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    for line in body.splitlines():
        if line.startswith("reason:"):
            return line.partition(":")[2].strip()
    return body.strip()[:300]


def original_name(claim_name: str) -> str:
    """The name the partner gave a file, from a claim name `<owner>--<original>`."""
    return claim_name.partition("--")[2] or claim_name


def quarantined(ws: Workspace, partners) -> list[dict[str, Any]]:
    now = time.time()
    out = []
    for pid in partners:
        for path in _files(ws.quarantine / pid):
            if path.name.endswith(".reason.txt"):
                continue
            out.append(
                {
                    "partner": pid,
                    "name": path.name,
                    "original": original_name(path.name),
                    "age": _age(path.stat().st_mtime, now),
                    "reason": _reason(path.with_name(path.name + ".reason.txt")),
                }
            )
    return sorted(out, key=lambda f: -(f["age"] or 0))


def claimed(ws: Workspace, partners) -> list[dict[str, Any]]:
    now = time.time()
    out = [
        {"partner": pid, "name": p.name, "age": _age(p.stat().st_mtime, now)}
        for pid in partners
        for p in _files(ws.claims / pid)
    ]
    return sorted(out, key=lambda f: -(f["age"] or 0))


def stuck_deliveries(conn: Connection) -> list[dict[str, Any]]:
    """Dead deliveries and pending ones that failed before, oldest first."""
    c = deliveries.c
    rows = conn.execute(
        select(c.id, c.partner_id, c.file_name, c.state, c.attempts, c.created_at,
               c.next_attempt_at, c.last_error)
        .where(or_(c.state == DeliveryState.DEAD,
                   and_(c.state == DeliveryState.PENDING, c.attempts > 0)))
        .order_by(c.created_at, c.id)
        .limit(STUCK_LIMIT)
    ).all()  # fmt: skip
    now = time.time()
    return [
        {
            "id": r.id,
            "partner": r.partner_id,
            "file": r.file_name,
            "state": "retrying" if r.state == DeliveryState.PENDING else str(r.state),
            "attempts": r.attempts,
            "age": _age(r.created_at, now),
            "last_error": r.last_error or "",
        }
        for r in rows
    ]


def stuck_lists(conn: Connection) -> list[dict[str, Any]]:
    """Lists waiting in declared, sent or manual review, the longest-waiting first."""
    c = lists.c
    rows = conn.execute(
        select(c.id, c.pre_no, c.cop_no, c.state, c.updated_at, c.waiting_for, c.risk_rule)
        .where(c.state.in_([s.value for s in STUCK_LISTS]))
        .order_by(c.updated_at, c.id)
        .limit(STUCK_LIMIT)
    ).all()
    now = time.time()
    return [
        {
            "id": r.id,
            "pre_no": r.pre_no or "",
            "cop_no": r.cop_no,
            "state": str(r.state),
            "age": _age(r.updated_at, now),
            "why": r.waiting_for or (f"risk rule {r.risk_rule}" if r.risk_rule else ""),
        }
        for r in rows
    ]


def returned_lists(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    c = lists.c
    rows = conn.execute(
        select(c.id, c.pre_no, c.cop_no, c.updated_at, c.return_status, c.return_info)
        .where(c.state == ListState.RETURNED)
        .order_by(c.updated_at.desc(), c.id.desc())
        .limit(limit)
    ).all()
    now = time.time()
    return [
        {
            "id": r.id,
            "pre_no": r.pre_no or "",
            "cop_no": r.cop_no,
            "age": _age(r.updated_at, now),
            "code": r.return_status or "",
            "info": (r.return_info or "")[:160],
        }
        for r in rows
    ]


def dashboard(ws: Workspace, settings, engine) -> dict[str, Any]:
    """What the dashboard shows: `cebhub status`'s data and the oldest unfinished work."""
    from hub.status import collect

    data = {"status": collect(ws, settings, engine)}
    partners = list(settings.partners)
    with engine.connect() as conn:
        data["deliveries"] = stuck_deliveries(conn)
        data["lists"] = stuck_lists(conn)
        data["returned"] = returned_lists(conn)
    data["claims"] = claimed(ws, partners)
    data["quarantine"] = quarantined(ws, partners)
    return data


@router.get("/ops")
def ops_page(request: Request, who: PageUser):
    _ops(who)
    c = console(request)
    data = dashboard(c.ws, c.settings, c.engine)
    return render(
        request, "ops.html", who, data=data, age=age_text, refresh=REFRESH_SECONDS,
        done=request.query_params.get("done", ""),
    )  # fmt: skip


# ---------------------------------------------------------------- one-click actions


@router.post("/ops/deliveries/{delivery_id}/resend")
async def resend_delivery(request: Request, who: PageUser, delivery_id: int):
    await checked_form(request)
    _ops(who)
    from hub.cli.delivery_cmd import resend  # pending now, attempts reset, audited

    try:
        resend(console(request).engine, [delivery_id], who.name)
    except KeyError:
        raise not_found() from None
    nudge(request)
    return RedirectResponse(f"/ops?done=resent+{delivery_id}", 303)


def release_file(ws: Workspace, partner_id: str, name: str) -> Path:
    """Move a quarantined file back into its partner's inbox under its original name."""
    folder = ws.quarantine / partner_id
    source = folder / name
    # Only a file that is really there, by its exact name: nothing from the form becomes a path.
    if name not in {p.name for p in _files(folder)} or name.endswith(".reason.txt"):
        raise FileNotFoundError(name)
    inbox = ws.inbox_of(partner_id)
    inbox.mkdir(parents=True, exist_ok=True)
    original = Path(original_name(name)).name or "released.xml"
    target, n = inbox / original, 1
    while target.exists():
        target = inbox / f"{Path(original).stem}.{n}{Path(original).suffix}"
        n += 1
    os.replace(source, target)  # same file system: atomic, and the watcher sees a new file
    source.with_name(name + ".reason.txt").unlink(missing_ok=True)
    return target


@router.post("/ops/quarantine/{partner_id}/release")
async def release_quarantined(request: Request, who: PageUser, partner_id: str):
    form = await checked_form(request)
    _ops(who)
    c = console(request)
    if partner_id not in c.settings.partners:
        raise not_found()
    name = str(form.get("name", ""))
    reason = _reason(c.ws.quarantine / partner_id / (name + ".reason.txt"))
    try:
        target = release_file(c.ws, partner_id, name)
    except FileNotFoundError:
        raise not_found() from None
    with c.engine.begin() as conn:
        record(conn, who.name, "release", f"{partner_id}/{name}",
               f"back to inbox as {target.name}; was quarantined for: {reason}")  # fmt: skip
    nudge(request)
    return RedirectResponse("/ops?done=released", 303)


def rerun_review(c, list_id: int, actor: str) -> str:
    """A sent list is reviewed again now; a returned one is declared again (and so reviewed)."""
    from hub.clearance import actions
    from hub.clearance.lifecycle import Desk, get
    from hub.clearance.review import review
    from hub.clock import utcnow

    with c.engine.begin() as conn:
        row = conn.execute(select(lists).where(lists.c.id == list_id)).first()
        if row is None:
            raise LookupError(list_id)
        before = str(row.state)
        desk = Desk(conn, c.router, utcnow(), actor=actor, root=c.ws.root)
        if row.state == ListState.SENT:
            after = review(desk, row)
        elif row.state == ListState.RETURNED:
            after = actions.declare(desk, row)
        else:
            raise ValueError(f"list {row.cop_no} is {row.state}; only sent or returned lists")
        after = get(conn, row.id)
        outcome = f"{before} → {after.state}" + (
            f" ({after.waiting_for})" if after.waiting_for else ""
        )
        record(conn, actor, "rereview", f"list {row.id} {row.cop_no}", outcome)
    return outcome


@router.post("/ops/lists/{list_id}/rereview")
async def rereview_list(request: Request, who: PageUser, list_id: int):
    await checked_form(request)
    _ops(who)
    try:
        outcome = rerun_review(console(request), list_id, who.name)
    except LookupError:
        raise not_found() from None
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None
    except RecordRejected as exc:
        raise HTTPException(409, f"{exc.return_status} {exc.return_info}") from None
    nudge(request)
    from urllib.parse import quote

    return RedirectResponse(f"/ops?done={quote(f'list {list_id}: {outcome}')}", 303)
