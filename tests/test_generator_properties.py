"""Properties: every generated message passes our XSD; single-field damage is caught by name."""

from __future__ import annotations

import random
import re
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from hub import schemas
from hub.errors import SchemaError
from hub.generator import (
    DEMO_PARTIES,
    cancel_message,
    dxp_envelope,
    entry_message,
    list_message,
    make_purchases,
    order_message,
    payment_message,
    refund_message,
    to_bytes,
    waybill_message,
    waybill_status_message,
)
from hub.signing import new_self_signed, sign_enveloped
from tests.test_generator import ENTITIES, NS, SPEC, declared, local

# One EC key for the whole module: key generation is the slow part, signing is cheap.
KEY, CERT = new_self_signed("generator-properties", key_type="ec")
SIGNED_BY_SCHEMA = {"CEB621Message", "CEB623Message", "CEB625Message", "CEB711Message"}
BUILDERS = {
    "CEB311Message": order_message,
    "CEB411Message": payment_message,
    "CEB511Message": waybill_message,
    "CEB513Message": waybill_status_message,
    "CEB621Message": list_message,
    "CEB623Message": cancel_message,
    "CEB625Message": refund_message,
    "CEB711Message": entry_message,
}
ALL_TYPES = tuple(sorted(BUILDERS))
# Code-list fields and a value outside each list (spec §2.12).
BAD_CODES = {
    "currency": "840",
    "appType": "9",
    "appStatus": "3",
    "orderType": "E",
    "ieFlag": "X",
    "buyerIdType": "2",
    "payerIdType": "2",
    "tradeMode": "0110",
    "dxpMode": "FTP",
    "logisticsStatus": "X",
}

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def sign(root: etree._Element) -> etree._Element:
    return sign_enveloped(root, KEY, CERT, algorithm="ecdsa-sha256")


@st.composite
def messages(draw, max_records: int = 100, max_lines: int = 10, types=ALL_TYPES):
    """(root name, root) of a declaration type built from random purchases."""
    name = draw(st.sampled_from(types))
    trade = "9610" if name == "CEB711Message" else draw(st.sampled_from(["1210", "9610"]))
    purchases = make_purchases(
        draw(st.integers(1, max_records)),
        seed=draw(st.integers(0, 2**32 - 1)),
        trade_mode=trade,
        lines=draw(st.integers(1, max_lines)),
    )
    if name in ("CEB623Message", "CEB625Message"):
        purchases = declared(purchases)
    kwargs = {"app_status": draw(st.sampled_from(["1", "2"])), "rng": random.Random(0)}
    if name != "CEB623Message":  # a cancellation is always appType 1
        kwargs["app_type"] = draw(st.sampled_from(["1", "2", "3"]))
    if name in SIGNED_BY_SCHEMA or draw(st.booleans()):
        kwargs["sign"] = sign
    return name, BUILDERS[name](purchases, DEMO_PARTIES, **kwargs)


def names_field(err: SchemaError, field: str) -> bool:
    """True if the error's path ends at `field` or its text names it."""
    last = (err.path or "").rsplit("/", 1)[-1].split("[", 1)[0]
    return last == field or re.search(rf"\b{re.escape(field)}\b", err.info) is not None


def entity_elements(name: str, root: etree._Element) -> list[tuple[etree._Element, str]]:
    return [(el, entity) for path, entity in ENTITIES[name] for el in root.iterfind(path, NS)]


def pick_field(data, name, root, wanted) -> tuple[etree._Element, str]:
    """A (field element, spec kind) the predicate `wanted(field, kind, required)` accepts."""
    choices = []
    for el, entity in entity_elements(name, root):
        spec = {field: (kind, required) for field, kind, required in SPEC[entity]}
        for child in el:
            kind, required = spec[local(child)]
            if wanted(local(child), kind, required):
                choices.append((child, kind))
    return data.draw(st.sampled_from(choices))


def rejected(root: etree._Element) -> SchemaError:
    with pytest.raises(SchemaError) as caught:
        schemas.validate(root)
    return caught.value


# ---------------------------------------------------------------------------------------------
# (a) everything the generator makes is valid


@SETTINGS
@given(messages())
def test_generated_messages_validate(message):
    name, root = message
    assert local(root) == name
    schemas.validate(root)
    # and they survive serialisation and a DXP envelope unchanged
    data = to_bytes(root)
    schemas.validate(etree.fromstring(data))
    envelope = dxp_envelope(data, sender_id="DXPENT0000100005", receiver_id="DXPEDCCEB0000002")
    schemas.validate_envelope(etree.fromstring(envelope))


# ---------------------------------------------------------------------------------------------
# (b) one broken field is rejected and named


@SETTINGS
@given(messages(max_records=5, max_lines=4), st.data())
def test_dropping_a_required_field_is_rejected(message, data):
    name, root = message
    child, _ = pick_field(data, name, root, lambda f, k, required: required)
    field = local(child)
    child.getparent().remove(child)
    err = rejected(root)
    assert names_field(err, field), (field, err.path, err.info)


def _limit(kind: str) -> int | None:
    found = re.fullmatch(r"C(?:\.\.)?(\d+)", kind)
    return int(found[1]) if found else None


@SETTINGS
@given(messages(max_records=5, max_lines=4), st.data())
def test_an_overlong_value_is_rejected(message, data):
    name, root = message
    child, kind = pick_field(data, name, root, lambda f, k, r: _limit(k) is not None)
    child.text = "9" * (_limit(kind) + 1)
    err = rejected(root)
    assert names_field(err, local(child)), (local(child), err.path, err.info)


WITH_AMOUNTS = ("CEB311Message", "CEB411Message", "CEB511Message", "CEB621Message", "CEB625Message")


@SETTINGS
@given(messages(max_records=5, max_lines=4, types=WITH_AMOUNTS), st.data())
def test_six_fraction_digits_are_rejected(message, data):
    name, root = message
    child, _ = pick_field(data, name, root, lambda f, kind, r: kind == "N")
    child.text = str(Decimal(data.draw(st.integers(0, 10**6))) + Decimal("0.123456"))
    err = rejected(root)
    assert names_field(err, local(child)), (local(child), err.path, err.info)


@SETTINGS
@given(messages(max_records=5, max_lines=4), st.data())
def test_a_value_outside_the_code_list_is_rejected(message, data):
    name, root = message
    child, _ = pick_field(data, name, root, lambda field, k, r: field in BAD_CODES)
    child.text = BAD_CODES[local(child)]
    err = rejected(root)
    assert names_field(err, local(child)), (local(child), err.path, err.info)


@SETTINGS
@given(messages(max_records=5, max_lines=4), st.data())
def test_two_swapped_siblings_are_rejected(message, data):
    name, root = message
    el, _ = data.draw(st.sampled_from(entity_elements(name, root)))
    i = data.draw(st.integers(0, len(el) - 2))
    first, second = el[i], el[i + 1]
    el.remove(second)
    el.insert(i, second)
    err = rejected(root)
    assert names_field(err, local(first)) or names_field(err, local(second)), (
        local(first),
        local(second),
        err.path,
        err.info,
    )


@pytest.mark.parametrize("name", ALL_TYPES)
def test_the_largest_messages_validate(name):
    """100 records of 10 lines each: the size the random examples rarely reach."""
    purchases = make_purchases(100, seed=1, trade_mode="9610", lines=10)
    if name in ("CEB623Message", "CEB625Message"):
        purchases = declared(purchases)
    root = BUILDERS[name](purchases, DEMO_PARTIES, sign=sign)
    schemas.validate(root)
