"""The message generator: amounts add up, IDs are valid, keys link, fields follow the spec."""

from __future__ import annotations

import base64
import random
import re
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from lxml import etree
from stdnum.cn import ric

from hub.constants import CEB_NS, DXP_NS, ceb
from hub.envelope import read_envelope
from hub.generator import (
    DEMO_PARTIES,
    SINGLE_LIMIT,
    Parties,
    Purchase,
    Role,
    cancel_message,
    dxp_envelope,
    entry_message,
    invt_no,
    linked_messages,
    list_message,
    make_person,
    make_purchase,
    make_purchases,
    order_message,
    payment_message,
    pre_no,
    refund_message,
    to_bytes,
    waybill_message,
    waybill_status_message,
)
from tests.helpers import SAMPLES

FIXED_NOW = datetime(2025, 11, 12, 2, 30, 0, tzinfo=UTC)  # 10:30 Beijing time
NS = {"ceb": CEB_NS}

# ---------------------------------------------------------------------------------------------
# The spec's field tables (shared/spec/ceb-messages.md §2), transcribed independently of the
# generator: name, type (Cn exact, C..n at most n, N = N19,5, int, N9) and R/O, in XSD order.

_HEAD4 = "guid C36 R; appType C1 R; appTime C14 R; appStatus C..3 R"
_DECLARED_IDENTITY = (
    f"{_HEAD4}; customsCode C4 R; orderNo C..60 R; ebpCode C..18 R; ebpName C..100 R;"
    " ebcCode C..18 R; ebcName C..100 R; logisticsNo C..60 R; logisticsCode C..18 R;"
    " logisticsName C..100 R; copNo C..20 O; preNo C..18 O; invtNo C..18 R; buyerIdType C1 R;"
    " buyerIdNumber C..60 R; buyerName C..60 R; buyerTelephone C..30 R; agentCode C..18 R;"
    " agentName C..100 R; reason C..1000 R; note C..1000 O"
)
SPEC_TEXT = {
    "OrderHead": f"{_HEAD4}; orderType C1 R; orderNo C..60 R; ebpCode C..18 R; ebpName C..100 R;"
    " ebcCode C..18 R; ebcName C..100 R; goodsValue N R; freight N R; discount N R;"
    " taxTotal N R; acturalPaid N R; currency C3 R; buyerRegNo C..60 R; buyerName C..60 R;"
    " buyerTelephone C..30 R; buyerIdType C1 R; buyerIdNumber C..60 R; payCode C..18 O;"
    " payName C..100 O; payTransactionId C..60 O; batchNumbers C..100 O; consignee C..100 R;"
    " consigneeTelephone C..50 R; consigneeAddress C..200 R; consigneeDistrict C6 O;"
    " note C..1000 O",
    "OrderList": "gnum int R; itemNo C..30 O; itemName C..250 R; gmodel C..510 R;"
    " itemDescribe C..1000 O; barCode C..50 O; unit C3 R; qty N R; price N R; totalPrice N R;"
    " currency C3 R; country C3 R; note C..1000 O",
    "PaymentHead": f"{_HEAD4}; payCode C..18 R; payName C..100 R; payTransactionId C..60 R;"
    " orderNo C..60 R; ebpCode C..18 R; ebpName C..100 R; payerIdType C1 R;"
    " payerIdNumber C..60 R; payerName C..60 R; telephone C..60 O; amountPaid N R;"
    " currency C3 R; payTime C14 R; note C..1000 O",
    "LogisticsHead": f"{_HEAD4}; logisticsCode C..18 R; logisticsName C..100 R;"
    " logisticsNo C..60 R; billNo C..37 O; orderNo C..60 R; freight N O; insuredFee N O;"
    " currency C3 R; weight N R; packNo N9 R; goodsInfo C..200 O; consignee C..100 R;"
    " consigneeAddress C..200 R; consigneeTelephone C..50 R; note C..1000 O",
    "LogisticsStatus": f"{_HEAD4}; logisticsCode C..18 R; logisticsName C..100 R;"
    " logisticsNo C..60 R; logisticsStatus C1 R; logisticsTime C14 R; note C..1000 O",
    "InventoryHead": f"{_HEAD4}; orderNo C..60 R; ebpCode C..18 R; ebpName C..100 R;"
    " ebcCode C..18 R; ebcName C..100 R; logisticsNo C..60 R; logisticsCode C..18 R;"
    " logisticsName C..100 R; copNo C..20 O; preNo C..18 O; assureCode C..30 R; emsNo C..30 O;"
    " invtNo C..18 O; ieFlag C1 R; declTime C8 R; customsCode C4 R; portCode C4 R; ieDate C8 O;"
    " buyerIdType C1 R; buyerIdNumber C..60 R; buyerName C..60 R; buyerTelephone C..30 R;"
    " consigneeAddress C..200 R; agentCode C..18 R; agentName C..100 R; areaCode C..18 O;"
    " areaName C..100 O; tradeMode C4 R; trafMode C1 R; trafNo C..100 O; voyageNo C..32 O;"
    " billNo C..37 O; loctNo C..10 O; licenseNo C..19 O; country C3 R; freight N R;"
    " insuredFee N R; currency C3 R; wrapType C1 O; packNo N9 R; grossWeight N R;"
    " netWeight N R; note C..1000 O",
    "InventoryList": "gnum int R; itemRecordNo C..30 O; itemNo C..20 O; itemName C..250 O;"
    " gcode C10 R; gname C..250 R; gmodel C..510 R; barCode C..50 O; country C3 R;"
    " tradeCountry C..3 O; currency C3 R; qty N R; unit C3 R; qty1 N R; unit1 C3 R; qty2 N O;"
    " unit2 C3 O; price N R; totalPrice N R; note C..1000 O",
    "InvtCancel": _DECLARED_IDENTITY,
    "InvtRefundHead": _DECLARED_IDENTITY,
    "InvtRefundList": "gnum int R; gcode C10 R; gname C..250 R; qty N R; unit C3 R; note C..1000 O",
    "DeliveryHead": f"{_HEAD4}; customsCode C4 R; copNo C..20 O; preNo C..18 O; rkdNo C..18 O;"
    " operatorCode C..18 R; operatorName C..100 R; ieFlag C1 R; trafMode C1 R;"
    " trafNo C..100 R; voyageNo C..32 R; billNo C..37 R; logisticsCode C..18 R;"
    " logisticsName C..100 R; unloadLocation C..100 O; note C..1000 O",
    "DeliveryList": "gnum int R; logisticsNo C..60 R; note C..1000 O",
    "BaseTransfer": "copCode C..18 R; copName C..100 R; dxpMode C3 R; dxpId C..30 R;"
    " note C..1000 O",
}


def _parse_spec(text: str) -> list[tuple[str, str, bool]]:
    fields = []
    for part in text.split(";"):
        name, kind, ro = part.split()
        fields.append((name, kind, ro == "R"))
    return fields


SPEC = {entity: _parse_spec(text) for entity, text in SPEC_TEXT.items()}

# Which entity elements each message type holds, as (xpath from the root, spec entity).
ENTITIES = {
    "CEB311Message": [("ceb:Order/ceb:OrderHead", "OrderHead"), ("ceb:Order/ceb:OrderList", "OrderList")],
    "CEB411Message": [("ceb:Payment/ceb:PaymentHead", "PaymentHead")],
    "CEB511Message": [("ceb:Logistics/ceb:LogisticsHead", "LogisticsHead")],
    "CEB513Message": [("ceb:LogisticsStatus", "LogisticsStatus")],
    "CEB621Message": [
        ("ceb:Inventory/ceb:InventoryHead", "InventoryHead"),
        ("ceb:Inventory/ceb:InventoryList", "InventoryList"),
    ],
    "CEB623Message": [("ceb:InvtCancel", "InvtCancel")],
    "CEB625Message": [
        ("ceb:InvtRefund/ceb:InvtRefundHead", "InvtRefundHead"),
        ("ceb:InvtRefund/ceb:InvtRefundList", "InvtRefundList"),
    ],
    "CEB711Message": [
        ("ceb:Delivery/ceb:DeliveryHead", "DeliveryHead"),
        ("ceb:Delivery/ceb:DeliveryList", "DeliveryList"),
    ],
}  # fmt: skip
for _entities in ENTITIES.values():
    _entities.append(("ceb:BaseTransfer", "BaseTransfer"))

DECIMAL_TEXT = re.compile(r"^\d+(\.\d{1,2})?$")  # our own rule: at most 2 fraction digits
GUID_TEXT = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")


# ---------------------------------------------------------------------------------------------
# Helpers


def fixed_clock() -> datetime:
    return FIXED_NOW


def declared(purchases: list[Purchase]) -> list[Purchase]:
    """The purchases as they are once customs accepted their lists."""
    return [
        replace(p, pre_no=pre_no(p.placed_at.date(), i), invt_no=invt_no("5141", 2025, i))
        for i, p in enumerate(purchases, start=1)
    ]


def all_messages(purchases: list[Purchase], parties: Parties = DEMO_PARTIES, **kw):
    """Every declaration type for these purchases (711 only when they arrived by air)."""
    done = declared(purchases)
    out = {
        "CEB311Message": order_message(purchases, parties, **kw),
        "CEB411Message": payment_message(purchases, parties, **kw),
        "CEB511Message": waybill_message(purchases, parties, **kw),
        "CEB513Message": waybill_status_message(purchases, parties, **kw),
        "CEB621Message": list_message(purchases, parties, **kw),
        "CEB623Message": cancel_message(done, parties, **kw),
        "CEB625Message": refund_message(done, parties, **kw),
    }
    if all(p.shipment for p in purchases):
        out["CEB711Message"] = entry_message(purchases, parties, **kw)
    return out


def local(el: etree._Element) -> str:
    return etree.QName(el).localname


def fields(el: etree._Element) -> dict[str, str]:
    return {local(c): c.text or "" for c in el}


def records(root: etree._Element, path: str) -> list[dict[str, str]]:
    return [fields(el) for el in root.iterfind(path, NS)]


def money(text: str) -> Decimal:
    return Decimal(text)


# ---------------------------------------------------------------------------------------------
# Amounts


@pytest.mark.parametrize("trade_mode", ["1210", "9610"])
def test_amounts_add_up_in_the_order_for_many_seeds(trade_mode):
    for seed in range(60):
        purchases = make_purchases(5, seed=seed, trade_mode=trade_mode)
        order = order_message(purchases, DEMO_PARTIES)
        for rec in order.iterfind("ceb:Order", NS):
            head = fields(rec.find("ceb:OrderHead", NS))
            lines = [fields(line) for line in rec.iterfind("ceb:OrderList", NS)]
            for line in lines:
                assert money(line["totalPrice"]) == money(line["qty"]) * money(line["price"])
            assert money(head["goodsValue"]) == sum(money(line["totalPrice"]) for line in lines)
            assert money(head["acturalPaid"]) == (
                money(head["goodsValue"])
                + money(head["freight"])
                + money(head["taxTotal"])
                - money(head["discount"])
            )
            # A default purchase is an ordinary one: under the single limit, paying something.
            assert Decimal(0) < money(head["acturalPaid"]) < SINGLE_LIMIT
            assert money(head["discount"]) <= money(head["goodsValue"])


def test_every_amount_has_at_most_two_fraction_digits():
    for seed in range(20):
        purchases = make_purchases(
            10, seed=seed, trade_mode=random.Random(seed).choice(["1210", "9610"])
        )
        for root in all_messages(purchases).values():
            for el in root.iter():
                if local(el) in {"goodsValue", "freight", "discount", "taxTotal", "acturalPaid",
                                 "qty", "price", "totalPrice", "amountPaid", "insuredFee",
                                 "weight", "qty1", "qty2", "grossWeight", "netWeight"}:  # fmt: skip
                    assert DECIMAL_TEXT.match(el.text), (local(el), el.text)


def test_weights_and_legal_quantities_are_consistent():
    for p in make_purchases(200, seed=11):
        assert p.net_weight == sum(line.net_weight for line in p.lines)
        assert p.gross_weight > p.net_weight > 0
        for line in p.lines:
            if line.unit1 == "035":  # legal unit kg: the line's net weight
                assert line.qty1 == line.net_weight
            assert (line.unit2 is None) == (line.qty2 is None)  # spec -625009


def test_total_bounds_make_over_limit_purchases():
    rng = random.Random(5)
    for _ in range(20):
        p = make_purchase(rng, DEMO_PARTIES, total_min=Decimal(5001))
        assert p.goods_value >= Decimal(5001)
        assert p.actural_paid > SINGLE_LIMIT
        small = make_purchase(rng, DEMO_PARTIES, lines=3, total_max=Decimal(100))
        assert small.goods_value <= Decimal(100)
    with pytest.raises(ValueError):
        make_purchase(rng, DEMO_PARTIES, total_min=Decimal(500), total_max=Decimal(400))


def test_line_count_is_honoured_up_to_99():
    rng = random.Random(1)
    for n in (1, 10, 99):
        p = make_purchase(rng, DEMO_PARTIES, lines=n)
        assert [line.gnum for line in p.lines] == list(range(1, n + 1))
    for bad in (0, 100):
        with pytest.raises(ValueError):
            make_purchase(rng, DEMO_PARTIES, lines=bad)


# ---------------------------------------------------------------------------------------------
# Identities and codes


def test_buyer_and_payer_ids_are_valid_resident_ids():
    for p in make_purchases(500, seed=2):
        for person in (p.buyer, p.payer):
            assert len(person.id_number) == 18
            assert ric.is_valid(person.id_number), person.id_number
            assert re.fullmatch(r"1[3-9]\d{9}", person.telephone)
        assert re.fullmatch(r"\d{6}", p.consignee.district)
        assert p.consignee.address  # and the district code is a real one stdnum knows:
        assert ric.get_birth_place(p.consignee.district + "19900101001X")


def test_keys_are_distinct_and_fit_their_fields():
    purchases = make_purchases(2000, seed=3)
    for attr, limit in [("order_no", 60), ("pay_transaction_id", 60), ("logistics_no", 60),
                        ("cop_no", 20)]:  # fmt: skip
        values = [getattr(p, attr) for p in purchases]
        assert len(set(values)) == len(values), attr
        assert max(len(v) for v in values) <= limit, attr


def test_demo_parties_have_customs_codes_and_dxp_ids():
    p = DEMO_PARTIES
    for role in Role:
        assert re.fullmatch(r"\d{10}", p.code(role)), role
        assert re.fullmatch(r"DXPENT\d{10}", p.dxp_id(role)), role
        assert re.search(r"[\u4e00-\u9fff]", p.name(role)), role
    assert re.fullmatch(r"\d{4}", p.customs_code) and re.fullmatch(r"\d{4}", p.port_code)
    assert p.assure_code in (p.ebp_code, p.ebc_code, p.logistics_code)  # 2022 PDF rule


def test_guids_are_upper_case_uuids_and_unique():
    purchases = make_purchases(30, seed=4, trade_mode="9610")
    guids = []
    for root in all_messages(purchases).values():
        guids.append(root.get("guid"))
        assert root.get("version") == "1.0"
        guids.extend(el.text for el in root.iterfind(".//ceb:guid", NS))
    assert all(GUID_TEXT.match(g) for g in guids)
    assert len(set(guids)) == len(guids)


def test_times_come_from_the_clock_in_beijing_time():
    purchases = make_purchases(2, seed=5, trade_mode="9610")
    msgs = all_messages(purchases, clock=fixed_clock)
    for root in msgs.values():
        assert {el.text for el in root.iterfind(".//ceb:appTime", NS)} == {"20251112103000"}
    head = records(msgs["CEB621Message"], "ceb:Inventory/ceb:InventoryHead")[0]
    assert head["declTime"] == "20251112"
    status = records(msgs["CEB513Message"], "ceb:LogisticsStatus")[0]
    assert status["logisticsTime"] == "20251112103000"


# ---------------------------------------------------------------------------------------------
# Determinism


def test_same_seed_same_purchases_other_seed_others():
    assert make_purchases(25, seed=7) == make_purchases(25, seed=7)
    assert make_purchases(25, seed=7) != make_purchases(25, seed=8)
    assert make_purchase(random.Random(9), DEMO_PARTIES) == make_purchase(
        random.Random(9), DEMO_PARTIES
    )


def test_same_seed_clock_and_rng_give_the_same_bytes():
    def build():
        purchases = make_purchases(10, seed=12, trade_mode="9610")
        msgs = all_messages(purchases, clock=fixed_clock, rng=random.Random(1))
        return [to_bytes(root) for root in msgs.values()]

    assert build() == build()


# ---------------------------------------------------------------------------------------------
# The three orders and the list link up


@pytest.mark.parametrize("trade_mode", ["1210", "9610"])
def test_order_payment_waybill_and_list_link(trade_mode):
    purchases = make_purchases(40, seed=21, trade_mode=trade_mode)
    msgs = linked_messages(purchases, DEMO_PARTIES)
    orders = msgs["CEB311Message"].findall("ceb:Order", NS)
    payments = records(msgs["CEB411Message"], "ceb:Payment/ceb:PaymentHead")
    waybills = records(msgs["CEB511Message"], "ceb:Logistics/ceb:LogisticsHead")
    lists = msgs["CEB621Message"].findall("ceb:Inventory", NS)
    assert len(orders) == len(payments) == len(waybills) == len(lists) == 40
    for order_el, pay, way, list_el in zip(orders, payments, waybills, lists, strict=True):
        order = fields(order_el.find("ceb:OrderHead", NS))
        inv = fields(list_el.find("ceb:InventoryHead", NS))
        # list ↔ order
        for key in ("orderNo", "ebpCode", "ebcCode", "buyerIdType", "buyerIdNumber", "buyerName",
                    "buyerTelephone", "consigneeAddress"):  # fmt: skip
            assert inv[key] == order[key], key
        # list ↔ waybill
        for key in ("logisticsNo", "logisticsCode", "freight", "insuredFee"):
            assert inv[key] == way[key], key
        assert inv["grossWeight"] == way["weight"]
        # payment ↔ order
        assert (pay["orderNo"], pay["ebpCode"]) == (order["orderNo"], order["ebpCode"])
        assert (order["payCode"], order["payTransactionId"]) == (
            pay["payCode"],
            pay["payTransactionId"],
        )
        assert money(pay["amountPaid"]) == money(order["acturalPaid"])
        assert (pay["payerIdNumber"], pay["payerName"]) == (
            order["buyerIdNumber"],
            order["buyerName"],
        )
        # order ↔ waybill
        assert way["orderNo"] == order["orderNo"]
        for key in ("consignee", "consigneeTelephone", "consigneeAddress"):
            assert way[key] == order[key], key
        # list lines 1:1 with order lines by gnum
        order_lines = {r["gnum"]: r for r in map(fields, order_el.iterfind("ceb:OrderList", NS))}
        list_lines = {r["gnum"]: r for r in map(fields, list_el.iterfind("ceb:InventoryList", NS))}
        assert order_lines.keys() == list_lines.keys()
        for gnum, ol in order_lines.items():
            ll = list_lines[gnum]
            assert ll["gname"] == ll["itemName"] == ol["itemName"]
            for key in ("qty", "price", "totalPrice", "country", "unit", "gmodel", "itemNo"):
                assert ll[key] == ol[key], (gnum, key)
        # the country rule of spec §7
        if trade_mode == "1210":
            assert inv["country"] == "142"
            assert inv["emsNo"] and inv["areaCode"] and inv["areaName"]
            assert all(r["itemRecordNo"] for r in list_lines.values())
        else:
            assert inv["country"] == purchases[0].shipment.country
            assert inv["trafNo"] and inv["voyageNo"] and inv["billNo"] and inv["ieDate"]


def test_cancel_refund_and_entry_name_the_same_purchase():
    purchases = declared(make_purchases(5, seed=22, trade_mode="9610"))
    cancel = records(cancel_message(purchases, DEMO_PARTIES), "ceb:InvtCancel")
    refund = refund_message(
        purchases, DEMO_PARTIES, quantities={purchases[0].order_no: {1: Decimal(1)}}
    )
    entry = entry_message(purchases, DEMO_PARTIES)
    for p, c in zip(purchases, cancel, strict=True):
        assert (c["orderNo"], c["logisticsNo"], c["copNo"], c["invtNo"], c["preNo"]) == (
            p.order_no, p.logistics_no, p.cop_no, p.invt_no, p.pre_no,
        )  # fmt: skip
        assert c["appType"] == "1" and c["reason"]
    first = refund.find("ceb:InvtRefund", NS)
    assert [fields(el)["gnum"] for el in first.iterfind("ceb:InvtRefundList", NS)] == ["1"]
    assert fields(first.find("ceb:InvtRefundList", NS))["qty"] == "1"
    others = refund.findall("ceb:InvtRefund", NS)[1:]
    for p, el in zip(purchases[1:], others, strict=True):
        lines = [fields(x) for x in el.iterfind("ceb:InvtRefundList", NS)]
        assert [(x["gcode"], x["gname"], x["qty"]) for x in lines] == [
            (line.gcode, line.item_name, str(line.qty)) for line in p.lines
        ]
    head = fields(entry.find("ceb:Delivery/ceb:DeliveryHead", NS))
    assert head["billNo"] == purchases[0].shipment.bill_no
    parcels = records(entry, "ceb:Delivery/ceb:DeliveryList")
    assert [r["logisticsNo"] for r in parcels] == [p.logistics_no for p in purchases]
    assert [r["gnum"] for r in parcels] == [str(i) for i in range(1, 6)]


def test_base_transfer_names_the_sender():
    purchases = make_purchases(1, seed=23, trade_mode="9610")
    senders = {
        "CEB311Message": Role.PLATFORM, "CEB411Message": Role.PAYMENT,
        "CEB511Message": Role.LOGISTICS, "CEB513Message": Role.LOGISTICS,
        "CEB621Message": Role.AGENT, "CEB623Message": Role.AGENT, "CEB625Message": Role.AGENT,
        "CEB711Message": Role.OPERATOR,
    }  # fmt: skip
    for name, root in all_messages(purchases).items():
        transfer = fields(root.find("ceb:BaseTransfer", NS))
        role = senders[name]
        assert transfer == {
            "copCode": DEMO_PARTIES.code(role),
            "copName": DEMO_PARTIES.name(role),
            "dxpMode": "DXP",
            "dxpId": DEMO_PARTIES.dxp_id(role),
        }
        assert local(root[-1]) == "BaseTransfer"
    third = replace(DEMO_PARTIES, cop_code="4401999999", cop_name="某某数据传输有限公司",
                    cop_dxp_id="DXPENT0000999999")  # fmt: skip
    transfer = fields(order_message(purchases, third).find("ceb:BaseTransfer", NS))
    assert transfer["copCode"] == "4401999999" and transfer["dxpId"] == "DXPENT0000999999"


# ---------------------------------------------------------------------------------------------
# Field order and presence follow the spec tables


def _check_against_spec(el: etree._Element, entity: str) -> None:
    spec = SPEC[entity]
    order = [name for name, _, _ in spec]
    names = [local(c) for c in el]
    assert len(set(names)) == len(names), (entity, names)
    positions = [order.index(n) for n in names]  # ValueError: a field the spec does not have
    assert positions == sorted(positions), (entity, names)
    missing = [name for name, _, required in spec if required and name not in names]
    assert not missing, (entity, missing)


@pytest.mark.parametrize("trade_mode", ["1210", "9610"])
def test_field_order_matches_the_spec_tables(trade_mode):
    purchases = make_purchases(10, seed=31, trade_mode=trade_mode)
    for name, root in all_messages(purchases).items():
        assert root.tag == ceb(name) and root.prefix == "ceb"
        for path, entity in ENTITIES[name]:
            found = root.findall(path, NS)
            assert found, (name, path)
            for el in found:
                _check_against_spec(el, entity)


def test_every_optional_field_lands_in_its_place():
    """Filling every optional field through overrides yields exactly the spec's sequence."""
    p = make_purchases(1, seed=32, trade_mode="9610")[0]
    for entity in ("OrderHead", "OrderList", "PaymentHead", "LogisticsHead", "LogisticsStatus",
                   "InventoryHead", "InventoryList", "InvtCancel", "InvtRefundHead",
                   "InvtRefundList", "DeliveryHead", "DeliveryList"):  # fmt: skip
        p = p.override(entity, **{n: "1" for n, _, required in SPEC[entity] if not required})
    for name, root in all_messages([p]).items():
        for path, entity in ENTITIES[name]:
            if entity == "BaseTransfer":
                continue
            for el in root.iterfind(path, NS):
                assert [local(c) for c in el] == [n for n, _, _ in SPEC[entity]], entity


def test_spec_tables_agree_with_the_official_samples():
    """Our transcription of the spec is checked against the samples the e-port published."""
    for name, entities in ENTITIES.items():
        root = etree.parse(str(SAMPLES / f"{name}.xml")).getroot()
        for path, entity in entities:
            for el in root.iterfind(path, NS):
                _check_against_spec(el, entity)


def test_serialisation_is_compact_utf8_with_a_declaration():
    data = to_bytes(order_message(make_purchases(2, seed=33), DEMO_PARTIES))
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<ceb:CEB311Message')
    assert b"\n" not in data.split(b"\n", 1)[1]
    assert b'xmlns:ceb="http://www.chinaport.gov.cn/ceb"' in data
    assert "云购全球".encode() in data


# ---------------------------------------------------------------------------------------------
# Building failing cases


def test_an_override_changes_one_message_only():
    p = make_purchases(1, seed=41)[0]
    bad = p.override("LogisticsHead", consignee="王五").override("PaymentHead", amountPaid="1.00")
    msgs = linked_messages([bad], DEMO_PARTIES)
    assert (
        records(msgs["CEB511Message"], "ceb:Logistics/ceb:LogisticsHead")[0]["consignee"] == "王五"
    )
    assert records(msgs["CEB411Message"], "ceb:Payment/ceb:PaymentHead")[0]["amountPaid"] == "1.00"
    order = records(msgs["CEB311Message"], "ceb:Order/ceb:OrderHead")[0]
    assert order["consignee"] == p.consignee.name
    assert money(order["acturalPaid"]) == p.actural_paid


def test_a_line_override_hits_one_gnum_and_none_drops_a_field():
    p = make_purchase(random.Random(42), DEMO_PARTIES, lines=3)
    bad = p.override("InventoryList", gnum=2, country="502").override(
        "OrderHead", consigneeDistrict=None
    )
    inv = list_message([bad], DEMO_PARTIES)
    countries = [r["country"] for r in records(inv, "ceb:Inventory/ceb:InventoryList")]
    assert countries == [p.lines[0].country, "502", p.lines[2].country]
    head = records(order_message([bad], DEMO_PARTIES), "ceb:Order/ceb:OrderHead")[0]
    assert "consigneeDistrict" not in head


def test_an_override_of_an_unknown_field_is_refused():
    p = make_purchases(1, seed=43)[0].override("OrderHead", consigneeDitrict="110105")
    with pytest.raises(ValueError, match="consigneeDitrict"):
        order_message([p], DEMO_PARTIES)


def test_payer_other_than_buyer():
    rng = random.Random(44)
    other = make_person(rng)
    p = make_purchase(rng, DEMO_PARTIES, payer=other)
    pay = records(payment_message([p], DEMO_PARTIES), "ceb:Payment/ceb:PaymentHead")[0]
    order = records(order_message([p], DEMO_PARTIES), "ceb:Order/ceb:OrderHead")[0]
    assert (pay["payerName"], pay["payerIdNumber"]) == (other.name, other.id_number)
    assert pay["payerIdNumber"] != order["buyerIdNumber"]
    assert ric.is_valid(pay["payerIdNumber"])


def test_field_overrides_of_purchase_are_dataclass_fields():
    rng = random.Random(45)
    p = make_purchase(rng, DEMO_PARTIES, freight=Decimal(99))
    assert p.freight == Decimal(99)
    assert p.actural_paid == p.goods_value + Decimal(99) + p.tax_total - p.discount
    with pytest.raises(TypeError):
        make_purchase(rng, DEMO_PARTIES, no_such_field=1)


# ---------------------------------------------------------------------------------------------
# Limits and misuse


def test_message_size_limits():
    purchases = make_purchases(101, seed=51)
    assert len(order_message(purchases[:100], DEMO_PARTIES).findall("ceb:Order", NS)) == 100
    with pytest.raises(ValueError):
        order_message(purchases, DEMO_PARTIES)
    with pytest.raises(ValueError):
        payment_message([], DEMO_PARTIES)


def test_cancel_and_refund_need_an_invt_no():
    p = make_purchases(1, seed=52)[0]
    with pytest.raises(ValueError, match="invtNo"):
        cancel_message([p], DEMO_PARTIES)
    with pytest.raises(ValueError, match="invtNo"):
        refund_message([p], DEMO_PARTIES)


def test_entry_needs_direct_purchases_of_one_flight():
    with pytest.raises(ValueError):
        entry_message(make_purchases(2, seed=53), DEMO_PARTIES)
    mixed = make_purchases(1, seed=53, trade_mode="9610") + make_purchases(
        1, seed=54, trade_mode="9610"
    )
    with pytest.raises(ValueError):
        entry_message(mixed, DEMO_PARTIES)


def test_sign_hook_gets_the_finished_root_and_its_result_is_returned():
    seen = []

    def sign(root):
        seen.append(local(root[-1]))
        etree.SubElement(root, "{http://www.w3.org/2000/09/xmldsig#}Signature")
        return root

    root = list_message(make_purchases(1, seed=55), DEMO_PARTIES, sign=sign)
    assert seen == ["BaseTransfer"]
    assert local(root[-1]) == "Signature"


# ---------------------------------------------------------------------------------------------
# DXP envelope


def test_dxp_envelope_round_trips_through_the_hub_reader():
    payload = to_bytes(order_message(make_purchases(3, seed=61), DEMO_PARTIES))
    data = dxp_envelope(
        payload,
        sender_id=DEMO_PARTIES.ebp_dxp_id,
        receiver_id="DXPEDCCEB0000002",
        cop_msg_id="COP-1",
        clock=fixed_clock,
    )
    root = etree.fromstring(data)
    assert root.tag == f"{{{DXP_NS}}}DxpMsg" and root.get("ver") == "1.0"
    info, body = read_envelope(root)
    assert body == payload
    assert (info.cop_msg_id, info.sender_id, info.receiver_ids, info.msg_type) == (
        "COP-1", DEMO_PARTIES.ebp_dxp_id, ("DXPEDCCEB0000002",), "CEB311Message",
    )  # fmt: skip
    creat = root.find("dxp:TransInfo/dxp:CreatTime", {"dxp": DXP_NS}).text
    assert creat == "2025-11-12T10:30:00"
    assert base64.b64decode(root.find("dxp:Data", {"dxp": DXP_NS}).text) == payload
