"""Console pages: login, transaction data (orders, payments, waybills) and import."""

from __future__ import annotations

import os
import secrets
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from adapters.directory import safe_name
from hub.console import records
from hub.console.auth import Principal, authenticate, record
from hub.console.deps import PageUser, checked_form, console, not_found, render
from hub.console.records import KINDS, PAGE_SIZE, Kind
from hub.console.scope import own_partners
from hub.store.tables import messages, receipts

router = APIRouter(include_in_schema=False)

MAX_UPLOAD_FILES = 100


def _safe_next(target: str | None) -> str:
    # Only a path on this site: never an absolute or scheme-relative URL (open redirect).
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/login")
def login_form(request: Request, next: str = "/"):
    return render(request, "login.html", None, next=_safe_next(next), error=None)


@router.post("/login")
async def login(request: Request):
    form = await checked_form(request)
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    c = console(request)
    who = authenticate(c.engine, name, password)
    target = _safe_next(str(form.get("next", "/")))
    if who is None:
        return render(
            request,
            "login.html",
            None,
            401,
            next=target,
            error="用户名或密码错误 wrong name or password",
        )
    request.session.clear()  # a fresh session (and CSRF token) for the logged-in user
    request.session["uid"] = who.id
    with c.engine.begin() as conn:
        record(conn, who.name, "login")
    return RedirectResponse(target, 303)


@router.post("/logout")
async def logout(request: Request):
    await checked_form(request)
    request.session.clear()
    return RedirectResponse("/login", 303)


@router.get("/")
def home(who: PageUser):
    return RedirectResponse("/review" if who.officer else "/orders", 303)


def page_links(request: Request, page: int, total: int) -> dict[str, str | None]:
    params = {k: v for k, v in request.query_params.items() if k != "page"}
    pages = max(1, -(-total // PAGE_SIZE))

    def link(n: int) -> str:
        return f"{request.url.path}?{urlencode({**params, 'page': n})}"

    return {
        "prev": link(page - 1) if page > 1 else None,
        "next": link(page + 1) if page < pages else None,
        "pages": pages,
    }


def _record_routes(kind: Kind) -> None:
    def listing(request: Request, who: PageUser, page: int = 1):
        given = {f.param: request.query_params.get(f.param, "") for f in kind.filters}
        with console(request).engine.connect() as conn:
            rows, total = records.query(conn, kind, who, given, page)
        return render(
            request,
            "records.html",
            who,
            kind=kind,
            rows=rows,
            total=total,
            page=max(1, page),
            given=given,
            links=page_links(request, max(1, page), total),
        )

    def details(request: Request, record_id: int, who: PageUser):
        with console(request).engine.connect() as conn:
            row = records.get(conn, kind.table, who, record_id)
            if row is None:
                raise not_found()
            answers = records.receipts_of(conn, kind.table, record_id)
        return render(request, "record.html", who, kind=kind, row=row, answers=answers)

    def download(request: Request, record_id: int, who: PageUser):
        with console(request).engine.connect() as conn:
            row = records.get(conn, kind.table, who, record_id)
            body = records.message_body(conn, row.message_id) if row else None
        if body is None:
            raise not_found()
        name = f"{kind.name}-{record_id}.xml"
        return Response(
            body,
            media_type="application/xml",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    router.add_api_route(f"/{kind.name}", listing, methods=["GET"], name=f"{kind.name}_query")
    router.add_api_route(f"/{kind.name}/{{record_id}}", details, methods=["GET"])
    router.add_api_route(f"/{kind.name}/{{record_id}}/xml", download, methods=["GET"])

    if kind.lines_title:

        def lines(request: Request, record_id: int, who: PageUser):
            with console(request).engine.connect() as conn:
                row = records.get(conn, kind.table, who, record_id)
            if row is None:
                raise not_found()
            return render(request, "lines.html", who, kind=kind, row=row)

        router.add_api_route(f"/{kind.name}/{{record_id}}/goods", lines, methods=["GET"])


for _kind in KINDS.values():
    _record_routes(_kind)


# ------------------------------------------------------------------------------ import


def _uploadable(request: Request, who: Principal):
    if not who.may_import:
        raise HTTPException(403, "your role does not import messages")
    return [p for p in own_partners(console(request).settings, who) if p.transport == "directory"]


@router.get("/import")
def import_form(request: Request, who: PageUser):
    return render(request, "import.html", who, partners=_uploadable(request, who), error=None)


def drop(folder, name: str, data: bytes) -> str:
    """Put an upload in a partner's inbox as a partner would: temp name, fsync, rename."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    tmp = folder / f".{name}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    return target.name


@router.post("/import")
async def import_upload(request: Request, who: PageUser):
    form = await checked_form(request)
    partners = {p.id: p for p in _uploadable(request, who)}
    partner = partners.get(str(form.get("partner", "")))
    uploads = [u for u in form.getlist("files") if hasattr(u, "read") and u.filename]
    error = None
    if partner is None:
        error = "请选择发送方 choose the sending partner"
    elif not uploads or len(uploads) > MAX_UPLOAD_FILES:
        error = (
            f"请选择 1 到 {MAX_UPLOAD_FILES} 个 XML 文件 choose 1 to {MAX_UPLOAD_FILES} XML files"
        )
    if error:
        return render(
            request, "import.html", who, 400, partners=list(partners.values()), error=error
        )
    c = console(request)
    limit_bytes = c.settings.hub.max_message_bytes
    batch = secrets.token_hex(4)
    names = []
    for n, upload in enumerate(uploads):
        data = await upload.read(limit_bytes + 1)
        # A unique name per upload, so the result page finds exactly these messages.
        names.append(
            drop(c.ws.inbox_of(partner.id), f"web-{batch}-{n}-{safe_name(upload.filename)}", data)
        )
    with c.engine.begin() as conn:
        record(conn, who.name, "import", partner.id, ", ".join(names))
    if c.wakeup is not None:
        c.wakeup.set()
    query = urlencode([("partner", partner.id), *(("f", n) for n in names)])
    return RedirectResponse(f"/import/result?{query}", 303)


@router.get("/import/result")
def import_result(request: Request, partner: str, who: PageUser):
    if partner not in {p.id for p in _uploadable(request, who)}:
        raise not_found()
    names = request.query_params.getlist("f")[:MAX_UPLOAD_FILES]
    results = []
    with console(request).engine.connect() as conn:
        for name in names:
            msg = conn.execute(
                select(messages)
                .where(messages.c.partner_id == partner, messages.c.file_name == name)
                .order_by(messages.c.id.desc())
            ).first()
            answers = (
                conn.execute(
                    select(receipts).where(receipts.c.message_id == msg.id).order_by(receipts.c.id)
                ).all()
                if msg
                else []
            )
            results.append((name, msg, answers))
    waiting = any(msg is None for _, msg, _ in results)
    return render(
        request, "import_result.html", who, partner=partner, results=results, waiting=waiting
    )
