"""Build CEB import declarations (311…711) from purchases, fields in the spec's (XSD) order."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from lxml import etree

from hub import clock as hub_clock
from hub.constants import CURRENCY_CNY, DXP_MODE, MAX_RECORDS_PER_MESSAGE, NSMAP_CEB, ceb
from hub.generator.parties import Parties, Role
from hub.generator.purchase import Line, Purchase, Value

Signer = Callable[[etree._Element], etree._Element]
Clock = Callable[[], datetime]
Fields = list[tuple[str, Value]]

ID_TYPE_RESIDENT = "1"  # spec §2.2: buyerIdType / payerIdType restricted to 1
ORDER_TYPE_IMPORT = "I"
IE_IMPORT = "I"
PACK_ONE = 1  # spec: packNo fixed 1 per waybill / list
STATUS_SIGNED = "S"  # the only logisticsStatus
DEFAULT_CANCEL_REASON = "消费者取消订单"
DEFAULT_REFUND_REASON = "消费者七天无理由退货"
GOODS_INFO_MAX = 200  # LogisticsHead/goodsInfo C..200


@dataclass(frozen=True)
class _Stamp:
    """What every record head of one message shares, and where its guids come from."""

    app_type: str
    app_status: str
    now: datetime
    rng: random.Random | None

    @property
    def app_time(self) -> str:
        return hub_clock.stamp14(self.now)

    def guid(self) -> str:
        if self.rng is None:
            return str(uuid.uuid4()).upper()
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4)).upper()

    def head(self) -> Fields:
        return [
            ("guid", self.guid()),
            ("appType", self.app_type),
            ("appTime", self.app_time),
            ("appStatus", self.app_status),
        ]


def to_bytes(root: etree._Element) -> bytes:
    """UTF-8 with an XML declaration and no added whitespace (signatures cover the bytes)."""
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(root, encoding="UTF-8")


def _text(value: Value) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _entity(
    parent: etree._Element, tag: str, fields: Fields, overrides: Mapping[str, Value]
) -> etree._Element:
    """Append `tag` with its fields in order; overrides replace values, None leaves one out."""
    unknown = set(overrides) - {name for name, _ in fields}
    if unknown:
        raise ValueError(f"{tag} has no field {sorted(unknown)}")
    el = etree.SubElement(parent, ceb(tag))
    for name, value in fields:
        value = overrides.get(name, value)
        if value is not None:
            etree.SubElement(el, ceb(name)).text = _text(value)
    return el


def _root(name: str, stamp: _Stamp) -> etree._Element:
    root = etree.Element(ceb(name), nsmap=NSMAP_CEB)
    root.set("guid", stamp.guid())
    root.set("version", "1.0")
    return root


def _base_transfer(root: etree._Element, parties: Parties, sender: Role) -> None:
    code, name, dxp_id = parties.transmitter(sender)
    fields: Fields = [
        ("copCode", code),
        ("copName", name),
        ("dxpMode", DXP_MODE),
        ("dxpId", dxp_id),
    ]
    _entity(root, "BaseTransfer", fields, {})


def _finish(
    root: etree._Element, parties: Parties, sender: Role, sign: Signer | None
) -> etree._Element:
    _base_transfer(root, parties, sender)
    return sign(root) if sign else root


def _check_count(purchases: Sequence[Purchase], limit: int = MAX_RECORDS_PER_MESSAGE) -> None:
    if not 1 <= len(purchases) <= limit:
        raise ValueError(f"a message carries 1..{limit} records, not {len(purchases)}")


def _stamp(
    app_type: str, app_status: str, clock: Clock | None, rng: random.Random | None
) -> _Stamp:
    return _Stamp(app_type, app_status, (clock or hub_clock.utcnow)(), rng)


def batches(
    purchases: Sequence[Purchase], size: int = MAX_RECORDS_PER_MESSAGE
) -> Iterator[list[Purchase]]:
    """Split purchases into message-sized groups."""
    for start in range(0, len(purchases), size):
        yield list(purchases[start : start + size])


# ---------------------------------------------------------------- CEB311 order


def _order_head(p: Purchase, parties: Parties, stamp: _Stamp) -> Fields:
    return [
        *stamp.head(),
        ("orderType", ORDER_TYPE_IMPORT),
        ("orderNo", p.order_no),
        ("ebpCode", parties.ebp_code),
        ("ebpName", parties.ebp_name),
        ("ebcCode", parties.ebc_code),
        ("ebcName", parties.ebc_name),
        ("goodsValue", p.goods_value),
        ("freight", p.freight),
        ("discount", p.discount),
        ("taxTotal", p.tax_total),
        ("acturalPaid", p.actural_paid),
        ("currency", CURRENCY_CNY),
        ("buyerRegNo", p.buyer_reg_no),
        ("buyerName", p.buyer.name),
        ("buyerTelephone", p.buyer.telephone),
        ("buyerIdType", ID_TYPE_RESIDENT),
        ("buyerIdNumber", p.buyer.id_number),
        ("payCode", parties.pay_code),
        ("payName", parties.pay_name),
        ("payTransactionId", p.pay_transaction_id),
        ("batchNumbers", None),
        ("consignee", p.consignee.name),
        ("consigneeTelephone", p.consignee.telephone),
        ("consigneeAddress", p.consignee.address),
        ("consigneeDistrict", p.consignee.district),
        ("note", None),
    ]


def _order_line(line: Line) -> Fields:
    return [
        ("gnum", line.gnum),
        ("itemNo", line.item_no),
        ("itemName", line.item_name),
        ("gmodel", line.gmodel),
        ("itemDescribe", None),
        ("barCode", line.bar_code),
        ("unit", line.unit),
        ("qty", line.qty),
        ("price", line.price),
        ("totalPrice", line.total_price),
        ("currency", CURRENCY_CNY),
        ("country", line.country),
        ("note", None),
    ]


def order_message(
    purchases: Sequence[Purchase],
    parties: Parties,
    *,
    app_type: str = "1",
    app_status: str = "2",
    clock: Clock | None = None,
    rng: random.Random | None = None,
    sign: Signer | None = None,
    sender: Role = Role.PLATFORM,
) -> etree._Element:
    """CEB311Message: one Order (head + lines) per purchase."""
    _check_count(purchases)
    stamp = _stamp(app_type, app_status, clock, rng)
    root = _root("CEB311Message", stamp)
    for p in purchases:
        order = etree.SubElement(root, ceb("Order"))
        _entity(order, "OrderHead", _order_head(p, parties, stamp), p.overrides_for("OrderHead"))
        for line in p.lines:
            _entity(order, "OrderList", _order_line(line), p.overrides_for("OrderList", line.gnum))
    return _finish(root, parties, sender, sign)


# ---------------------------------------------------------------- CEB411 payment


def _payment_head(p: Purchase, parties: Parties, stamp: _Stamp) -> Fields:
    return [
        *stamp.head(),
        ("payCode", parties.pay_code),
        ("payName", parties.pay_name),
        ("payTransactionId", p.pay_transaction_id),
        ("orderNo", p.order_no),
        ("ebpCode", parties.ebp_code),
        ("ebpName", parties.ebp_name),
        ("payerIdType", ID_TYPE_RESIDENT),
        ("payerIdNumber", p.payer.id_number),
        ("payerName", p.payer.name),
        ("telephone", p.payer.telephone),
        ("amountPaid", p.actural_paid),
        ("currency", CURRENCY_CNY),
        ("payTime", hub_clock.stamp14(p.paid_at)),
        ("note", None),
    ]


def payment_message(
    purchases: Sequence[Purchase],
    parties: Parties,
    *,
    app_type: str = "1",
    app_status: str = "2",
    clock: Clock | None = None,
    rng: random.Random | None = None,
    sign: Signer | None = None,
    sender: Role = Role.PAYMENT,
) -> etree._Element:
    """CEB411Message: one Payment (head only) per purchase."""
    _check_count(purchases)
    stamp = _stamp(app_type, app_status, clock, rng)
    root = _root("CEB411Message", stamp)
    for p in purchases:
        payment = etree.SubElement(root, ceb("Payment"))
        fields = _payment_head(p, parties, stamp)
        _entity(payment, "PaymentHead", fields, p.overrides_for("PaymentHead"))
    return _finish(root, parties, sender, sign)


# ---------------------------------------------------------------- CEB511 waybill, 513 status


def goods_info(p: Purchase) -> str:
    """LogisticsHead/goodsInfo: main goods and quantities, cut to the field's 200 chars."""
    text = ";".join(f"{line.item_name}*{_text(line.qty)}" for line in p.lines)
    return text[:GOODS_INFO_MAX]


def _waybill_head(p: Purchase, parties: Parties, stamp: _Stamp) -> Fields:
    return [
        *stamp.head(),
        ("logisticsCode", parties.logistics_code),
        ("logisticsName", parties.logistics_name),
        ("logisticsNo", p.logistics_no),
        ("billNo", p.shipment.bill_no if p.shipment else None),
        ("orderNo", p.order_no),
        ("freight", p.freight),
        ("insuredFee", p.insured_fee),
        ("currency", CURRENCY_CNY),
        ("weight", p.gross_weight),
        ("packNo", PACK_ONE),
        ("goodsInfo", goods_info(p)),
        ("consignee", p.consignee.name),
        ("consigneeAddress", p.consignee.address),
        ("consigneeTelephone", p.consignee.telephone),
        ("note", None),
    ]


def waybill_message(
    purchases: Sequence[Purchase],
    parties: Parties,
    *,
    app_type: str = "1",
    app_status: str = "2",
    clock: Clock | None = None,
    rng: random.Random | None = None,
    sign: Signer | None = None,
    sender: Role = Role.LOGISTICS,
) -> etree._Element:
    """CEB511Message: one Logistics (head only) per purchase."""
    _check_count(purchases)
    stamp = _stamp(app_type, app_status, clock, rng)
    root = _root("CEB511Message", stamp)
    for p in purchases:
        logistics = etree.SubElement(root, ceb("Logistics"))
        fields = _waybill_head(p, parties, stamp)
        _entity(logistics, "LogisticsHead", fields, p.overrides_for("LogisticsHead"))
    return _finish(root, parties, sender, sign)


def waybill_status_message(
    purchases: Sequence[Purchase],
    parties: Parties,
    *,
    app_type: str = "1",
    app_status: str = "2",
    signed_at: datetime | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    sign: Signer | None = None,
    sender: Role = Role.LOGISTICS,
) -> etree._Element:
    """CEB513Message: one LogisticsStatus "S" (signed for) per purchase, at `signed_at` or now."""
    _check_count(purchases)
    stamp = _stamp(app_type, app_status, clock, rng)
    root = _root("CEB513Message", stamp)
    logistics_time = hub_clock.stamp14(signed_at or stamp.now)
    for p in purchases:
        fields: Fields = [
            *stamp.head(),
            ("logisticsCode", parties.logistics_code),
            ("logisticsName", parties.logistics_name),
            ("logisticsNo", p.logistics_no),
            ("logisticsStatus", STATUS_SIGNED),
            ("logisticsTime", logistics_time),
            ("note", None),
        ]
        _entity(root, "LogisticsStatus", fields, p.overrides_for("LogisticsStatus"))
    return _finish(root, parties, sender, sign)


# ---------------------------------------------------------------- CEB621 list


def _list_head(p: Purchase, parties: Parties, stamp: _Stamp) -> Fields:
    bonded, ship = p.is_bonded, p.shipment
    return [
        *stamp.head(),
        ("orderNo", p.order_no),
        ("ebpCode", parties.ebp_code),
        ("ebpName", parties.ebp_name),
        ("ebcCode", parties.ebc_code),
        ("ebcName", parties.ebc_name),
        ("logisticsNo", p.logistics_no),
        ("logisticsCode", parties.logistics_code),
        ("logisticsName", parties.logistics_name),
        ("copNo", p.cop_no),
        ("preNo", p.pre_no),
        ("assureCode", parties.assure_code),
        ("emsNo", parties.ems_no if bonded else None),
        ("invtNo", p.invt_no),
        ("ieFlag", IE_IMPORT),
        ("declTime", hub_clock.stamp8(stamp.now)),
        ("customsCode", parties.customs_code),
        ("portCode", parties.port_code),
        ("ieDate", f"{ship.ie_date:%Y%m%d}" if ship else None),
        ("buyerIdType", ID_TYPE_RESIDENT),
        ("buyerIdNumber", p.buyer.id_number),
        ("buyerName", p.buyer.name),
        ("buyerTelephone", p.buyer.telephone),
        ("consigneeAddress", p.consignee.address),
        ("agentCode", parties.agent_code),
        ("agentName", parties.agent_name),
        ("areaCode", parties.area_code if bonded else None),
        ("areaName", parties.area_name if bonded else None),
        ("tradeMode", p.trade_mode),
        ("trafMode", p.traf_mode),
        ("trafNo", ship.traf_no if ship else None),
        ("voyageNo", ship.voyage_no if ship else None),
        ("billNo", ship.bill_no if ship else None),
        ("loctNo", None),
        ("licenseNo", None),
        ("country", p.country),
        ("freight", p.freight),
        ("insuredFee", p.insured_fee),
        ("currency", CURRENCY_CNY),
        ("wrapType", p.wrap_type),
        ("packNo", PACK_ONE),
        ("grossWeight", p.gross_weight),
        ("netWeight", p.net_weight),
        ("note", None),
    ]


def _list_line(line: Line) -> Fields:
    return [
        ("gnum", line.gnum),
        ("itemRecordNo", line.item_record_no),
        ("itemNo", line.item_no),
        ("itemName", line.item_name),
        ("gcode", line.gcode),
        ("gname", line.item_name),  # spec §2.8: must agree with the e-order's item name
        ("gmodel", line.gmodel),
        ("barCode", line.bar_code),
        ("country", line.country),
        ("tradeCountry", None),
        ("currency", CURRENCY_CNY),
        ("qty", line.qty),
        ("unit", line.unit),
        ("qty1", line.qty1),
        ("unit1", line.unit1),
        ("qty2", line.qty2),
        ("unit2", line.unit2),
        ("price", line.price),
        ("totalPrice", line.total_price),
        ("note", None),
    ]


def list_message(
    purchases: Sequence[Purchase],
    parties: Parties,
    *,
    app_type: str = "1",
    app_status: str = "2",
    clock: Clock | None = None,
    rng: random.Random | None = None,
    sign: Signer | None = None,
    sender: Role = Role.AGENT,
) -> etree._Element:
    """CEB621Message: one Inventory per purchase. appStatus 1 saves, 2 declares (needs a
    signature: pass `sign`)."""
    _check_count(purchases)
    stamp = _stamp(app_type, app_status, clock, rng)
    root = _root("CEB621Message", stamp)
    for p in purchases:
        inventory = etree.SubElement(root, ceb("Inventory"))
        fields = _list_head(p, parties, stamp)
        _entity(inventory, "InventoryHead", fields, p.overrides_for("InventoryHead"))
        for line in p.lines:
            overrides = p.overrides_for("InventoryList", line.gnum)
            _entity(inventory, "InventoryList", _list_line(line), overrides)
    return _finish(root, parties, sender, sign)


# ---------------------------------------------------------------- CEB623 cancel, 625 refund


def _declared_identity(p: Purchase, parties: Parties, stamp: _Stamp) -> Fields:
    """The block 623 and 625 share: which accepted list, whose, and the agent's identity."""
    if not p.invt_no:
        raise ValueError(f"purchase {p.order_no} has no invtNo: set it once customs accepted it")
    return [
        *stamp.head(),
        ("customsCode", parties.customs_code),
        ("orderNo", p.order_no),
        ("ebpCode", parties.ebp_code),
        ("ebpName", parties.ebp_name),
        ("ebcCode", parties.ebc_code),
        ("ebcName", parties.ebc_name),
        ("logisticsNo", p.logistics_no),
        ("logisticsCode", parties.logistics_code),
        ("logisticsName", parties.logistics_name),
        ("copNo", p.cop_no),
        ("preNo", p.pre_no),
        ("invtNo", p.invt_no),
        ("buyerIdType", ID_TYPE_RESIDENT),
        ("buyerIdNumber", p.buyer.id_number),
        ("buyerName", p.buyer.name),
        ("buyerTelephone", p.buyer.telephone),
        ("agentCode", parties.agent_code),
        ("agentName", parties.agent_name),
    ]


def cancel_message(
    purchases: Sequence[Purchase],
    parties: Parties,
    *,
    reason: str = DEFAULT_CANCEL_REASON,
    app_status: str = "2",
    clock: Clock | None = None,
    rng: random.Random | None = None,
    sign: Signer | None = None,
    sender: Role = Role.AGENT,
) -> etree._Element:
    """CEB623Message: one InvtCancel per purchase; each purchase needs its `invt_no`.

    appType is always 1 (spec §2.1: 623 allows only 1).
    """
    _check_count(purchases)
    stamp = _stamp("1", app_status, clock, rng)
    root = _root("CEB623Message", stamp)
    for p in purchases:
        fields = [*_declared_identity(p, parties, stamp), ("reason", reason), ("note", None)]
        _entity(root, "InvtCancel", fields, p.overrides_for("InvtCancel"))
    return _finish(root, parties, sender, sign)


def _refund_lines(
    p: Purchase, quantities: Mapping[int, Decimal] | None
) -> list[tuple[Line, Decimal]]:
    """The lines returned and how many of each; all of everything by default."""
    if quantities is None:
        return [(line, line.qty) for line in p.lines]
    by_gnum = {line.gnum: line for line in p.lines}
    unknown = set(quantities) - by_gnum.keys()
    if unknown:
        raise ValueError(f"purchase {p.order_no} has no line {sorted(unknown)}")
    return [(by_gnum[g], Decimal(q)) for g, q in sorted(quantities.items())]


def refund_message(
    purchases: Sequence[Purchase],
    parties: Parties,
    *,
    quantities: Mapping[str, Mapping[int, Decimal]] | None = None,
    reason: str = DEFAULT_REFUND_REASON,
    app_type: str = "1",
    app_status: str = "2",
    clock: Clock | None = None,
    rng: random.Random | None = None,
    sign: Signer | None = None,
    sender: Role = Role.AGENT,
) -> etree._Element:
    """CEB625Message: one InvtRefund per purchase.

    `quantities` maps orderNo → {gnum: qty returned}; a purchase not in it returns every line
    in full. Quantities are not capped here, so tests can send more than was declared.
    """
    _check_count(purchases)
    stamp = _stamp(app_type, app_status, clock, rng)
    root = _root("CEB625Message", stamp)
    for p in purchases:
        refund = etree.SubElement(root, ceb("InvtRefund"))
        head = [*_declared_identity(p, parties, stamp), ("reason", reason), ("note", None)]
        _entity(refund, "InvtRefundHead", head, p.overrides_for("InvtRefundHead"))
        for line, qty in _refund_lines(p, (quantities or {}).get(p.order_no)):
            fields: Fields = [
                ("gnum", line.gnum),
                ("gcode", line.gcode),
                ("gname", line.item_name),
                ("qty", qty),
                ("unit", line.unit),
                ("note", None),
            ]
            _entity(refund, "InvtRefundList", fields, p.overrides_for("InvtRefundList", line.gnum))
    return _finish(root, parties, sender, sign)


# ---------------------------------------------------------------- CEB711 warehouse entry


def entry_message(
    purchases: Sequence[Purchase],
    parties: Parties,
    *,
    cop_no: str | None = None,
    unload_location: str | None = None,
    app_type: str = "1",
    app_status: str = "2",
    clock: Clock | None = None,
    rng: random.Random | None = None,
    sign: Signer | None = None,
    sender: Role = Role.OPERATOR,
) -> etree._Element:
    """CEB711Message: one Delivery listing the parcels (one per purchase) of one conveyance.

    Only direct-purchase (9610) purchases arrive this way; they must share a shipment.
    """
    if not purchases:
        raise ValueError("an entry lists at least one parcel")
    shipments = {p.shipment for p in purchases}
    if None in shipments or len(shipments) != 1:
        raise ValueError("a warehouse entry needs 9610 purchases of one shipment")
    ship = purchases[0].shipment
    stamp = _stamp(app_type, app_status, clock, rng)
    root = _root("CEB711Message", stamp)
    delivery = etree.SubElement(root, ceb("Delivery"))
    head: Fields = [
        *stamp.head(),
        ("customsCode", parties.customs_code),
        ("copNo", cop_no or "RK" + "".join(ch for ch in ship.bill_no if ch.isdigit())),
        ("preNo", None),
        ("rkdNo", None),
        ("operatorCode", parties.operator_code),
        ("operatorName", parties.operator_name),
        ("ieFlag", IE_IMPORT),
        ("trafMode", ship.traf_mode),
        ("trafNo", ship.traf_no),
        ("voyageNo", ship.voyage_no),
        ("billNo", ship.bill_no),
        ("logisticsCode", parties.logistics_code),
        ("logisticsName", parties.logistics_name),
        ("unloadLocation", unload_location),
        ("note", None),
    ]
    _entity(delivery, "DeliveryHead", head, purchases[0].overrides_for("DeliveryHead"))
    for gnum, p in enumerate(purchases, start=1):
        fields: Fields = [("gnum", gnum), ("logisticsNo", p.logistics_no), ("note", None)]
        _entity(delivery, "DeliveryList", fields, p.overrides_for("DeliveryList"))
    return _finish(root, parties, sender, sign)


def linked_messages(
    purchases: Sequence[Purchase],
    parties: Parties,
    *,
    list_status: str = "2",
    clock: Clock | None = None,
    rng: random.Random | None = None,
    sign: Signer | None = None,
) -> dict[str, etree._Element]:
    """The order, payment, waybill and list of the same purchases, keyed by root name."""
    common = {"clock": clock, "rng": rng, "sign": sign}
    return {
        "CEB311Message": order_message(purchases, parties, **common),
        "CEB411Message": payment_message(purchases, parties, **common),
        "CEB511Message": waybill_message(purchases, parties, **common),
        "CEB621Message": list_message(purchases, parties, app_status=list_status, **common),
    }
