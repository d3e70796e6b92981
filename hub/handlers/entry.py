"""Warehouse-entry details (CEB711): one Delivery per message, stored under (operatorCode, copNo)."""

from __future__ import annotations

from typing import Any

from hub.errors import RecordRejected
from hub.handlers.base import ApplyContext, KeyedRecordHandler, RecordOutcome
from hub.messages.records import Record
from hub.messages.types import ENTRY
from hub.store.tables import entries


def entry_columns(record: Record) -> dict[str, Any]:
    return {
        "customs_code": record.get("customsCode") or None,
        "bill_no": record.get("billNo") or None,
    }


class EntryHandler(KeyedRecordHandler):
    """The keyed appType rules; copNo is optional in the XSD but it is half of our key."""

    def apply(self, ctx: ApplyContext, record: Record) -> RecordOutcome:
        if not record.get("copNo"):
            raise RecordRejected(
                self.codes.parameter,
                "DeliveryHead/copNo is empty: the entry is identified by operatorCode + copNo",
            )
        return super().apply(ctx, record)


ENTRY_HANDLER = EntryHandler(ENTRY, entries, ("operator_code", "cop_no"), entry_columns)
