"""The catalogue of CEB import message types: roots, entities, keys, receipts and codes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from hub import codes


class Kind(StrEnum):
    """Which way a message type travels."""

    DECLARATION = "declaration"  # enterprise to customs, answered by a receipt
    RECEIPT = "receipt"  # customs / e-port to enterprise
    CUSTOMS = "customs"  # customs-issued documents (tax bills)
    FORMAT = "format"  # the CEB900 format-error receipt


class SignaturePolicy(StrEnum):
    """What the spec's XSD says of `ds:Signature` on a message type."""

    REQUIRED = "required"  # 621, 623, 625, 711
    OPTIONAL = "optional"  # 311, 411, 511, 513
    NONE = "none"  # receipts carry no signature


@dataclass(frozen=True)
class TypeCodes:
    """The negative returnStatus codes one declaration type answers with."""

    exists: str  # appType 1 for a key that is already stored
    unknown: str  # appType 2/3 for a key that is not stored
    declared: str  # change refused: the record is bound to a declared list
    stale: str  # older than the stored version: ignored
    too_many: str  # over 100 records in one message
    parameter: str  # generic parameter check
    signature_invalid: str
    digest_mismatch: str
    not_permitted: str  # declarant / transmitter code not the partner's


@dataclass(frozen=True)
class MessageType:
    """One CEB message type as the hub needs to know it."""

    code: str  # "311"
    root: str  # "CEB311Message"
    kind: Kind
    record: str  # the repeated business entity under the root ("Order", "LogisticsStatus")
    head: str | None = None  # the head inside the record, if it is a container
    body: str | None = None  # the repeated line inside the record
    keys: tuple[str, ...] = ()  # business key fields of the head
    receipt: str | None = None  # root of the receipt that answers it
    receipt_entity: str | None = None  # the entity inside that receipt
    receipt_keys: tuple[str, ...] = ()  # key fields echoed in the receipt entity, in order
    signature: SignaturePolicy = SignaturePolicy.NONE
    codes: TypeCodes | None = None
    max_records: int = 100
    table: str | None = None  # store table of its records
    declarant: tuple[str, ...] = ()  # head fields of which one must be a code of the sender


def _codes(
    exists: str,
    unknown: str,
    declared: str,
    stale: str,
    too_many: str,
    parameter: str,
    signature_invalid: str = codes.SIGNATURE_INVALID,
    digest_mismatch: str = codes.SIGNATURE_MISMATCH,
    not_permitted: str = codes.ENTERPRISE_CODE_INVALID,
) -> TypeCodes:
    return TypeCodes(
        exists, unknown, declared, stale, too_many, parameter,
        signature_invalid, digest_mismatch, not_permitted,
    )  # fmt: skip


ORDER = MessageType(
    code="311",
    root="CEB311Message",
    kind=Kind.DECLARATION,
    record="Order",
    head="OrderHead",
    body="OrderList",
    keys=("ebpCode", "orderNo"),
    receipt="CEB312Message",
    receipt_entity="OrderReturn",
    receipt_keys=("ebpCode", "ebcCode", "orderNo"),
    signature=SignaturePolicy.OPTIONAL,
    codes=_codes(
        exists=codes.ORDER_EXISTS,
        unknown=codes.ORDER_UNKNOWN,
        declared=codes.ORDER_DECLARED,
        stale=codes.ORDER_STALE,
        too_many=codes.ORDER_TOO_MANY,
        parameter=codes.ORDER_PARAMETER,
    ),
    table="orders",
    declarant=("ebpCode", "ebcCode"),
)

PAYMENT = MessageType(
    code="411",
    root="CEB411Message",
    kind=Kind.DECLARATION,
    record="Payment",
    head="PaymentHead",
    keys=("payCode", "payTransactionId"),
    receipt="CEB412Message",
    receipt_entity="PaymentReturn",
    receipt_keys=("payCode", "payTransactionId"),
    signature=SignaturePolicy.OPTIONAL,
    codes=_codes(
        exists=codes.PAYMENT_EXISTS,
        unknown=codes.PAYMENT_PARAMETER,
        declared=codes.PAYMENT_DECLARED,
        stale=codes.PAYMENT_STALE,
        too_many=codes.PAYMENT_TOO_MANY,
        parameter=codes.PAYMENT_PARAMETER,
    ),
    table="payments",
    declarant=("payCode",),
)

WAYBILL = MessageType(
    code="511",
    root="CEB511Message",
    kind=Kind.DECLARATION,
    record="Logistics",
    head="LogisticsHead",
    keys=("logisticsCode", "logisticsNo"),
    receipt="CEB512Message",
    receipt_entity="LogisticsReturn",
    receipt_keys=("logisticsCode", "logisticsNo"),
    signature=SignaturePolicy.OPTIONAL,
    codes=_codes(
        exists=codes.WAYBILL_EXISTS,
        unknown=codes.WAYBILL_PARAMETER,
        declared=codes.WAYBILL_DECLARED,
        stale=codes.WAYBILL_PARAMETER,
        too_many=codes.WAYBILL_TOO_MANY,
        parameter=codes.WAYBILL_PARAMETER,
    ),
    table="waybills",
    declarant=("logisticsCode",),
)

WAYBILL_STATUS = MessageType(
    code="513",
    root="CEB513Message",
    kind=Kind.DECLARATION,
    record="LogisticsStatus",
    keys=("logisticsCode", "logisticsNo"),
    receipt="CEB514Message",
    receipt_entity="LogisticsStatusReturn",
    receipt_keys=("logisticsCode", "logisticsNo", "logisticsStatus"),
    signature=SignaturePolicy.OPTIONAL,
    codes=_codes(
        exists=codes.WAYBILL_STATUS_EXISTS,
        unknown=codes.WAYBILL_STATUS_PARAMETER,
        declared=codes.WAYBILL_STATUS_PARAMETER,
        stale=codes.WAYBILL_STATUS_PARAMETER,
        too_many=codes.WAYBILL_STATUS_PARAMETER,
        parameter=codes.WAYBILL_STATUS_PARAMETER,
    ),
    table="waybill_statuses",
    declarant=("logisticsCode",),
)

LIST = MessageType(
    code="621",
    root="CEB621Message",
    kind=Kind.DECLARATION,
    record="Inventory",
    head="InventoryHead",
    body="InventoryList",
    keys=("agentCode", "copNo"),
    receipt="CEB622Message",
    receipt_entity="InventoryReturn",
    receipt_keys=("customsCode", "ebpCode", "ebcCode", "agentCode", "copNo", "preNo", "invtNo"),
    signature=SignaturePolicy.REQUIRED,
    codes=_codes(
        exists=codes.LIST_DECLARED,
        unknown=codes.LIST_INVALID,
        declared=codes.LIST_DECLARED,
        stale=codes.LIST_INVALID,
        too_many=codes.LIST_TOO_MANY,
        parameter=codes.LIST_INVALID,
        signature_invalid=codes.LIST_SIGNATURE_INVALID,
        digest_mismatch=codes.LIST_DIGEST_MISMATCH,
        not_permitted=codes.LIST_NOT_PERMITTED,
    ),
    table="lists",
    declarant=("agentCode",),
)

CANCEL = MessageType(
    code="623",
    root="CEB623Message",
    kind=Kind.DECLARATION,
    record="InvtCancel",
    keys=("agentCode", "invtNo"),
    receipt="CEB624Message",
    receipt_entity="InvtCancelReturn",
    receipt_keys=("customsCode", "agentCode", "ebpCode", "ebcCode", "copNo", "preNo", "invtNo"),
    signature=SignaturePolicy.REQUIRED,
    codes=_codes(
        exists=codes.CANCEL_DECLARED,
        unknown=codes.CANCEL_LIST_UNKNOWN,
        declared=codes.CANCEL_DECLARED,
        stale=codes.CANCEL_STATE,
        too_many=codes.CANCEL_STATE,
        parameter=codes.CANCEL_STATE,
        signature_invalid=codes.CANCEL_SIGNATURE_INVALID,
        digest_mismatch=codes.CANCEL_SIGNATURE_INVALID,
        not_permitted=codes.LIST_NOT_PERMITTED,
    ),
    table="cancellations",
    declarant=("agentCode", "ebcCode"),
)

REFUND = MessageType(
    code="625",
    root="CEB625Message",
    kind=Kind.DECLARATION,
    record="InvtRefund",
    head="InvtRefundHead",
    body="InvtRefundList",
    keys=("agentCode", "invtNo"),
    receipt="CEB626Message",
    receipt_entity="InvtRefundReturn",
    receipt_keys=("customsCode", "agentCode", "ebpCode", "ebcCode", "copNo", "preNo", "invtNo"),
    signature=SignaturePolicy.REQUIRED,
    codes=_codes(
        exists=codes.REFUND_NOT_IN_LIST,
        unknown=codes.REFUND_NOT_IN_LIST,
        declared=codes.REFUND_NOT_IN_LIST,
        stale=codes.REFUND_NOT_IN_LIST,
        too_many=codes.REFUND_NOT_IN_LIST,
        parameter=codes.REFUND_LINE_UNKNOWN,
        signature_invalid=codes.REFUND_SIGNATURE_INVALID,
        digest_mismatch=codes.REFUND_DIGEST_MISMATCH,
        not_permitted=codes.REFUND_NOT_PERMITTED,
    ),
    table="refunds",
    declarant=("agentCode", "ebcCode"),
)

ENTRY = MessageType(
    code="711",
    root="CEB711Message",
    kind=Kind.DECLARATION,
    record="Delivery",
    head="DeliveryHead",
    body="DeliveryList",
    keys=("operatorCode", "copNo"),
    receipt="CEB712Message",
    receipt_entity="DeliveryReturn",
    receipt_keys=("customsCode", "operatorCode", "copNo", "preNo", "rkdNo"),
    signature=SignaturePolicy.REQUIRED,
    codes=_codes(
        exists=codes.ENTRY_EXISTS,
        unknown=codes.ENTRY_PARAMETER,
        declared=codes.ENTRY_PARAMETER,
        stale=codes.ENTRY_STALE,
        too_many=codes.ENTRY_PARAMETER,
        parameter=codes.ENTRY_PARAMETER,
    ),
    max_records=1,
    table="entries",
    declarant=("operatorCode",),
)


def _receipt(code: str, root: str, entity: str) -> MessageType:
    return MessageType(code=code, root=root, kind=Kind.RECEIPT, record=entity)


RECEIPTS = (
    _receipt("312", "CEB312Message", "OrderReturn"),
    _receipt("412", "CEB412Message", "PaymentReturn"),
    _receipt("512", "CEB512Message", "LogisticsReturn"),
    _receipt("514", "CEB514Message", "LogisticsStatusReturn"),
    _receipt("622", "CEB622Message", "InventoryReturn"),
    _receipt("624", "CEB624Message", "InvtCancelReturn"),
    _receipt("626", "CEB626Message", "InvtRefundReturn"),
    _receipt("712", "CEB712Message", "DeliveryReturn"),
)
TAX_BILL = MessageType(
    code="816", root="CEB816Message", kind=Kind.CUSTOMS, record="Tax", head="TaxHeadRd",
    body="TaxListRd",
)  # fmt: skip
TAX_STATUS = MessageType(
    code="818", root="CEB818Message", kind=Kind.CUSTOMS, record="Tax", head="TaxHeadStatus"
)
FORMAT_RECEIPT = MessageType(
    code="900", root="CEB900Message", kind=Kind.FORMAT, record="MessageReturn"
)

DECLARATIONS = (ORDER, PAYMENT, WAYBILL, WAYBILL_STATUS, LIST, CANCEL, REFUND, ENTRY)
ALL_TYPES = (*DECLARATIONS, *RECEIPTS, TAX_BILL, TAX_STATUS, FORMAT_RECEIPT)
BY_ROOT: dict[str, MessageType] = {t.root: t for t in ALL_TYPES}

# The receipt type as a message customs sends us: answered, if refused, by a CEB622 back.
DECISION = replace(
    BY_ROOT["CEB622Message"],
    receipt="CEB622Message",
    receipt_entity="InventoryReturn",
    receipt_keys=LIST.receipt_keys,
    signature=SignaturePolicy.NONE,
    codes=LIST.codes,
    table="lists",
)
# What the hub accepts from partners, by root: every declaration, and decisions (which the
# checks take from customs and inspection only). hub.handlers has a handler for each.
HANDLED: dict[str, MessageType] = {t.root: t for t in (*DECLARATIONS, DECISION)}


def by_root(root: str) -> MessageType | None:
    """The message type whose root element has this local name, if we know it."""
    return BY_ROOT.get(root)
