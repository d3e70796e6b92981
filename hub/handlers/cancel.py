"""List cancellations (CEB623): withdraw an accepted list; tax and quota come back."""

from __future__ import annotations

from hub.clearance import actions
from hub.clearance.lifecycle import Desk, find, receipt_keys
from hub.codes import CANCEL_LIST_UNKNOWN, CANCEL_NO_REASON, Status
from hub.errors import RecordRejected
from hub.handlers.base import ApplyContext, RecordOutcome
from hub.messages.records import Record
from hub.messages.types import CANCEL


def declared_list(ctx: ApplyContext, record: Record, unknown_code: str):
    """The list a 623/625 names by invtNo, which must be the sending agent's."""
    row = find(ctx.conn, invt_no=record.get("invtNo"), agent_code=record.get("agentCode"))
    if row is None:
        raise RecordRejected(
            unknown_code,
            f"no list with invtNo {record.get('invtNo')} of agentCode {record.get('agentCode')}",
        )
    return row


def answered(row, *statuses: tuple[str, str]) -> RecordOutcome:
    keys = receipt_keys(row)
    return RecordOutcome(
        statuses=list(statuses), accepted=True, record_id=row.id, receipt_keys=keys
    )


class CancelHandler:
    """appType 1 only (spec §2.1); approved at once when the list's state allows it."""

    msg_type = CANCEL

    def apply(self, ctx: ApplyContext, record: Record) -> RecordOutcome:
        assert ctx.router is not None
        if not record.get("reason").strip():
            raise RecordRejected(CANCEL_NO_REASON, "reason is required for a cancellation")
        row = declared_list(ctx, record, CANCEL_LIST_UNKNOWN)
        desk = Desk(ctx.conn, ctx.router, ctx.now, actor=ctx.partner.id)
        row = actions.cancel(desk, row, record.get("reason"))
        return answered(
            row,
            (Status.DECLARING, f"新增申报成功[{record.get('guid')}]"),
            (Status.CONCLUDED, f"撤销审批通过: list {row.invt_no} cancelled; guarantee restored"),
        )


CANCEL_HANDLER = CancelHandler()
