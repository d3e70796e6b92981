"""Refunds (CEB625): goods returned within 30 days of release; tax and quota come back."""

from __future__ import annotations

from hub.clearance import actions
from hub.clearance.lifecycle import Desk
from hub.codes import REFUND_NOT_IN_LIST, Status
from hub.handlers.base import ApplyContext, RecordOutcome
from hub.handlers.cancel import answered, declared_list
from hub.messages.records import Record
from hub.messages.types import REFUND


class RefundHandler:
    """Approved at once when the list was released in time and the quantities fit."""

    msg_type = REFUND

    def apply(self, ctx: ApplyContext, record: Record) -> RecordOutcome:
        assert ctx.router is not None
        row = declared_list(ctx, record, REFUND_NOT_IN_LIST)
        desk = Desk(ctx.conn, ctx.router, ctx.now, actor=ctx.partner.id)
        row = actions.refund(desk, row, record.lines, record.get("reason"))
        return answered(
            row,
            (Status.DECLARING, f"新增申报成功[{record.get('guid')}]"),
            (Status.CONCLUDED, f"退货审批通过: list {row.invt_no}; tax and quota restored"),
        )


REFUND_HANDLER = RefundHandler()
