"""Payment vouchers (CEB411): stored under (payCode, payTransactionId)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hub.handlers.base import KeyedRecordHandler
from hub.handlers.guards import declared_list_guard, payment_link
from hub.messages.records import Record
from hub.messages.types import PAYMENT
from hub.store.tables import payments


def payment_columns(record: Record) -> dict[str, Any]:
    amount = record.get("amountPaid")
    return {
        "order_no": record.get("orderNo"),
        "ebp_code": record.get("ebpCode"),
        "payer_name": record.get("payerName"),
        "payer_id_number": record.get("payerIdNumber"),
        "amount_paid": Decimal(amount) if amount else None,
    }


PAYMENT_HANDLER = KeyedRecordHandler(
    PAYMENT,
    payments,
    ("pay_code", "pay_transaction_id"),
    payment_columns,
    guard=declared_list_guard(PAYMENT, payment_link),
)
