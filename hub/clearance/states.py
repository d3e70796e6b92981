"""The declaration list's lifecycle (design §6): its states and the one transition table."""

from __future__ import annotations

from enum import StrEnum

from hub.codes import Status


class ListState(StrEnum):
    """Where a declaration list (CEB621) is; the value is stored in `lists.state`."""

    TEMPORARY = "temporary"  # saved with appStatus 1 (暂存); the agent may modify, delete, declare
    DECLARED = "declared"  # declared (申报中); routed to customs, waiting for the delivery
    SENT = "sent"  # delivered to customs (发送海关成功); in or waiting for electronic review
    RETURNED = "returned"  # electronic or manual review failed (退单); may be modified again
    ACCEPTED = "accepted"  # passed electronic review (入库); invtNo assigned, tax debited
    MANUAL_REVIEW = "manual_review"  # a risk rule fired (人工审核); officers decide
    CONCLUDED = "concluded"  # review passed (审结)
    INSPECTION = "inspection"  # an officer ordered physical inspection (查验)
    RELEASED = "released"  # every authority it was routed to released it (放行)
    CLOSED = "closed"  # nothing pending after release (结关)
    REFUNDED = "refunded"  # goods (partly) returned by an approved CEB625 after release
    CANCELLED = "cancelled"  # withdrawn by an approved CEB623
    DELETED = "deleted"  # deleted by appType 3 or `cebhub list-delete`; its copNo may be reused


# The CEB622 returnStatus each state is announced with; states without one answer otherwise
# (deletion in the CEB622 of the delete message, cancellation in CEB624, refund in CEB626).
RECEIPT_STATUS: dict[ListState, Status] = {
    ListState.TEMPORARY: Status.TEMPORARY,
    ListState.DECLARED: Status.DECLARING,
    ListState.SENT: Status.SENT,
    ListState.RETURNED: Status.RETURNED,
    ListState.ACCEPTED: Status.ACCEPTED,
    ListState.MANUAL_REVIEW: Status.MANUAL_REVIEW,
    ListState.CONCLUDED: Status.CONCLUDED,
    ListState.INSPECTION: Status.INSPECTION,
    ListState.RELEASED: Status.RELEASED,
    ListState.CLOSED: Status.CLOSED,
}

S = ListState
# The only moves a list can make; `lifecycle.move` refuses anything else. None = not yet stored.
TRANSITIONS: dict[ListState | None, frozenset[ListState]] = {
    None: frozenset({S.TEMPORARY, S.DECLARED}),
    S.TEMPORARY: frozenset({S.TEMPORARY, S.DECLARED, S.DELETED}),
    S.RETURNED: frozenset({S.TEMPORARY, S.DECLARED, S.DELETED}),
    S.DELETED: frozenset({S.TEMPORARY, S.DECLARED}),  # the same copNo declared anew
    S.DECLARED: frozenset({S.SENT}),
    S.SENT: frozenset({S.ACCEPTED, S.RETURNED}),
    S.ACCEPTED: frozenset({S.MANUAL_REVIEW, S.CONCLUDED, S.CANCELLED}),
    S.MANUAL_REVIEW: frozenset({S.CONCLUDED, S.INSPECTION, S.RETURNED, S.CANCELLED}),
    S.CONCLUDED: frozenset({S.INSPECTION, S.RELEASED, S.RETURNED, S.CANCELLED}),
    S.INSPECTION: frozenset({S.RELEASED, S.RETURNED, S.CANCELLED}),
    S.RELEASED: frozenset({S.CLOSED, S.REFUNDED, S.CANCELLED}),
    S.CLOSED: frozenset({S.REFUNDED, S.CANCELLED}),
    S.REFUNDED: frozenset({S.REFUNDED}),  # a further partial refund
    S.CANCELLED: frozenset(),
}

# The agent may still change these (appType 2/3) and declare them.
EDITABLE = frozenset({S.TEMPORARY, S.RETURNED})
# Lists that count towards the buyer's year total and hold tax on the guarantee.
COUNTED = frozenset(
    {S.ACCEPTED, S.MANUAL_REVIEW, S.CONCLUDED, S.INSPECTION, S.RELEASED, S.CLOSED, S.REFUNDED}
)
# Officers may decide on lists in these states.
UNDER_REVIEW = frozenset({S.MANUAL_REVIEW, S.CONCLUDED, S.INSPECTION})
# A CEB623 cancellation may withdraw lists in these states (-623005 otherwise).
CANCELLABLE = frozenset(
    {S.ACCEPTED, S.MANUAL_REVIEW, S.CONCLUDED, S.INSPECTION, S.RELEASED, S.CLOSED}
)
# A CEB625 refund needs a released list.
REFUNDABLE = frozenset({S.RELEASED, S.CLOSED, S.REFUNDED})


class Authority(StrEnum):
    """Who may decide on a list in manual review."""

    CUSTOMS = "customs"
    INSPECTION = "inspection"


class Decision(StrEnum):
    """An officer's decision (design §6 review queue)."""

    PASS = "pass"  # review passed → concluded once every authority passed
    INSPECT = "inspect"  # physical inspection
    RELEASE = "release"  # released by this authority → released once every authority did
    RETURN = "return"  # returned with the officer's reason


# A decision message (CEB622 from customs / inspection) names its decision by returnStatus.
DECISION_BY_STATUS: dict[str, Decision] = {
    Status.CONCLUDED: Decision.PASS,
    Status.INSPECTION: Decision.INSPECT,
    Status.RELEASED: Decision.RELEASE,
    Status.RETURNED: Decision.RETURN,
}
