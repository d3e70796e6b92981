"""Per-type business handlers: how each declaration's records change the store."""

from __future__ import annotations

from hub.handlers.base import ApplyContext, Handler, RecordOutcome
from hub.handlers.order import ORDER_HANDLER

HANDLERS: dict[str, Handler] = {h.msg_type.root: h for h in (ORDER_HANDLER,)}

__all__ = ["HANDLERS", "ApplyContext", "Handler", "RecordOutcome"]
