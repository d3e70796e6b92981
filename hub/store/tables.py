"""SQLAlchemy Core tables: messages, business records, receipts and deliveries."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")
Money = Numeric(19, 5)
When = DateTime(timezone=True)


def _id() -> Column:
    return Column("id", Id, primary_key=True, autoincrement=True)


messages = Table(
    "messages",
    metadata,
    _id(),
    Column("partner_id", String(64), nullable=False),
    Column("claim", String(255), nullable=False, unique=True),  # recognises a restart
    Column("file_name", String(255), nullable=False),  # as the partner named it
    # Of the bytes received, for the record: duplicates are found by partner, type and guid,
    # which the same bytes always share (every accepted message has its XSD-required guid).
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("msg_type", String(32), nullable=False),  # root name or "Unknown"
    Column("guid", String(64)),
    Column("cop_msg_id", String(255)),  # DXP CopMsgId when enveloped
    Column("schema_set", String(32)),
    Column("state", String(16), nullable=False),  # MessageState
    Column("return_status", String(10)),
    Column("return_info", Text),
    Column("signed_by", String(128)),  # key name of the certificate that verified
    Column("received_at", When, nullable=False),
    Column("processed_at", When, nullable=False),
    Column("body", LargeBinary),  # the CEB message exactly as verified and processed
    Index(
        "ux_messages_accepted_guid",
        "partner_id",
        "msg_type",
        "guid",
        unique=True,
        sqlite_where=text("state = 'accepted'"),
        postgresql_where=text("state = 'accepted'"),
    ),
)


def _record_columns() -> list[Column]:
    """Columns every business record shares."""
    return [
        _id(),
        Column("guid", String(36), nullable=False),
        Column("state", String(16), nullable=False),  # RecordState
        Column("app_status", String(3), nullable=False),
        Column("app_time", String(14), nullable=False),
        Column("return_status", String(10)),  # last receipt status
        Column("partner_id", String(64), nullable=False),
        Column("message_id", Id, ForeignKey("messages.id"), nullable=False),
        Column("created_at", When, nullable=False),
        Column("updated_at", When, nullable=False),
        Column("head", JSON, nullable=False),  # every head field, as text, spec names
        Column("lines", JSON, nullable=False),  # body lines, as text, spec names
    ]


orders = Table(
    "orders",
    metadata,
    *_record_columns(),
    Column("ebp_code", String(18), nullable=False),
    Column("order_no", String(60), nullable=False),
    Column("ebc_code", String(18), nullable=False),
    Column("buyer_name", String(60)),
    Column("buyer_id_number", String(60)),
    Column("goods_value", Money),
    Column("actural_paid", Money),
    UniqueConstraint("ebp_code", "order_no", name="ux_orders_key"),
    Index("ix_orders_updated", "updated_at"),
)

receipts = Table(
    "receipts",
    metadata,
    _id(),
    Column("guid", String(36), nullable=False, index=True),  # of the receipt message
    Column("msg_type", String(32), nullable=False),  # CEB312Message, CEB900Message, …
    Column("partner_id", String(64), nullable=False),  # addressee
    Column("message_id", Id, ForeignKey("messages.id")),  # what caused it
    Column("record_table", String(32)),
    Column("record_id", Id),
    Column("record_key", String(128)),  # the business key it answers, for queries
    Column("record_guid", String(36)),  # the record's own guid, echoed in the entry
    Column("return_status", String(10), nullable=False),
    Column("return_info", Text, nullable=False),
    Column("returned_at", When, nullable=False),
    Index("ix_receipts_record", "record_table", "record_id"),
)

deliveries = Table(
    "deliveries",
    metadata,
    _id(),
    Column("partner_id", String(64), nullable=False),  # destination
    Column("kind", String(16), nullable=False),  # receipt | route
    Column("msg_type", String(32), nullable=False),
    Column("guid", String(64), nullable=False),
    Column("file_name", String(255), nullable=False),
    # Exactly the bytes to deliver; NULL when they are exactly the stored body of the message
    # `message_id` (a route copy without an envelope), read as COALESCE(body, messages.body):
    # the message is then not stored two or three times over (hub.delivery.outbox.BODY).
    Column("body", LargeBinary),
    Column("state", String(16), nullable=False),  # DeliveryState
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", When, nullable=False),
    Column("last_error", Text),
    Column("message_id", Id, ForeignKey("messages.id")),
    Column("created_at", When, nullable=False),
    Column("delivered_at", When),
    UniqueConstraint("partner_id", "file_name", name="ux_deliveries_file"),
    Index("ix_deliveries_due", "state", "next_attempt_at"),
    # The clearance lifecycle looks up a message's routed copies (and whether they are out)
    # every round: without this each lookup scanned the whole table.
    Index("ix_deliveries_message", "message_id", "kind", "state"),
)

payments = Table(
    "payments",
    metadata,
    *_record_columns(),
    Column("pay_code", String(18), nullable=False),
    Column("pay_transaction_id", String(60), nullable=False),
    Column("order_no", String(60), nullable=False),
    Column("ebp_code", String(18), nullable=False),
    Column("payer_name", String(60)),
    Column("payer_id_number", String(60)),
    Column("amount_paid", Money),
    UniqueConstraint("pay_code", "pay_transaction_id", name="ux_payments_key"),
    Index("ix_payments_order", "ebp_code", "order_no"),
)

waybills = Table(
    "waybills",
    metadata,
    *_record_columns(),
    Column("logistics_code", String(18), nullable=False),
    Column("logistics_no", String(60), nullable=False),
    Column("order_no", String(60), nullable=False),
    Column("consignee", String(100)),
    UniqueConstraint("logistics_code", "logistics_no", name="ux_waybills_key"),
    Index("ix_waybills_order", "order_no"),
)

waybill_statuses = Table(
    "waybill_statuses",
    metadata,
    *_record_columns(),
    Column("logistics_code", String(18), nullable=False),
    Column("logistics_no", String(60), nullable=False),
    Column("logistics_status", String(1), nullable=False),
    Column("logistics_time", String(14)),
    UniqueConstraint("logistics_code", "logistics_no", name="ux_waybill_statuses_key"),
)

entries = Table(
    "entries",
    metadata,
    *_record_columns(),
    Column("operator_code", String(18), nullable=False),
    Column("cop_no", String(20), nullable=False),
    Column("customs_code", String(4)),
    Column("bill_no", String(37)),
    UniqueConstraint("operator_code", "cop_no", name="ux_entries_key"),
)

import hub.clearance.tables  # noqa: E402  (lists, list log, guarantees, tax bills)
import hub.console.tables  # noqa: E402, F401  (console users, tokens, audit join metadata)
