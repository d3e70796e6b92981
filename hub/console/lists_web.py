"""Console pages for declaration lists and the officers' review queue."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from hub.clearance.states import EDITABLE, UNDER_REVIEW, Decision
from hub.console import lists as L
from hub.console.auth import Principal, UserRole
from hub.console.deps import PageUser, checked_form, console, not_found, nudge, render
from hub.console.records import message_body
from hub.console.web import page_links

router = APIRouter(include_in_schema=False)

MAX_BATCH = 200  # lists per batch declaration
MAX_REASON = 500


def _ids(values) -> list[int]:
    out = []
    for v in values:
        if isinstance(v, str) and v.isdigit():
            out.append(int(v))
    return list(dict.fromkeys(out))[:MAX_BATCH]


def _changer(who: Principal) -> None:
    if not who.may_change_lists:
        raise HTTPException(403, "your role does not change lists")


def _screen(request: Request, who: Principal, screen: str, page: int):
    given = {k: request.query_params.get(k, "") for k in (*L.CONDITIONS, "status")}
    with console(request).engine.connect() as conn:
        rows, total = L.query(conn, who, screen, given, page)
    return render(
        request,
        "lists.html",
        who,
        screen=screen,
        rows=rows,
        total=total,
        page=max(1, page),
        given=given,
        links=page_links(request, max(1, page), total),
        states=L.DECLARED_STATES,
        state_label=L.state_label,
    )


@router.get("/lists/pending")
def pending(request: Request, who: PageUser, page: int = 1):
    return _screen(request, who, "pending", page)


@router.get("/lists/declared")
def declared(request: Request, who: PageUser, page: int = 1):
    return _screen(request, who, "declared", page)


@router.post("/lists/declare")
async def batch_declare(request: Request, who: PageUser):
    form = await checked_form(request)
    _changer(who)
    ids = _ids(form.getlist("ids"))
    if not ids:
        raise HTTPException(400, "请选择清单 select at least one list")
    results = L.declare(console(request), who, ids)
    nudge(request)
    return render(request, "declare_result.html", who, results=results, state_label=L.state_label)


def _details(request: Request, who: Principal, list_id: int):
    with console(request).engine.connect() as conn:
        data = L.details(conn, who, list_id)
    if data is None:
        raise not_found()
    return data


@router.get("/lists/{list_id}")
def list_details(request: Request, who: PageUser, list_id: int):
    data = _details(request, who, list_id)
    return render(
        request,
        "list.html",
        who,
        list_id=list_id,
        data=data,
        matches=L.match_rows(data),
        editable=data["status"] in {s.value for s in EDITABLE} and who.may_change_lists,
        reviewable=data["status"] in {s.value for s in UNDER_REVIEW},
        state_label=L.state_label,
        reason_words=L.reason_words,
    )


@router.get("/lists/{list_id}/log")
def list_log(request: Request, who: PageUser, list_id: int):
    data = _details(request, who, list_id)
    return render(
        request,
        "list_log.html",
        who,
        list_id=list_id,
        data=data,
        state_label=L.state_label,
        reason_words=L.reason_words,
    )


@router.get("/lists/{list_id}/xml")
def list_xml(request: Request, who: PageUser, list_id: int):
    c = console(request)
    with c.engine.connect() as conn:
        row = L.find(conn, who, list_id)
        body = message_body(conn, row.message_id) if row else None
    if body is None:
        raise not_found()
    return Response(
        body,
        media_type="application/xml",
        headers={"Content-Disposition": f'attachment; filename="list-{list_id}.xml"'},
    )


@router.get("/lists/{list_id}/edit")
def edit_form(request: Request, who: PageUser, list_id: int):
    _changer(who)
    data = _details(request, who, list_id)
    if data["status"] not in {s.value for s in EDITABLE}:
        raise HTTPException(
            409, "只有暂存或退单的清单可以修改 only temporary or returned lists change"
        )
    return render(
        request,
        "list_edit.html",
        who,
        list_id=list_id,
        data=data,
        fields=L.EDITABLE_FIELDS,
        error=None,
    )


@router.post("/lists/{list_id}/edit")
async def edit(request: Request, who: PageUser, list_id: int):
    form = await checked_form(request)
    _changer(who)
    data = _details(request, who, list_id)  # 404 before anything else for others' lists
    changes = {n: str(form.get(n, "")).strip() for n in L.EDITABLE_FIELDS if n in form}
    try:
        outcome = L.modify(console(request), who, list_id, changes)
    except ValueError as exc:
        return render(
            request, "list_edit.html", who, 400, list_id=list_id, data=data,
            fields=L.EDITABLE_FIELDS, error=str(exc),
        )  # fmt: skip
    if not outcome.ok:
        raise HTTPException(409, outcome.text)
    return RedirectResponse(f"/lists/{list_id}?saved=1", 303)


@router.post("/lists/{list_id}/delete")
async def delete(request: Request, who: PageUser, list_id: int):
    await checked_form(request)
    _changer(who)
    outcome = L.delete(console(request), who, list_id)
    if outcome.missing:
        raise not_found()
    if not outcome.ok:
        raise HTTPException(409, outcome.text)
    return RedirectResponse("/lists/pending?deleted=1", 303)


@router.post("/lists/{list_id}/declare")
async def declare_one(request: Request, who: PageUser, list_id: int):
    await checked_form(request)
    _changer(who)
    [outcome] = L.declare(console(request), who, [list_id])
    nudge(request)
    if outcome.missing:
        raise not_found()
    return render(request, "declare_result.html", who, results=[outcome], state_label=L.state_label)


# ------------------------------------------------------------------ review queue


def _officer(who: Principal) -> None:
    if not (who.officer or who.role == UserRole.ADMIN):
        raise HTTPException(403, "the review queue is for customs and inspection officers")


@router.get("/review")
def review_queue(request: Request, who: PageUser):
    _officer(who)
    given = {
        k: request.query_params.get(k, "") for k in ("status", "riskRule", "dateFrom", "dateTo")
    }
    with console(request).engine.connect() as conn:
        rows = L.review_queue(conn, given)
    return render(
        request,
        "review.html",
        who,
        rows=rows,
        given=given,
        states=sorted(s.value for s in UNDER_REVIEW),
        state_label=L.state_label,
        decisions=[d.value for d in Decision],
    )


@router.post("/review/{list_id}")
async def review_decide(request: Request, who: PageUser, list_id: int):
    form = await checked_form(request)
    _officer(who)
    authority = L.authority_of(who, str(form.get("authority", "")))
    try:
        decision = Decision(str(form.get("decision", "")))
    except ValueError:
        raise HTTPException(400, "unknown decision") from None
    reason = str(form.get("reason", "")).strip()[:MAX_REASON]
    if authority is None:
        raise HTTPException(400, "choose the authority you decide as")
    if decision == Decision.RETURN and not reason:
        raise HTTPException(400, "退单需要理由 a return needs a reason")
    outcome = L.review(console(request), who, list_id, authority, decision, reason)
    nudge(request)
    if outcome.missing:
        raise not_found()
    if not outcome.ok:
        raise HTTPException(409, outcome.text)
    return RedirectResponse(f"/review?decided={list_id}", 303)
