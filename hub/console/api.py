"""The HTTP API (JSON, OpenAPI at /docs): submit, query, declare, list logs, the pull feed."""

from __future__ import annotations

import base64
import secrets
from typing import Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import insert, select, update

from adapters.directory import safe_name
from hub.clearance.queries import list_row
from hub.clock import utcnow
from hub.console import lists as L
from hub.console import records
from hub.console.auth import record
from hub.console.deps import ApiUser, console, not_found, nudge
from hub.console.records import KINDS
from hub.console.scope import may_pull, own_partners
from hub.console.tables import feed_cursors
from hub.delivery.outbox import select_with_body
from hub.pipeline import Inbound
from hub.store.logsync import sync_log
from hub.store.states import DeliveryState
from hub.store.tables import deliveries, messages, receipts

router = APIRouter(prefix="/api", tags=["api"])

FEED_MAX = 500  # deliveries per pull


class ReceiptOut(BaseModel):
    msgType: str
    returnStatus: str
    returnInfo: str
    recordKey: str | None = None


class SubmitOut(BaseModel):
    messageId: int
    msgType: str
    state: str = Field(description="accepted, rejected, duplicate")
    returnInfo: str | None = None
    receipts: list[ReceiptOut]


class RecordOut(BaseModel):
    id: int
    state: str
    appStatus: str
    appTime: str
    returnStatus: str | None
    updatedAt: str | None
    head: dict[str, Any]
    lines: list[dict[str, Any]]


class Page(BaseModel):
    total: int
    page: int
    pageSize: int
    items: list[RecordOut]


class FeedItem(BaseModel):
    id: int = Field(description="the cursor: pass it as `after` for the next batch")
    kind: str
    msgType: str
    guid: str
    fileName: str
    createdAt: str
    body: str = Field(description="the file's bytes, base64 or UTF-8 text per `encoding`")


class FeedOut(BaseModel):
    partner: str
    encoding: str
    next: int = Field(description="cursor after this batch")
    items: list[FeedItem]


class AckIn(BaseModel):
    through: int = Field(description="acknowledge every delivery up to and including this id")


class AckOut(BaseModel):
    partner: str
    acknowledged: int


@router.post("/messages", response_model=SubmitOut, summary="Submit a CEB message")
def submit_message(
    request: Request,
    who: ApiUser,
    partner: str = Query(description="the sending partner's id"),
    body: bytes = Body(media_type="application/xml", description="the CEB XML, bare or in DxpMsg"),
    file_name: str = Query("upload.xml", alias="fileName"),
) -> SubmitOut:
    """Run one message through the pipeline and answer with the receipts it earned."""
    c = console(request)
    sender = {p.id: p for p in own_partners(c.settings, who)}.get(partner)
    if sender is None:
        raise not_found()
    if len(body) > c.settings.hub.max_message_bytes:
        raise HTTPException(413, "the message is over the size limit")
    claim = f"http-{secrets.token_hex(8)}-{safe_name(file_name)}"
    item = Inbound(sender, claim, file_name[:255], body, utcnow())
    c.processor.process(c.engine, [item])
    with c.engine.begin() as conn:
        msg = conn.execute(select(messages).where(messages.c.claim == claim)).one()
        answers = conn.execute(
            select(receipts).where(receipts.c.message_id == msg.id).order_by(receipts.c.id)
        ).all()
        record(conn, who.name, "submit", partner, f"message {msg.id} {msg.state}")
    nudge(request)  # deliver the copies and receipts now
    return SubmitOut(
        messageId=msg.id,
        msgType=msg.msg_type,
        state=msg.state,
        returnInfo=msg.return_info or None,
        receipts=[
            ReceiptOut(
                msgType=a.msg_type,
                returnStatus=a.return_status,
                returnInfo=a.return_info,
                recordKey=a.record_key,
            )
            for a in answers
        ],
    )


@router.get("/orders", response_model=Page, summary="Query electronic orders")
def query_orders(
    request: Request,
    who: ApiUser,
    orderNo: str = "",
    ebpCode: str = "",
    ebcCode: str = "",
    buyer: str = Query("", description="buyer name (part) or ID number"),
    dateFrom: str = Query("", description="YYYY-MM-DD, on appTime"),
    dateTo: str = "",
    returnStatus: str = "",
    page: int = Query(1, ge=1),
) -> Page:
    kind = KINDS["orders"]
    given = dict(
        orderNo=orderNo,
        ebpCode=ebpCode,
        ebcCode=ebcCode,
        buyer=buyer,
        dateFrom=dateFrom,
        dateTo=dateTo,
        returnStatus=returnStatus,
    )
    with console(request).engine.connect() as conn:
        rows, total = records.query(conn, kind, who, given, page)
    return Page(
        total=total,
        page=page,
        pageSize=records.PAGE_SIZE,
        items=[RecordOut(**records.as_dict(r)) for r in rows],
    )


@router.get("/orders/{order_id}", response_model=RecordOut, summary="One order, head and goods")
def get_order(request: Request, order_id: int, who: ApiUser) -> RecordOut:
    with console(request).engine.connect() as conn:
        row = records.get(conn, KINDS["orders"].table, who, order_id)
    if row is None:
        raise not_found()
    return RecordOut(**records.as_dict(row))


# ------------------------------------------------------------------------ lists


class ListOut(BaseModel):
    id: int
    preNo: str | None
    copNo: str
    orderNo: str
    logisticsNo: str
    invtNo: str | None
    agentCode: str
    buyerName: str | None
    total: str | None = Field(description="dutiable value: goods, freight and insurance")
    status: str = Field(description="the list's state: temporary, declared, sent, returned, …")
    returnStatus: str | None
    returnInfo: str | None
    riskRule: str | None
    savedAt: str
    updatedAt: str


class ListPage(BaseModel):
    total: int
    page: int
    pageSize: int
    items: list[ListOut]


class LogEntry(BaseModel):
    at: str
    actor: str
    fromState: str | None
    toState: str
    code: str | None
    reasonCode: str | None
    reasonWords: str = Field(description="the review reason code in plain words")
    reason: str


class ListDetails(ListOut):
    head: dict[str, Any]
    lines: list[dict[str, Any]]
    order: dict[str, Any] | None
    payment: dict[str, Any] | None
    waybill: dict[str, Any] | None
    log: list[LogEntry]


class DeclareIn(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=200, description="list ids to declare")


class DeclareResult(BaseModel):
    id: int
    ok: bool
    info: str
    preNo: str | None
    copNo: str | None
    state: str | None


def _list_out(r) -> dict[str, Any]:
    shown = {k: v for k, v in list_row(r).items() if k != "buyerIdNumber"}
    return {
        "id": r.id,
        **shown,
        "savedAt": r.created_at.isoformat(),
        "updatedAt": r.updated_at.isoformat(),
    }


def _log_out(rows) -> list[LogEntry]:
    return [
        LogEntry(
            at=x.at.isoformat(),
            actor=x.actor,
            fromState=x.from_state,
            toState=x.to_state,
            code=x.code,
            reasonCode=x.reason_code,
            reasonWords=L.reason_words(x.reason_code),
            reason=x.reason,
        )
        for x in rows
    ]


@router.get("/lists", response_model=ListPage, summary="Query declaration lists")
def query_lists(
    request: Request,
    who: ApiUser,
    screen: Literal["pending", "declared"] = Query(
        "pending", description="pending: temporary and returned; declared: the rest"
    ),
    status: str = Query("", description="declared screen: one state, e.g. returned"),
    preNo: str = "",
    copNo: str = "",
    orderNo: str = "",
    logisticsNo: str = "",
    invtNo: str = "",
    buyer: str = "",
    dateFrom: str = "",
    dateTo: str = "",
    page: int = Query(1, ge=1),
) -> ListPage:
    given = dict(
        status=status, preNo=preNo, copNo=copNo, orderNo=orderNo, logisticsNo=logisticsNo,
        invtNo=invtNo, buyer=buyer, dateFrom=dateFrom, dateTo=dateTo,
    )  # fmt: skip
    with console(request).engine.connect() as conn:
        rows, total = L.query(conn, who, screen, given, page)
    items = [ListOut(**_list_out(r)) for r in rows]
    return ListPage(total=total, page=page, pageSize=records.PAGE_SIZE, items=items)


@router.get("/lists/{list_id}", response_model=ListDetails, summary="A list with its documents")
def get_list(request: Request, who: ApiUser, list_id: int) -> ListDetails:
    with console(request).engine.connect() as conn:
        row = L.find(conn, who, list_id)
        if row is None:
            raise not_found()
        data = L.details(conn, who, list_id)
        log_rows = L.log_rows(conn, list_id)
    return ListDetails(
        **_list_out(row),
        head=data["head"],
        lines=data["lines"],
        order=data["order"],
        payment=data["payment"],
        waybill=data["waybill"],
        log=_log_out(log_rows),
    )


@router.get("/lists/{list_id}/log", response_model=list[LogEntry], summary="A list's operation log")
def list_log(request: Request, who: ApiUser, list_id: int) -> list[LogEntry]:
    with console(request).engine.connect() as conn:
        if L.find(conn, who, list_id) is None:
            raise not_found()
        return _log_out(L.log_rows(conn, list_id))


@router.post("/lists/declare", response_model=list[DeclareResult], summary="Declare lists (batch)")
def declare_lists(request: Request, who: ApiUser, body: DeclareIn) -> list[DeclareResult]:
    """Declare temporary or returned lists; each list succeeds or fails on its own."""
    if not who.may_change_lists:
        raise HTTPException(403, "your role does not change lists")
    outcomes = L.declare(console(request), who, list(dict.fromkeys(body.ids)))
    nudge(request)
    if all(o.missing for o in outcomes):
        raise not_found()
    return [DeclareResult(**o.as_dict()) for o in outcomes]


# ------------------------------------------------------------------------ the pull feed
# A pull partner's deliveries stay pending (the delivery worker passes them over) until the
# partner acknowledges them; its acknowledgement cursor says what it has really taken.


def _cursor(conn, partner: str) -> int:
    value = conn.execute(
        select(feed_cursors.c.acked_through).where(feed_cursors.c.partner_id == partner)
    ).scalar()
    return int(value or 0)


@router.get("/feed/{partner}", response_model=FeedOut, summary="Pull the next deliveries")
def pull_feed(
    request: Request,
    who: ApiUser,
    partner: str,
    after: int | None = Query(
        None, ge=0, description="the last id received; default: the last acknowledged id"
    ),
    limit: int = Query(100, ge=1, le=FEED_MAX),
    encoding: Literal["base64", "text"] = "base64",
) -> FeedOut:
    """The partner's deliveries after the cursor, oldest first."""
    c = console(request)
    if not may_pull(c.settings, who, partner):
        raise not_found()
    with c.engine.connect() as conn:
        start = _cursor(conn, partner) if after is None else after
        d = deliveries.c
        rows = conn.execute(
            select_with_body(d.id, d.kind, d.msg_type, d.guid, d.file_name, d.created_at)
            .where(
                deliveries.c.partner_id == partner,
                deliveries.c.state != DeliveryState.DEAD,
                deliveries.c.id > start,
            )
            .order_by(deliveries.c.id)
            .limit(limit)
        ).all()
    if rows:
        sync_log(c.engine)  # served only once durable: the hub's writer does not wait

    def body(data: bytes) -> str:
        if encoding == "text":
            return data.decode("utf-8", "replace")
        return base64.b64encode(data).decode("ascii")

    items = [
        FeedItem(
            id=r.id,
            kind=r.kind,
            msgType=r.msg_type,
            guid=r.guid,
            fileName=r.file_name,
            createdAt=r.created_at.isoformat(),
            body=body(r.body),
        )
        for r in rows
    ]
    return FeedOut(
        partner=partner, encoding=encoding, next=items[-1].id if items else start, items=items
    )


@router.post("/feed/{partner}/ack", response_model=AckOut, summary="Acknowledge pulled deliveries")
def ack_feed(request: Request, who: ApiUser, partner: str, ack: AckIn) -> AckOut:
    """Acknowledge every delivery up to `through`: they count as delivered from now on."""
    c = console(request)
    if not may_pull(c.settings, who, partner):
        raise not_found()
    now = utcnow()
    with c.engine.begin() as conn:
        before = _cursor(conn, partner)
        through = max(before, ack.through)  # a cursor never goes back
        result = conn.execute(
            update(deliveries)
            .where(
                deliveries.c.partner_id == partner,
                deliveries.c.id > before,
                deliveries.c.id <= through,
                deliveries.c.state != DeliveryState.DEAD,
            )
            .values(state=DeliveryState.DELIVERED, delivered_at=now)
        )
        if through != before:
            values = {"acked_through": through, "acked_at": now}
            done = conn.execute(
                update(feed_cursors).where(feed_cursors.c.partner_id == partner).values(**values)
            )
            if done.rowcount == 0:
                conn.execute(insert(feed_cursors).values(partner_id=partner, **values))
        record(conn, who.name, "feed-ack", partner, f"{before} -> {through}: {result.rowcount}")
    return AckOut(partner=partner, acknowledged=result.rowcount)
