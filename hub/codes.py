"""Every returnStatus code the hub emits, under the spec's meaning (spec §3)."""

from enum import StrEnum


class Status(StrEnum):
    """Positive returnStatus values of business receipts (spec §3.1)."""

    TEMPORARY = "1"  # stored as draft at the e-port (暂存)
    DECLARING = "2"  # accepted by the e-port, being declared (申报中)
    SENT = "3"  # sent to customs (发送海关成功)
    SEND_FAILED = "4"  # sending to customs failed (发送海关失败)
    RETURNED = "100"  # returned by customs (海关退单)
    ACCEPTED = "120"  # stored by customs, logic checks passed (海关入库)
    MANUAL_REVIEW = "300"  # manual review (人工审核)
    CONCLUDED = "399"  # review concluded, tax assessed (海关审结)
    INSPECTION = "500"  # physical inspection (查验)
    DETAINED_CLEARANCE = "501"  # detained, transferred to clearance dept
    DETAINED_SMUGGLING = "502"  # detained, transferred to anti-smuggling
    DETAINED_LEGAL = "503"  # detained, transferred to legal dept
    DETAINED_OTHER = "599"  # other detention
    SHIPPED_BACK = "700"  # returned / shipped back (退运)
    RELEASED = "800"  # released (放行)
    CLOSED = "899"  # closed (结关)


# Format-level codes of CEB900 receipts. The spec only says "negative"; we use the DXP
# response codes of spec §3.3 in negative form so operators can look them up.
FORMAT_ERROR = "-0001"  # not XML, hostile XML, unknown message (DXP 0001)
SCHEMA_ERROR = "-0002"  # fails our XSD (DXP 0002)
OTHER_FORMAT_ERROR = "-0999"  # anything else about the format, e.g. over the size limit (DXP 0999)
SIGNATURE_INVALID = (
    "-1001"  # invalid digital signature, for types without their own code (DXP 1001)
)
SIGNATURE_MISMATCH = "-1004"  # signature does not match data (DXP 1004)
RECEIVER_UNKNOWN = "-2001"  # envelope names a receiver we are not (DXP 2001)
ADDRESS_MISMATCH = "-2002"  # envelope sender is not the partner it came from (DXP 2002)
SYSTEM_ERROR = "-3999"  # the hub failed on this message; it is quarantined for ops (DXP 3999)

# Enterprise codes (spec §3.2).
ENTERPRISE_TYPE_INVALID = "-10101"
ENTERPRISE_CODE_INVALID = "-10102"

# Order, CEB311 (spec §3.2).
ORDER_NO_LINES = "-301001"
ORDER_DUPLICATE_GNUM = "-301002"
ORDER_EMPTY = "-301007"
ORDER_PARAMETER = "-301008"
ORDER_UNKNOWN = "-301009"  # wrong appType: the record to change or delete is not found
ORDER_EXISTS = "-301010"
ORDER_DECLARED = "-301011"  # a list was declared for this order; it may not change
ORDER_STALE = "-301014"
ORDER_TOO_MANY = "-301015"

# Payment, CEB411.
PAYMENT_EXISTS = "-401007"
PAYMENT_DECLARED = "-401008"
PAYMENT_PARAMETER = "-401009"  # also used for a change of an unknown payment
PAYMENT_STALE = "-401012"
PAYMENT_TOO_MANY = "-401013"

# Waybill, CEB511, and waybill status, CEB513.
# The spec publishes no "unknown" or "stale" code for 511: both use the parameter code.
WAYBILL_PARAMETER = "-504000"  # also used for a change of an unknown waybill and a stale one
WAYBILL_EXISTS_OTHER = "-504012"
WAYBILL_TOO_MANY = "-504013"
WAYBILL_EXISTS = "-504015"
WAYBILL_DECLARED = "-504016"
# 513: its waybill not found, an unknown status changed, a stale or over-long message.
WAYBILL_STATUS_PARAMETER = "-505000"
WAYBILL_STATUS_EXISTS = "-505012"

# Declaration list, CEB621.
LIST_EMPTY = "-621000"
LIST_INVALID = "-621001"
LIST_DECLARED = "-621004"  # already declared: state does not allow the change
LIST_SINGLE_LIMIT = "-621005"
LIST_QUOTA_QUERY = "-621013"
LIST_QUOTA_UPDATE = "-621014"
LIST_NOT_PERMITTED = "-621015"  # signer / card does not match the declarant
LIST_ANNUAL_LIMIT = "-621018"
LIST_DUPLICATE_GNUM = "-621027"
LIST_DIGEST_MISMATCH = "-621028"
LIST_SIGNATURE_INVALID = "-621029"
LIST_TOO_MANY = "-621030"

# Cancellation, CEB623.
CANCEL_LIST_UNKNOWN = "-623003"
CANCEL_STATE = "-623005"
CANCEL_DECLARED = "-623009"
CANCEL_NO_REASON = "-623012"
CANCEL_SIGNATURE_INVALID = "-623029"

# Refund (return request), CEB625.
REFUND_SIGNATURE_INVALID = "-625005"
REFUND_LINE_UNKNOWN = "-625007"
REFUND_QTY2_RULE = "-625009"
REFUND_NOT_PERMITTED = "-625013"
REFUND_SINGLE_LIMIT = "-625014"
REFUND_BUYER_LIMIT = "-625015"
REFUND_DIGEST_MISMATCH = "-625208"
REFUND_NOT_IN_LIST = "-625209"
# The spec's 625 range names no code for these two; we use free numbers of that range.
REFUND_LIST_STATE = "-625001"  # the list is not released, or was released too long ago
REFUND_QTY_OVER = "-625002"  # a returned quantity exceeds what is left of the declared one

# Warehouse entry, CEB711.
ENTRY_PARAMETER = "-800000"  # also: unknown entry changed, copNo missing, more than 1 Delivery
ENTRY_EXISTS = "-800003"
ENTRY_STALE = "-800005"
