"""Logistics waybills (CEB511): stored under (logisticsCode, logisticsNo)."""

from __future__ import annotations

from typing import Any

from hub.handlers.base import KeyedRecordHandler
from hub.handlers.guards import declared_list_guard, waybill_link
from hub.messages.records import Record
from hub.messages.types import WAYBILL
from hub.store.tables import waybills


def waybill_columns(record: Record) -> dict[str, Any]:
    return {"order_no": record.get("orderNo"), "consignee": record.get("consignee")}


WAYBILL_HANDLER = KeyedRecordHandler(
    WAYBILL,
    waybills,
    ("logistics_code", "logistics_no"),
    waybill_columns,
    guard=declared_list_guard(WAYBILL, waybill_link),
)
