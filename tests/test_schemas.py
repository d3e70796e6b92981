"""Our XSDs against the spec's field tables and the official samples, through hub.schemas."""

from __future__ import annotations

import base64
import copy
import itertools
from functools import cache
from pathlib import Path

import pytest
from lxml import etree

from hub import schemas
from hub.constants import CEB_NS, DS_NS, DXP_NS, ceb
from hub.envelope import build_envelope
from hub.errors import SchemaError
from tests.helpers import SAMPLES

SAMPLE_FILES = sorted(SAMPLES.glob("CEB*Message.xml"))

# The spec's field tables (ceb-messages.md §2), written independently of our XSD, in spec order.
# Kinds: Rn required 1..n chars; On optional 0..n; Zn required, 0..n (copName, spec §2.11);
# Fn exactly n; OFn optional, empty or n;
# D N19,5; OD optional N19,5 (may be empty); I line number; N9; G guid (36);
# T14 / T17 / D8 / OD8 date formats; Ea|b|c a code list.
HEAD = "guid:G appType:E1|2|3 appTime:T14 appStatus:E1|2"
SPEC = {
    "OrderHead": (
        "311",
        f"{HEAD} orderType:EI orderNo:R60 ebpCode:R18 ebpName:R100 ebcCode:R18 ebcName:R100 "
        "goodsValue:D freight:D discount:D taxTotal:D acturalPaid:D currency:E142 buyerRegNo:R60 "
        "buyerName:R60 buyerTelephone:R30 buyerIdType:E1 buyerIdNumber:R60 payCode:O18 "
        "payName:O100 payTransactionId:O60 batchNumbers:O100 consignee:R100 "
        "consigneeTelephone:R50 consigneeAddress:R200 consigneeDistrict:OF6 note:O1000",
    ),
    "OrderList": (
        "311",
        "gnum:I itemNo:O30 itemName:R250 gmodel:R510 itemDescribe:O1000 barCode:O50 unit:F3 "
        "qty:D price:D totalPrice:D currency:E142 country:F3 note:O1000",
    ),
    "PaymentHead": (
        "411",
        f"{HEAD} payCode:R18 payName:R100 payTransactionId:R60 orderNo:R60 ebpCode:R18 "
        "ebpName:R100 payerIdType:E1 payerIdNumber:R60 payerName:R60 telephone:O60 amountPaid:D "
        "currency:E142 payTime:T14 note:O1000",
    ),
    "LogisticsHead": (
        "511",
        f"{HEAD} logisticsCode:R18 logisticsName:R100 logisticsNo:R60 billNo:O37 orderNo:R60 "
        "freight:OD insuredFee:OD currency:E142 weight:D packNo:N9 goodsInfo:O200 "
        "consignee:R100 consigneeAddress:R200 consigneeTelephone:R50 note:O1000",
    ),
    "LogisticsStatus": (
        "513",
        f"{HEAD} logisticsCode:R18 logisticsName:R100 logisticsNo:R60 logisticsStatus:ES|R "
        "logisticsTime:T14 note:O1000",
    ),
    "InventoryHead": (
        "621",
        f"{HEAD} orderNo:R60 ebpCode:R18 ebpName:R100 ebcCode:R18 ebcName:R100 logisticsNo:R60 "
        "logisticsCode:R18 logisticsName:R100 copNo:O20 preNo:O18 assureCode:R30 emsNo:O30 "
        "invtNo:O18 ieFlag:EI|E declTime:D8 customsCode:F4 portCode:F4 ieDate:OD8 "
        "buyerIdType:E1 buyerIdNumber:R60 buyerName:R60 buyerTelephone:R30 "
        "consigneeAddress:R200 agentCode:R18 agentName:R100 areaCode:O18 areaName:O100 "
        "tradeMode:E9610|1210|1239 trafMode:F1 trafNo:O100 voyageNo:O32 billNo:O37 loctNo:O10 "
        "licenseNo:O19 country:F3 freight:D insuredFee:D currency:E142 wrapType:OF1 packNo:N9 "
        "grossWeight:D netWeight:D note:O1000",
    ),
    "InventoryList": (
        "621",
        "gnum:I itemRecordNo:O30 itemNo:O20 itemName:O250 gcode:F10 gname:R250 gmodel:R510 "
        "barCode:O50 country:F3 tradeCountry:O3 currency:E142 qty:D unit:F3 qty1:D unit1:F3 "
        "qty2:OD unit2:OF3 price:D totalPrice:D note:O1000",
    ),
    "InvtCancel": (
        "623",
        "guid:G appType:E1 appTime:T14 appStatus:E1|2 customsCode:F4 orderNo:R60 ebpCode:R18 "
        "ebpName:R100 ebcCode:R18 ebcName:R100 logisticsNo:R60 logisticsCode:R18 "
        "logisticsName:R100 copNo:O20 preNo:O18 invtNo:R18 buyerIdType:E1 buyerIdNumber:R60 "
        "buyerName:R60 buyerTelephone:R30 agentCode:R18 agentName:R100 reason:R1000 note:O1000",
    ),
    "InvtRefundHead": (
        "625",
        f"{HEAD} customsCode:F4 orderNo:R60 ebpCode:R18 ebpName:R100 ebcCode:R18 ebcName:R100 "
        "logisticsNo:R60 logisticsCode:R18 logisticsName:R100 copNo:O20 preNo:O18 invtNo:R18 "
        "buyerIdType:E1 buyerIdNumber:R60 buyerName:R60 buyerTelephone:R30 agentCode:R18 "
        "agentName:R100 reason:R1000 note:O1000",
    ),
    "InvtRefundList": ("625", "gnum:I gcode:F10 gname:R250 qty:D unit:F3 note:O1000"),
    "DeliveryHead": (
        "711",
        f"{HEAD} customsCode:F4 copNo:O20 preNo:O18 rkdNo:O18 operatorCode:R18 "
        "operatorName:R100 ieFlag:EI|E trafMode:F1 trafNo:R100 voyageNo:R32 billNo:R37 "
        "logisticsCode:R18 logisticsName:R100 unloadLocation:O100 note:O1000",
    ),
    "DeliveryList": ("711", "gnum:I logisticsNo:R60 note:O1000"),
    "BaseTransfer": ("311", "copCode:R18 copName:Z100 dxpMode:EDXP dxpId:R30 note:O1000"),
}
TAIL = "returnStatus:R10 returnTime:T17 returnInfo:R1000"
SPEC |= {
    "OrderReturn": ("312", f"guid:G ebpCode:R18 ebcCode:R18 orderNo:R60 {TAIL}"),
    "PaymentReturn": ("412", f"guid:G payCode:R18 payTransactionId:R60 {TAIL}"),
    "LogisticsReturn": ("512", f"guid:G logisticsCode:R18 logisticsNo:R60 {TAIL}"),
    "LogisticsStatusReturn": (
        "514",
        f"guid:G logisticsCode:R18 logisticsNo:R60 logisticsStatus:ES|R {TAIL}",
    ),
    "InventoryReturn": (
        "622",
        "guid:G customsCode:OF4 ebpCode:O18 ebcCode:O18 agentCode:O18 copNo:R20 preNo:F18 "
        f"invtNo:OF18 {TAIL}",
    ),
    "InvtCancelReturn": (
        "624",
        "guid:G customsCode:OF4 agentCode:O18 ebpCode:O18 ebcCode:O18 copNo:R20 preNo:F18 "
        f"invtNo:OF18 {TAIL}",
    ),
    "InvtRefundReturn": (
        "626",
        "guid:G customsCode:OF4 agentCode:O18 ebpCode:O18 ebcCode:O18 copNo:R20 preNo:F18 "
        f"invtNo:OF18 {TAIL}",
    ),
    "DeliveryReturn": (
        "712",
        f"guid:G customsCode:OF4 operatorCode:O18 copNo:O20 preNo:O18 rkdNo:O18 {TAIL}",
    ),
}

DECLARATIONS = {  # code: (record element, max records, signature required)
    "311": ("Order", 100, False),
    "411": ("Payment", 100, False),
    "511": ("Logistics", 100, False),
    "513": ("LogisticsStatus", 100, False),
    "621": ("Inventory", 100, True),
    "623": ("InvtCancel", 100, True),
    "625": ("InvtRefund", 100, True),
    "711": ("Delivery", 1, True),
}
RECEIPTS = {
    "312": "OrderReturn",
    "412": "PaymentReturn",
    "512": "LogisticsReturn",
    "514": "LogisticsStatusReturn",
    "622": "InventoryReturn",
    "624": "InvtCancelReturn",
    "626": "InvtRefundReturn",
    "712": "DeliveryReturn",
}
LINES = {"311": "OrderList", "621": "InventoryList", "625": "InvtRefundList"}


# ---------------------------------------------------------------------------------------------
# Helpers


@cache
def _sample_bytes(code: str) -> bytes:
    return (SAMPLES / f"CEB{code}Message.xml").read_bytes()


def sample(code: str) -> etree._Element:
    """A fresh parsed copy of an official sample, safe to mutate."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(_sample_bytes(code), parser)


def first(root: etree._Element, name: str) -> etree._Element:
    return next(root.iter(ceb(name)))


def fields(entity: str) -> list[tuple[str, str]]:
    return [tuple(f.split(":", 1)) for f in SPEC[entity][1].split()]


def present(entity: str) -> list[str]:
    """The spec fields the sample's first instance of `entity` actually carries."""
    el = first(sample(SPEC[entity][0]), entity)
    return [etree.QName(c).localname for c in el]


def rejected(root: etree._Element) -> SchemaError:
    with pytest.raises(SchemaError) as caught:
        schemas.validate(root)
    return caught.value


def mutate(entity: str, field: str, value: str | None) -> etree._Element:
    """The entity's sample with `field` of its first instance set to `value` (None: removed)."""
    root = sample(SPEC[entity][0])
    target = first(first(root, entity), field)
    if value is None:
        target.getparent().remove(target)
    else:
        target.text = value
    return root


def _cases(predicate) -> list:
    found = []
    for entity in SPEC:
        carried = set(present(entity))
        for field, kind in fields(entity):
            if field in carried and predicate(kind):
                found.append(pytest.param(entity, field, kind, id=f"{entity}.{field}"))
    return found


def _required(kind: str) -> bool:
    return not kind.startswith("O")


def _text_limit(kind: str) -> int | None:
    for prefix in ("R", "O", "Z"):
        if kind.startswith(prefix) and kind[1:].isdigit():
            return int(kind[1:])
    return None


# ---------------------------------------------------------------------------------------------
# The official samples


def test_schema_set_id_is_the_constant() -> None:
    assert schemas.SCHEMA_SET_ID == "ceb-import:202205"


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.stem)
def test_official_sample_is_valid(path: Path) -> None:
    root = etree.fromstring(path.read_bytes(), etree.XMLParser(resolve_entities=False))
    schemas.validate(root)
    assert schemas.diagnose(path.read_bytes()) == []


def test_all_sixteen_samples_are_there() -> None:
    assert len(SAMPLE_FILES) == 16


@pytest.mark.parametrize("entity", SPEC)
def test_sample_fields_follow_the_spec_order(entity: str) -> None:
    spec_order = [name for name, _ in fields(entity)]
    carried = present(entity)
    assert [name for name in spec_order if name in carried] == carried


# ---------------------------------------------------------------------------------------------
# Field by field


@pytest.mark.parametrize(("entity", "field", "kind"), _cases(_required))
def test_required_field_missing_is_rejected(entity: str, field: str, kind: str) -> None:
    error = rejected(mutate(entity, field, None))
    assert f"'{field}'" in error.info
    assert error.path.endswith(field)


@pytest.mark.parametrize(("entity", "field", "kind"), _cases(lambda k: not _required(k)))
def test_optional_field_may_be_absent_or_empty(entity: str, field: str, kind: str) -> None:
    schemas.validate(mutate(entity, field, None))
    schemas.validate(mutate(entity, field, ""))


@pytest.mark.parametrize(("entity", "field", "kind"), _cases(_text_limit))
def test_text_length_limit(entity: str, field: str, kind: str) -> None:
    limit = _text_limit(kind)
    schemas.validate(mutate(entity, field, "x" * limit))
    error = rejected(mutate(entity, field, "x" * (limit + 1)))
    assert error.info.startswith(f"{field}:")
    assert f"longer than {limit} characters" in error.info


@pytest.mark.parametrize(("entity", "field", "kind"), _cases(lambda k: k.startswith("R")))
def test_required_text_must_not_be_empty(entity: str, field: str, kind: str) -> None:
    assert field in rejected(mutate(entity, field, "")).info


@pytest.mark.parametrize(
    ("entity", "field", "kind"), _cases(lambda k: k.startswith(("F", "OF", "G")))
)
def test_fixed_length(entity: str, field: str, kind: str) -> None:
    size = 36 if kind == "G" else int(kind.lstrip("OF"))
    schemas.validate(mutate(entity, field, "A" * size))
    for wrong in (size - 1, size + 1):
        if wrong == 0:
            continue  # OF1 may be empty
        assert field in rejected(mutate(entity, field, "A" * wrong)).info


@pytest.mark.parametrize(("entity", "field", "kind"), _cases(lambda k: k in ("D", "OD")))
def test_decimal_n19_5(entity: str, field: str, kind: str) -> None:
    schemas.validate(mutate(entity, field, "12345678901234.12345"))
    for bad in ("1.123456", "123456789012345678.12", "abc"):
        assert field in rejected(mutate(entity, field, bad)).info
    if kind == "D":
        assert field in rejected(mutate(entity, field, "")).info


@pytest.mark.parametrize(("entity", "field", "kind"), _cases(lambda k: k in ("I", "N9")))
def test_integers(entity: str, field: str, kind: str) -> None:
    schemas.validate(mutate(entity, field, "1"))
    bad = ["1.5", "x"] + (["0"] if kind == "I" else ["1234567890"])
    for value in bad:
        assert field in rejected(mutate(entity, field, value)).info


@pytest.mark.parametrize(("entity", "field", "kind"), _cases(lambda k: k.startswith("E")))
def test_code_list(entity: str, field: str, kind: str) -> None:
    for code in kind[1:].split("|"):
        schemas.validate(mutate(entity, field, code))
    error = rejected(mutate(entity, field, "Z9"))
    assert error.info.startswith(f"{field}:")
    assert "not one of" in error.info


FORMATS = {
    "T14": ("20240229235959", ["2024022923595", "20241301000000", "20240101240000", "2024-01-01"]),
    "T17": ("20240229235959123", ["20240229235959", "2024022923595912x"]),
    "D8": ("20240229", ["2024022", "20240230x", "20241232"]),
    "OD8": ("20240229", ["2024022", "2024-02-29"]),
}


@pytest.mark.parametrize(("entity", "field", "kind"), _cases(lambda k: k in FORMATS))
def test_date_formats(entity: str, field: str, kind: str) -> None:
    good, bads = FORMATS[kind]
    schemas.validate(mutate(entity, field, good))
    for bad in bads:
        assert field in rejected(mutate(entity, field, bad)).info


def _swap_cases() -> list:
    found = []
    for entity in SPEC:
        carried = present(entity)
        for a, b in itertools.pairwise(carried):
            found.append(pytest.param(entity, a, b, id=f"{entity}.{a}<>{b}"))
    return found


@pytest.mark.parametrize(("entity", "a", "b"), _swap_cases())
def test_swapped_neighbours_are_rejected(entity: str, a: str, b: str) -> None:
    root = sample(SPEC[entity][0])
    el = first(first(root, entity), a)
    el.addprevious(el.getnext())  # b now comes before a
    error = rejected(root)
    assert a in error.info or b in error.info


def test_reordered_field_message_names_both() -> None:
    root = sample("311")
    head = first(root, "OrderHead")
    head.remove(ebp := first(head, "ebpCode"))
    first(head, "ebcName").addnext(ebp)
    error = rejected(root)
    assert error.info == "element 'ebpCode' expected before 'ebpName'"
    assert error.path == "CEB311Message/Order[1]/OrderHead/ebpCode"


# ---------------------------------------------------------------------------------------------
# Messages as a whole


def test_error_path_and_words() -> None:
    root = sample("311")
    second = list(root.iter(ceb("OrderHead")))[1]
    first(second, "orderNo").text = "N" * 61
    error = rejected(root)
    assert error.path == "CEB311Message/Order[2]/OrderHead/orderNo"
    assert error.info == f"orderNo: value '{'N' * 40}…' is longer than 60 characters"
    assert error.return_info.startswith("CEB311Message/Order[2]/OrderHead/orderNo: orderNo:")


def test_missing_field_message() -> None:
    error = rejected(mutate("OrderHead", "orderNo", None))
    assert error.info == "missing required element 'orderNo' (found 'ebpCode')"
    assert error.path == "CEB311Message/Order[1]/OrderHead/orderNo"


def test_missing_last_field_message() -> None:
    error = rejected(mutate("InventoryHead", "netWeight", None))
    assert "missing required element 'netWeight'" in error.info


@pytest.mark.parametrize("code", [c for c, (_, _, req) in DECLARATIONS.items() if req])
def test_signature_missing_is_rejected_where_required(code: str) -> None:
    root = sample(code)
    root.remove(root.find(f"{{{DS_NS}}}Signature"))
    error = rejected(root)
    assert "Signature" in error.info


@pytest.mark.parametrize("code", [c for c, (_, _, req) in DECLARATIONS.items() if not req])
def test_signature_may_be_absent_where_optional(code: str) -> None:
    root = sample(code)
    root.remove(root.find(f"{{{DS_NS}}}Signature"))
    schemas.validate(root)


@pytest.mark.parametrize("code", RECEIPTS)
def test_receipts_carry_no_signature(code: str) -> None:
    root = sample(code)
    root.append(copy.deepcopy(sample("311").find(f"{{{DS_NS}}}Signature")))
    assert "Signature" in rejected(root).info


def test_signature_is_the_last_child() -> None:
    root = sample("621")
    signature = root.find(f"{{{DS_NS}}}Signature")
    root.find(ceb("BaseTransfer")).addprevious(signature)
    rejected(root)


def test_signature_algorithms_are_not_restricted_but_structure_is() -> None:
    root = sample("621")
    method = next(root.iter(f"{{{DS_NS}}}SignatureMethod"))
    method.set("Algorithm", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
    schemas.validate(root)
    value = next(root.iter(f"{{{DS_NS}}}SignatureValue"))
    value.getparent().remove(value)
    assert "SignatureValue" in rejected(root).info


def _fill_records(root: etree._Element, record: str, count: int) -> etree._Element:
    records = root.findall(ceb(record))
    for extra in records[1:]:
        root.remove(extra)
    for _ in range(count - 1):
        records[0].addnext(copy.deepcopy(records[0]))
    return root


@pytest.mark.parametrize("code", DECLARATIONS)
def test_record_count_limit(code: str) -> None:
    record, limit, _ = DECLARATIONS[code]
    schemas.validate(_fill_records(sample(code), record, limit))
    error = rejected(_fill_records(sample(code), record, limit + 1))
    assert f"too many '{record}' elements" in error.info
    root = sample(code)
    for el in root.findall(ceb(record)):
        root.remove(el)
    assert record in rejected(root).info


@pytest.mark.parametrize("code", RECEIPTS)
def test_receipt_entity_count_limit(code: str) -> None:
    schemas.validate(_fill_records(sample(code), RECEIPTS[code], 100))
    rejected(_fill_records(sample(code), RECEIPTS[code], 101))


@pytest.mark.parametrize("code", LINES)
def test_line_count_limit(code: str) -> None:
    line = LINES[code]

    def with_lines(count: int) -> etree._Element:
        root = sample(code)
        _fill_records(first(root, line).getparent(), line, count)
        return root

    schemas.validate(with_lines(99))
    assert f"too many '{line}' elements" in rejected(with_lines(100)).info


def test_delivery_lines_are_unbounded() -> None:
    root = sample("711")
    _fill_records(first(root, "Delivery"), "DeliveryList", 250)
    schemas.validate(root)


def test_base_transfer_cop_name_may_be_empty() -> None:
    schemas.validate(mutate("BaseTransfer", "copName", ""))


def test_base_transfer_is_required_and_subscriptions_limited() -> None:
    root = sample("411")
    root.remove(first(root, "BaseTransfer"))
    assert "BaseTransfer" in rejected(root).info
    root = sample("411")
    transfer = first(root, "BaseTransfer")
    subscribe = etree.fromstring(
        f'<ceb:BaseSubscribe xmlns:ceb="{CEB_NS}"><ceb:status>RET</ceb:status>'
        "<ceb:dxpMode>DXP</ceb:dxpMode><ceb:dxpAddress>DXPENT0000000001</ceb:dxpAddress>"
        "</ceb:BaseSubscribe>"
    )
    for _ in range(5):
        transfer.addnext(copy.deepcopy(subscribe))
    schemas.validate(root)
    transfer.addnext(copy.deepcopy(subscribe))
    assert "BaseSubscribe" in rejected(root).info
    for el in root.findall(ceb("BaseSubscribe"))[1:]:
        root.remove(el)
    first(root, "BaseSubscribe").find(ceb("status")).text = "SOME"
    assert "status" in rejected(root).info


def test_extend_message_content_is_not_validated() -> None:
    root = sample("621")
    extend = etree.fromstring(
        f'<ceb:ExtendMessage xmlns:ceb="{CEB_NS}"><ceb:name>x</ceb:name><ceb:version>1</ceb:version>'
        '<ceb:Message><anything xmlns="urn:x" a="1"><deep>text</deep></anything>'
        "<ceb:notInSchema/></ceb:Message></ceb:ExtendMessage>"
    )
    first(root, "BaseTransfer").addnext(extend)
    schemas.validate(root)
    first(root, "BaseTransfer").addnext(copy.deepcopy(extend))
    assert "ExtendMessage" in rejected(root).info


@pytest.mark.parametrize(
    ("attribute", "value", "words"),
    [
        ("guid", "4CDE1CFD-EDED-46B1-946C-B8022E42FC9", "exactly 36 characters"),
        ("guid", None, "missing required attribute 'guid'"),
        ("version", "1.0.0.0.0.0", "longer than 10 characters"),
        ("version", None, "missing required attribute 'version'"),
        ("version", "", "must not be empty"),
    ],
)
def test_root_attributes(attribute: str, value: str | None, words: str) -> None:
    for code in ("311", "622"):
        root = sample(code)
        if value is None:
            del root.attrib[attribute]
        else:
            root.set(attribute, value)
        error = rejected(root)
        assert words in error.info
        assert error.path.endswith(f"/@{attribute}")


def test_unknown_root_is_rejected() -> None:
    root = etree.fromstring(f'<CEB303Message xmlns="{CEB_NS}" guid="x" version="1.0"/>')
    assert "CEB303Message" in rejected(root).info


# ---------------------------------------------------------------------------------------------
# Spec §2.13: where the PDF and the 202205 XSD disagree, the XSD rule wins


def test_511_without_freight_and_insured_fee_is_valid() -> None:
    root = sample("511")
    for head in root.iter(ceb("LogisticsHead")):
        head.remove(head.find(ceb("freight")))
        head.remove(head.find(ceb("insuredFee")))
    schemas.validate(root)


def test_621_item_no_is_at_most_20() -> None:
    schemas.validate(mutate("InventoryList", "itemNo", "I" * 20))
    error = rejected(mutate("InventoryList", "itemNo", "I" * 21))
    assert "itemNo" in error.info and "20" in error.info


def test_621_trade_country_is_one_to_three() -> None:
    schemas.validate(mutate("InventoryList", "tradeCountry", "1"))
    assert "tradeCountry" in rejected(mutate("InventoryList", "tradeCountry", "1234")).info


@pytest.mark.parametrize("entity", ["InventoryReturn", "InvtCancelReturn", "InvtRefundReturn"])
def test_receipt_pre_no_is_required_and_exactly_18(entity: str) -> None:
    assert "preNo" in rejected(mutate(entity, "preNo", None)).info
    assert "exactly 18" in rejected(mutate(entity, "preNo", "B2016051200000188")).info


def test_623_without_cop_no_is_valid() -> None:
    root = sample("623")
    for cancel in root.iter(ceb("InvtCancel")):
        cancel.remove(cancel.find(ceb("copNo")))
    schemas.validate(root)


def test_623_app_type_is_only_new() -> None:
    assert "appType" in rejected(mutate("InvtCancel", "appType", "2")).info


@pytest.mark.parametrize(
    ("entity", "right", "typo"),
    [
        ("OrderHead", "consigneeDistrict", "consigneeDitrict"),
        ("LogisticsHead", "consignee", "consingee"),
    ],
)
def test_pdf_typo_names_are_rejected(entity: str, right: str, typo: str) -> None:
    root = sample(SPEC[entity][0])
    el = first(first(root, entity), right)
    el.tag = ceb(typo)
    assert typo in rejected(root).info or right in rejected(root).info


# ---------------------------------------------------------------------------------------------
# Customs documents built here (no official sample): 816, 818, 900

TAX_HEAD = (
    "<guid>4CDE1CFD-EDED-46B1-946C-B8022E42FC94</guid><returnTime>20240101120000000</returnTime>"
    "<invtNo>010120241000000001</invtNo><taxNo>T1</taxNo>"
)


def _doc(body: str, root: str) -> etree._Element:
    return etree.fromstring(
        f'<{root} xmlns="{CEB_NS}" guid="4CDE1CFD-EDED-46B1-946C-B8022E42FC94" version="1.0">'
        f"{body}</{root}>"
    )


def test_816_tax_bill() -> None:
    line = (
        "<TaxListRd><gnum>1</gnum><gcode>3304990099</gcode><taxPrice>100</taxPrice>"
        "<customsTax>0</customsTax><valueAddedTax>9.1</valueAddedTax>"
        "<consumptionTax>0</consumptionTax></TaxListRd>"
    )
    head = (
        f"<TaxHeadRd>{TAX_HEAD}<customsTax>0</customsTax><valueAddedTax>9.1</valueAddedTax>"
        "<consumptionTax>0</consumptionTax><status>1</status><customsCode>0101</customsCode>"
        "</TaxHeadRd>"
    )
    schemas.validate(_doc(f"<Tax>{head}{line}</Tax>", "CEB816Message"))
    with_order = head.replace("<status>", "<orderNo>o1</orderNo><status>")
    assert "orderNo" in rejected(_doc(f"<Tax>{with_order}{line}</Tax>", "CEB816Message")).info
    void = head.replace("<status>1<", "<status>4<")
    assert "status" in rejected(_doc(f"<Tax>{void}{line}</Tax>", "CEB816Message")).info


def test_818_tax_status() -> None:
    body = f"<Tax><TaxHeadStatus>{TAX_HEAD}<status>2</status></TaxHeadStatus></Tax>"
    schemas.validate(_doc(body, "CEB818Message"))


def test_900_format_receipt() -> None:
    body = (
        "<MessageReturn><guid>4CDE1CFD-EDED-46B1-946C-B8022E42FC94</guid>"
        "<returnStatus>-1</returnStatus><returnInfo></returnInfo>"
        "<returnTime>20240101120000000</returnTime><oriCopMsgId>abc</oriCopMsgId>"
        "<oriMessageType>Unknown</oriMessageType><oriBizMessage>&lt;x/&gt;</oriBizMessage>"
        "</MessageReturn>"
    )
    schemas.validate(_doc(body, "CEB900Message"))
    assert "MessageReturn" in rejected(_doc(body + body, "CEB900Message")).info


# ---------------------------------------------------------------------------------------------
# The DXP envelope


def _envelope() -> etree._Element:
    root = build_envelope(
        _sample_bytes("311"),
        sender_id="DXPENT0000458763",
        receiver_id="DXPEDCCEB0000002",
        msg_type="CEB311Message",
        file_name="CEB311Message_1.xml",
    )
    return root


def envelope_rejected(root: etree._Element) -> SchemaError:
    with pytest.raises(SchemaError) as caught:
        schemas.validate_envelope(root)
    return caught.value


def dx(tag: str) -> str:
    return f"{{{DXP_NS}}}{tag}"


def test_envelope_is_valid_and_may_be_signed() -> None:
    root = _envelope()
    schemas.validate_envelope(root)
    root.append(copy.deepcopy(sample("621").find(f"{{{DS_NS}}}Signature")))
    schemas.validate_envelope(root)


def test_envelope_version_is_fixed() -> None:
    root = _envelope()
    root.set("ver", "2.0")
    error = envelope_rejected(root)
    assert "ver" in error.info and error.path == "DxpMsg/@ver"


def test_envelope_receivers_one_to_five() -> None:
    root = _envelope()
    receivers = next(root.iter(dx("ReceiverIds")))
    for _ in range(4):
        receivers.append(copy.deepcopy(receivers[0]))
    schemas.validate_envelope(root)
    receivers.append(copy.deepcopy(receivers[0]))
    error = envelope_rejected(root)
    assert "ReceiverId" in error.info


@pytest.mark.parametrize(
    ("tag", "value"),
    [("CreatTime", "20240101120000"), ("SenderId", "D" * 17), ("CopMsgId", ""), ("Data", "abc")],
)
def test_envelope_fields(tag: str, value: str) -> None:
    root = _envelope()
    next(root.iter(dx(tag))).text = value
    error = envelope_rejected(root)
    assert tag in error.info


def test_envelope_add_info_biz_keys() -> None:
    root = _envelope()
    add = root.find(dx("AddInfo"))
    keys = etree.SubElement(add, dx("BizKey"))
    for n in range(5):
        etree.SubElement(keys, dx("Key"), name=f"k{n}").text = "v"
    schemas.validate_envelope(root)
    etree.SubElement(keys, dx("Key"), name="k5").text = "v"
    envelope_rejected(root)


def test_dxp_rep() -> None:
    root = etree.fromstring(
        f'<DxpRep xmlns="{DXP_NS}" ver="1.0"><RecevierId>DXPENT0000458763</RecevierId>'
        "<Response><ResponseCode>0002</ResponseCode><ResponseInfo>schema</ResponseInfo>"
        "</Response><NoticeTime>2024-01-01</NoticeTime><OriHead><CopMsgId>1</CopMsgId>"
        "<SenderId>S</SenderId><ReceiverIds><ReceiverId>R</ReceiverId></ReceiverIds>"
        "<CreatTime>2024-01-01T12:00:00</CreatTime><MsgType>CEB311Message</MsgType></OriHead>"
        "</DxpRep>"
    )
    schemas.validate_envelope(root)


def test_ceb_schema_does_not_accept_an_envelope() -> None:
    assert "DxpMsg" in rejected(_envelope()).info


# ---------------------------------------------------------------------------------------------
# Full diagnostics


def test_diagnose_reports_every_error_with_lines() -> None:
    data = _sample_bytes("311").replace(
        b"<ceb:currency>142</ceb:currency>", b"<ceb:currency>143</ceb:currency>"
    )
    found = schemas.diagnose(data)
    assert len(found) == data.count(b"<ceb:currency>143<")
    assert all("currency" in d.message and d.line for d in found)
    assert found[0].path == "CEB311Message/Order[1]/OrderHead/currency"
    assert "142" in found[0].message


def test_diagnose_names_missing_and_misplaced_elements() -> None:
    root = sample("311")
    head = first(root, "OrderHead")
    head.remove(first(head, "orderNo"))
    found = schemas.diagnose(etree.tostring(root))
    assert any("orderNo" in d.message for d in found)


def test_diagnose_envelope_payload() -> None:
    bad = _sample_bytes("621").replace(b"<ceb:ieFlag>I</ceb:ieFlag>", b"<ceb:ieFlag>X</ceb:ieFlag>")
    root = build_envelope(bad, sender_id="S", receiver_id="R", msg_type="CEB621Message")
    found = schemas.diagnose(etree.tostring(root))
    assert found and all(d.path.startswith("DxpMsg/Data: CEB621Message/") for d in found)
    assert "ieFlag" in found[0].message
    good = build_envelope(_sample_bytes("621"), sender_id="S", receiver_id="R", msg_type="x")
    assert schemas.diagnose(etree.tostring(good)) == []


def test_diagnose_bad_base64() -> None:
    root = _envelope()
    root.find(dx("Data")).text = "not base64!"
    found = schemas.diagnose(etree.tostring(root))
    assert [d.path for d in found] == ["DxpMsg/Data"]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b'<!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>', "DOCTYPE"),
        (b"<x", "well-formed"),
        (b"", "empty"),
        (base64.b64encode(b"<x/>"), "well-formed"),
    ],
)
def test_diagnose_unreadable(data: bytes, words: str) -> None:
    [only] = schemas.diagnose(data)
    assert words in only.message
