"""Clearance tables: lists and their log, guarantees and ledger, identities, tax bills."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from hub.store.tables import Id, Money, When, _record_columns, metadata

lists = Table(
    "lists",
    metadata,
    *_record_columns(),  # state holds a ListState; return_status the last CEB622 status
    Column("agent_code", String(18), nullable=False),
    Column("cop_no", String(20), nullable=False),
    Column("pre_no", String(18), unique=True),  # assigned by the hub on first save
    Column("invt_no", String(18), unique=True),  # assigned on acceptance (120)
    Column("ebp_code", String(18), nullable=False),
    Column("ebc_code", String(18), nullable=False),
    Column("order_no", String(60), nullable=False),
    Column("logistics_code", String(18), nullable=False),
    Column("logistics_no", String(60), nullable=False),
    Column("assure_code", String(30)),
    Column("customs_code", String(4)),
    Column("buyer_id_number", String(60)),
    Column("buyer_name", String(60)),
    Column("trade_mode", String(4)),
    Column("goods_value", Money),  # sum of the lines' totalPrice
    Column("dutiable_value", Money),  # goods + freight + insurance: the limits' measure
    Column("tax", Money),  # debited from the guarantee while the list counts
    Column("refunded_value", Money, nullable=False, server_default="0"),
    Column("refunded_tax", Money, nullable=False, server_default="0"),
    Column("refunded", JSON),  # {gnum: qty returned so far}
    Column("route_message_id", Id),  # the message routed to customs on declaration
    Column("routed_to", JSON),  # authorities that must release it: ["customs", "inspection"]
    Column("decisions", JSON),  # {authority: last decision}
    Column("subscribers", JSON),  # partner ids from BaseSubscribe that want receipts
    Column("risk_rule", String(64)),  # the rule that sent it to manual review
    Column("waiting_since", When),  # electronic review waits for an order/payment/waybill
    Column("waiting_for", Text),
    Column("return_info", Text),  # last reason given
    Column("year", String(4)),  # of the declaration: the buyer's year total it counts in
    Column("declared_at", When),
    Column("released_at", When),
    UniqueConstraint("agent_code", "cop_no", name="ux_lists_key"),
    Index("ix_lists_state", "state"),
    Index("ix_lists_order", "ebp_code", "order_no"),
    Index("ix_lists_waybill", "logistics_code", "logistics_no"),
    Index("ix_lists_buyer", "buyer_id_number", "year"),
)

list_log = Table(
    "list_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("list_id", Id, ForeignKey("lists.id"), nullable=False, index=True),
    Column("at", When, nullable=False),
    Column("actor", String(64), nullable=False),  # partner id, "customs", "cli", "hub"
    Column("from_state", String(16)),
    Column("to_state", String(16), nullable=False),
    Column("code", String(10)),  # the returnStatus sent, if any
    Column("reason_code", String(16)),  # stable review reason code (R1…R5, L1, L2)
    Column("reason", Text, nullable=False, server_default=""),
)

guarantees = Table(
    "guarantees",
    metadata,
    Column("assure_code", String(30), primary_key=True),
    Column("balance", Money, nullable=False),
    Column("updated_at", When, nullable=False),
)

guarantee_ledger = Table(
    "guarantee_ledger",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("assure_code", String(30), nullable=False, index=True),
    Column("list_id", Id),
    Column("kind", String(16), nullable=False),  # set | debit | restore
    Column("amount", Money, nullable=False),  # signed change of the balance
    Column("at", When, nullable=False),
    Column("note", Text, nullable=False, server_default=""),
)

identities = Table(
    "identities",
    metadata,
    Column("id_number", String(60), primary_key=True),
    Column("name", String(60), nullable=False),
    Column("source", String(64), nullable=False),  # file imported from, or service name
    Column("updated_at", When, nullable=False),
)

tax_bills = Table(
    "tax_bills",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("list_id", Id, ForeignKey("lists.id"), nullable=False, unique=True),
    Column("guid", String(36), nullable=False),
    Column("invt_no", String(18), nullable=False),
    Column("tax_no", String(50), nullable=False, unique=True),
    Column("customs_tax", Money, nullable=False),
    Column("value_added_tax", Money, nullable=False),
    Column("consumption_tax", Money, nullable=False),
    Column("status", String(1), nullable=False),  # 1 generated · 2 summarised · 3 voided
    Column("assure_code", String(64)),
    Column("ebc_code", String(64)),
    Column("logistics_code", String(64)),
    Column("agent_code", String(18)),
    Column("customs_code", String(4)),
    Column("lines", JSON, nullable=False),  # TaxListRd: gnum, gcode, taxPrice, taxes
    Column("created_at", When, nullable=False),
    Column("updated_at", When, nullable=False),
)
