"""Electronic orders (CEB311): stored under (ebpCode, orderNo)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hub.handlers.base import KeyedRecordHandler
from hub.handlers.guards import declared_list_guard, order_link
from hub.messages.records import Record
from hub.messages.types import ORDER
from hub.store.tables import orders


def _money(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def order_columns(record: Record) -> dict[str, Any]:
    return {
        "ebc_code": record.get("ebcCode"),
        "buyer_name": record.get("buyerName"),
        "buyer_id_number": record.get("buyerIdNumber"),
        "goods_value": _money(record.get("goodsValue")),
        "actural_paid": _money(record.get("acturalPaid")),
    }


ORDER_HANDLER = KeyedRecordHandler(
    ORDER,
    orders,
    ("ebp_code", "order_no"),
    order_columns,
    guard=declared_list_guard(ORDER, order_link),
)
