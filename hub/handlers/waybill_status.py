"""Waybill status (CEB513): one "signed for" status per stored waybill."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from hub import codes
from hub.errors import RecordRejected
from hub.handlers.base import ApplyContext, KeyedRecordHandler, RecordOutcome
from hub.messages.records import Record
from hub.messages.types import WAYBILL_STATUS
from hub.store.prepared import Prepared
from hub.store.states import RecordState
from hub.store.tables import waybill_statuses, waybills


def status_columns(record: Record) -> dict[str, Any]:
    return {
        "logistics_status": record.get("logisticsStatus"),
        "logistics_time": record.get("logisticsTime") or None,
    }


# Once per status record: compiled once, run on the DBAPI cursor.
_ACTIVE_WAYBILL = Prepared(
    select(waybills.c.id).where(
        waybills.c.logistics_code == bindparam("code"),
        waybills.c.logistics_no == bindparam("number"),
        waybills.c.state == RecordState.ACTIVE,
    )
)


class WaybillStatusHandler(KeyedRecordHandler):
    """The keyed appType rules, for a waybill the hub already holds."""

    def apply(self, ctx: ApplyContext, record: Record) -> RecordOutcome:
        code, number = record.get("logisticsCode"), record.get("logisticsNo")
        waybill = _ACTIVE_WAYBILL.first(ctx.conn, {"code": code, "number": number})
        if waybill is None:
            raise RecordRejected(
                codes.WAYBILL_STATUS_PARAMETER,
                f"waybill logisticsCode {code}, logisticsNo {number} not found: "
                "send the CEB511 waybill before its status",
            )
        return super().apply(ctx, record)


WAYBILL_STATUS_HANDLER = WaybillStatusHandler(
    WAYBILL_STATUS,
    waybill_statuses,
    ("logistics_code", "logistics_no"),
    status_columns,
)
