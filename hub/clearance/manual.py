"""Manual review: customs and inspection decide on lists a risk rule picked (design §6)."""

from __future__ import annotations

from sqlalchemy import Row, update

from hub.clearance.lifecycle import Desk, get, log, move
from hub.clearance.review import Reason, reason_text
from hub.clearance.states import UNDER_REVIEW, Authority, Decision, ListState
from hub.clearance.tables import lists
from hub.codes import LIST_DECLARED
from hub.errors import RecordRejected

_PASSED = (Decision.PASS.value, Decision.RELEASE.value)


def decide(desk: Desk, row: Row, authority: Authority, decision: Decision, reason: str = "") -> Row:
    """Apply one officer's decision; the list moves when the decisions of all its authorities allow.

    Refused (RecordRejected) when the list is not under review, the authority is not one it
    was routed to, or the decision does not apply to its state.
    """
    state = ListState(row.state)
    if state not in UNDER_REVIEW:
        raise RecordRejected(
            LIST_DECLARED,
            f"list {row.pre_no} is {state}; officers decide on lists in manual review, "
            "concluded or inspection",
        )
    routed = list(row.routed_to or [Authority.CUSTOMS.value])
    if authority.value not in routed:
        raise RecordRejected(
            LIST_DECLARED, f"list {row.pre_no} was routed to {', '.join(routed)}, not {authority}"
        )
    said = f"{authority}: {reason}" if reason else str(authority)
    if decision == Decision.RETURN:
        text = reason_text(Reason.OFFICER, f"{authority}: {reason or 'no reason given'}")
        return move(desk, row, ListState.RETURNED, info=text, reason_code=Reason.OFFICER)
    if decision == Decision.INSPECT:
        if state == ListState.INSPECTION:
            raise RecordRejected(LIST_DECLARED, f"list {row.pre_no} is already in inspection")
        row = _record(desk, row, authority, decision)
        return move(desk, row, ListState.INSPECTION, info=f"查验: ordered by {said}")
    if decision == Decision.PASS and state != ListState.MANUAL_REVIEW:
        raise RecordRejected(
            LIST_DECLARED, f"list {row.pre_no} is {state}; pass applies to lists in manual review"
        )
    row = _record(desk, row, authority, decision)
    decisions = row.decisions or {}
    if state == ListState.MANUAL_REVIEW:
        if all(decisions.get(a) in _PASSED for a in routed):
            row = move(desk, row, ListState.CONCLUDED, info=f"海关审结: review passed ({said})")
        else:
            waiting = [a for a in routed if decisions.get(a) not in _PASSED]
            log(
                desk,
                row.id,
                state,
                state,
                None,
                f"{said} {decision}; waiting for {', '.join(waiting)}",
            )
            return row
    if decision == Decision.RELEASE:
        if all(decisions.get(a) == Decision.RELEASE.value for a in routed):
            row = move(desk, row, ListState.RELEASED, info=f"放行: released by {', '.join(routed)}")
            return move(desk, row, ListState.CLOSED, info="结关")
        if ListState(row.state) != ListState.CONCLUDED or state != ListState.MANUAL_REVIEW:
            waiting = [a for a in routed if decisions.get(a) != Decision.RELEASE.value]
            log(
                desk,
                row.id,
                row.state,
                row.state,
                None,
                f"{said} released; waiting for {', '.join(waiting)}",
            )
    return row


def _record(desk: Desk, row: Row, authority: Authority, decision: Decision) -> Row:
    decisions = dict(row.decisions or {})
    decisions[authority.value] = decision.value
    desk.conn.execute(update(lists).where(lists.c.id == row.id).values(decisions=decisions))
    return get(desk.conn, row.id)
