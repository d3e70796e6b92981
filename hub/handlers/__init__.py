"""Per-type business handlers: how each declaration's records change the store."""

from __future__ import annotations

from hub.handlers.base import ApplyContext, Handler, RecordOutcome
from hub.handlers.cancel import CANCEL_HANDLER
from hub.handlers.decision import DECISION_HANDLER
from hub.handlers.entry import ENTRY_HANDLER
from hub.handlers.inventory import INVENTORY_HANDLER
from hub.handlers.order import ORDER_HANDLER
from hub.handlers.payment import PAYMENT_HANDLER
from hub.handlers.refund import REFUND_HANDLER
from hub.handlers.waybill import WAYBILL_HANDLER
from hub.handlers.waybill_status import WAYBILL_STATUS_HANDLER

# One handler per declaration type; add new ones to this tuple.
REGISTERED: tuple[Handler, ...] = (
    ORDER_HANDLER,
    PAYMENT_HANDLER,
    WAYBILL_HANDLER,
    WAYBILL_STATUS_HANDLER,
    ENTRY_HANDLER,
    INVENTORY_HANDLER,
    CANCEL_HANDLER,
    REFUND_HANDLER,
    DECISION_HANDLER,  # CEB622 from customs / inspection only (pipeline identify stage)
)

HANDLERS: dict[str, Handler] = {h.msg_type.root: h for h in REGISTERED}

__all__ = ["HANDLERS", "REGISTERED", "ApplyContext", "Handler", "RecordOutcome"]
