"""Decisions from customs and inspection: a CEB622 they send names a list and its new status."""

from __future__ import annotations

from hub.clearance import manual
from hub.clearance.lifecycle import DECIDING_ROLES, Desk, find
from hub.clearance.states import DECISION_BY_STATUS
from hub.codes import LIST_INVALID
from hub.errors import RecordRejected
from hub.handlers.base import ApplyContext, RecordOutcome
from hub.messages.records import Record
from hub.messages.types import DECISION


class DecisionHandler:
    """399 pass, 500 inspect, 800 release, 100 return (returnInfo is the officer's reason)."""

    msg_type = DECISION

    def apply(self, ctx: ApplyContext, record: Record) -> RecordOutcome:
        assert ctx.router is not None
        authority = DECIDING_ROLES.get(ctx.partner.role)
        if authority is None:
            raise RecordRejected(LIST_INVALID, f"partner {ctx.partner.id} may not decide on lists")
        row = find(ctx.conn, pre_no=record.get("preNo"), invt_no=record.get("invtNo"))
        if row is None:
            raise RecordRejected(
                LIST_INVALID,
                f"no list with preNo {record.get('preNo')!r} / invtNo {record.get('invtNo')!r}",
            )
        decision = DECISION_BY_STATUS.get(record.get("returnStatus"))
        if decision is None:
            raise RecordRejected(
                LIST_INVALID,
                f"returnStatus {record.get('returnStatus')!r} is not a decision "
                "(399 pass, 500 inspect, 800 release, 100 return)",
            )
        desk = Desk(ctx.conn, ctx.router, ctx.now, actor=ctx.partner.id)
        row = manual.decide(desk, row, authority, decision, record.get("returnInfo"))
        # The agent hears of it through the lifecycle's receipts; customs gets no answer.
        return RecordOutcome(accepted=True, record_id=row.id)


DECISION_HANDLER = DecisionHandler()
