"""One consumer purchase: everything its order, payment, waybill and list must agree on."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from stdnum.cn import ric

from hub.clock import CST
from hub.generator import catalogue
from hub.generator.catalogue import Goods, Region
from hub.generator.parties import DEMO_PARTIES, Parties

CENT = Decimal("0.01")
SINGLE_LIMIT = Decimal(5000)  # spec §7: CNY per transaction
DEFAULT_GOODS_MAX = Decimal(3000)  # leaves room for freight and tax under the single limit
DEFAULT_PLACED_AT = datetime(2025, 11, 11, tzinfo=CST)  # deterministic default day of purchase
TRADE_BONDED = "1210"  # bonded online-shopping import
TRADE_DIRECT = "9610"  # direct-purchase import
COUNTRY_CHINA = "142"
TRAF_ROAD = "4"  # 1210: goods leave the bonded zone by road (second-line exit leg)
TRAF_AIR = "5"  # 9610: parcels fly in
WRAP_CARTON = "2"

Value = str | int | Decimal | None
Overrides = Mapping[str, Mapping[str, Value]]


@dataclass(frozen=True)
class Person:
    """A buyer or payer: real name, resident ID number (GB 11643) and phone."""

    name: str
    id_number: str
    telephone: str


@dataclass(frozen=True)
class Consignee:
    """Who receives the parcel; order and waybill must carry it identically."""

    name: str
    telephone: str
    address: str
    district: str  # 6-digit NBS code


@dataclass(frozen=True)
class Line:
    """One goods line; the order's and the list's line with this `gnum` describe it."""

    gnum: int
    item_no: str
    item_name: str
    gmodel: str
    gcode: str
    unit: str
    qty: Decimal
    price: Decimal
    country: str  # origin
    unit1: str
    qty1: Decimal
    net_weight: Decimal  # kg, the whole line
    tax_rate: Decimal  # comprehensive CBEC rate of the HS code
    bar_code: str | None = None
    item_record_no: str | None = None  # bonded account-book item number (1210)
    unit2: str | None = None
    qty2: Decimal | None = None

    @property
    def total_price(self) -> Decimal:
        return self.qty * self.price


@dataclass(frozen=True)
class Shipment:
    """The conveyance that brings direct-purchase (9610) parcels in."""

    traf_mode: str
    traf_no: str  # conveyance (flight) name
    voyage_no: str
    bill_no: str  # master air waybill
    ie_date: date  # arrival date
    country: str  # departure country


@dataclass(frozen=True)
class Purchase:
    """A purchase and the numbers that link its four declarations.

    `goods_value` and `actural_paid` are derived, so a `dataclasses.replace` keeps them true.
    To make messages disagree on purpose, use `override` (per message entity) rather than
    editing a field, which every message would then repeat.
    """

    order_no: str
    pay_transaction_id: str
    logistics_no: str
    cop_no: str
    buyer: Person
    buyer_reg_no: str
    payer: Person
    consignee: Consignee
    lines: tuple[Line, ...]
    freight: Decimal
    insured_fee: Decimal
    discount: Decimal
    tax_total: Decimal
    trade_mode: str
    country: str  # list head: 142 for 1210, the departure country for 9610
    traf_mode: str
    gross_weight: Decimal
    net_weight: Decimal
    placed_at: datetime
    paid_at: datetime
    shipment: Shipment | None = None
    wrap_type: str | None = WRAP_CARTON
    pre_no: str | None = None  # set once the hub has assigned it
    invt_no: str | None = None  # set once customs has accepted the list
    # {"PaymentHead": {"amountPaid": "1.00"}, "InventoryList#2": {"country": "502"}}; None drops.
    field_overrides: Overrides = field(default_factory=dict, hash=False)

    @property
    def goods_value(self) -> Decimal:
        return sum((line.total_price for line in self.lines), Decimal(0))

    @property
    def actural_paid(self) -> Decimal:
        """Spec §2.2: goodsValue + freight + taxTotal − discount."""
        return self.goods_value + self.freight + self.tax_total - self.discount

    @property
    def is_bonded(self) -> bool:
        return self.trade_mode == TRADE_BONDED

    def override(self, entity: str, *, gnum: int | None = None, **fields: Value) -> Purchase:
        """A copy whose `entity` (e.g. "LogisticsHead") carries these field values instead.

        `gnum` narrows a line entity to one line; a value of None leaves the field out.
        """
        key = entity if gnum is None else f"{entity}#{gnum}"
        merged = {k: dict(v) for k, v in self.field_overrides.items()}
        merged.setdefault(key, {}).update(fields)
        return replace(self, field_overrides=merged)

    def overrides_for(self, entity: str, gnum: int | None = None) -> dict[str, Value]:
        found = dict(self.field_overrides.get(entity, {}))
        if gnum is not None:
            found.update(self.field_overrides.get(f"{entity}#{gnum}", {}))
        return found


# ---------------------------------------------------------------- people and numbers


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def resident_id(rng: random.Random, region: Region | None = None) -> str:
    """A GB 11643 resident ID: real region, real adult birth date, MOD 11-2 check digit."""
    region = region or rng.choice(catalogue.REGIONS)
    born = date(rng.randint(max(region.since, 1965), 2004), 1, 1)
    born += timedelta(days=rng.randrange(365))
    body = f"{region.code}{born:%Y%m%d}{rng.randrange(1, 1000):03d}"
    # stdnum computes the digit over number[:-1], so it wants a placeholder check digit.
    return body + ric.calc_check_digit(body + "0")


def mobile(rng: random.Random) -> str:
    return rng.choice(catalogue.MOBILE_PREFIXES) + _digits(rng, 8)


def chinese_name(rng: random.Random) -> str:
    return rng.choice(catalogue.SURNAMES) + rng.choice(catalogue.GIVEN)


def make_person(rng: random.Random) -> Person:
    """Someone with a valid resident ID; use it for a payer who is not the buyer."""
    return Person(chinese_name(rng), resident_id(rng), mobile(rng))


def make_consignee(rng: random.Random, person: Person | None = None) -> Consignee:
    """An address in a real district; `person` receives it, or someone new does."""
    region = rng.choice(catalogue.REGIONS)
    street = rng.choice(catalogue.STREETS)
    address = (
        f"{region.text}{street}{rng.randint(1, 999)}号"
        f"{rng.randint(1, 30)}栋{rng.randint(1, 4)}单元{rng.randint(1, 32)}{rng.randint(1, 8):02d}室"
    )
    person = person or make_person(rng)
    return Consignee(person.name, person.telephone, address, region.code)


def ean13(first12: str) -> str:
    """Append the EAN-13 check digit."""
    odd_even = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return first12 + str((10 - odd_even % 10) % 10)


def awb(serial7: int) -> str:
    """A master air waybill number: carrier prefix, 7-digit serial and its mod-7 check digit."""
    return f"{catalogue.AWB_PREFIX}-{serial7:07d}{serial7 % 7}"


def invt_no(customs_code: str, year: int, serial: int) -> str:
    """A customs list number as spec §2.7 describes it: district, year, I, 9-digit serial."""
    return f"{customs_code}{year:04d}I{serial:09d}"


def pre_no(day: date, serial: int) -> str:
    """An 18-character pre-entry number in the e-port's sample form (B + date + serial)."""
    return f"B{day:%Y%m%d}{serial:09d}"


def _numbers(rng: random.Random, at: datetime) -> dict[str, str]:
    """The four business keys of a purchase; lengths fit the XSDs (copNo ≤ 20)."""
    day = f"{at:%Y%m%d}"
    return {
        "order_no": f"EO{day}{_digits(rng, 12)}",
        "pay_transaction_id": f"PT{day}{_digits(rng, 16)}",
        "logistics_no": f"SF{_digits(rng, 13)}",
        "cop_no": f"C{day}{_digits(rng, 11)}",
    }


# ---------------------------------------------------------------- goods and amounts


def _quantity(rng: random.Random) -> Decimal:
    return Decimal(rng.choices((1, 2, 3, 4, 5, 6), weights=(60, 25, 8, 3, 2, 2))[0])


def _price(rng: random.Random, goods: Goods) -> Decimal:
    low, high = goods.price_range
    cents = rng.choice((Decimal("0"), Decimal("0.50"), Decimal("0.90"), Decimal("0.99")))
    return Decimal(rng.randint(low, high - 1)) + cents


def _line(rng: random.Random, gnum: int, goods: Goods, origin: str, bonded: bool) -> Line:
    qty = _quantity(rng)
    net = qty * goods.unit_net_kg
    qty1 = net if goods.unit1 == catalogue.UNIT_KG else qty * (goods.unit1_per_unit or 1)
    index = catalogue.GOODS.index(goods)
    return Line(
        gnum=gnum,
        item_no=goods.item_no,
        item_name=goods.name,
        gmodel=goods.gmodel,
        gcode=goods.gcode,
        unit=goods.unit,
        qty=qty,
        price=_price(rng, goods),
        country=origin,
        unit1=goods.unit1,
        qty1=qty1,
        net_weight=net,
        tax_rate=goods.tax_rate,
        bar_code=ean13(f"45{index:010d}"),
        item_record_no=f"GZNS{index + 1:06d}" if bonded else None,
        unit2=goods.unit2,
        qty2=qty * goods.unit2_per_unit if goods.unit2_per_unit else None,
    )


def _pick_goods(rng: random.Random, n: int) -> list[Goods]:
    if n <= len(catalogue.GOODS):
        return rng.sample(catalogue.GOODS, n)
    return [rng.choice(catalogue.GOODS) for _ in range(n)]


def _origin(rng: random.Random, goods: Goods, shipment: Shipment | None) -> str:
    # Direct-purchase parcels mostly hold goods made where they fly from.
    if shipment and shipment.country in goods.countries:
        return shipment.country
    return rng.choice(goods.countries)


def _scale(lines: list[Line], factor: Decimal, rounding: str) -> list[Line]:
    return [
        replace(line, price=max(CENT, (line.price * factor).quantize(CENT, rounding)))
        for line in lines
    ]


def _fit(lines: list[Line], low: Decimal | None, high: Decimal) -> list[Line]:
    """Scale prices so the goods value lies in [low, high]; quantities stay as drawn."""
    total = sum(line.total_price for line in lines)
    if total > high:
        lines = _scale(lines, high / total, ROUND_FLOOR)
    elif low is not None and total < low:
        lines = _scale(lines, low / total, ROUND_CEILING)
    total = sum(line.total_price for line in lines)
    if total > high or (low is not None and total < low):
        raise ValueError(f"cannot fit {len(lines)} lines between {low} and {high}")
    return lines


def estimate_tax(lines: tuple[Line, ...], freight: Decimal, insured_fee: Decimal) -> Decimal:
    """Tax on the dutiable value (price + freight + insurance, spec §7), spread by line value."""
    goods = sum((line.total_price for line in lines), Decimal(0))
    uplift = 1 + (freight + insured_fee) / goods
    tax = sum((line.total_price * uplift * line.tax_rate for line in lines), Decimal(0))
    return tax.quantize(CENT, ROUND_HALF_UP)


def _fees(rng: random.Random, goods_value: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """Freight, insurance and a coupon; most parcels ship free and carry no insurance."""
    freight = Decimal(rng.choices((0, 6, 8, 10, 12, 15, 20), weights=(40, 10, 15, 15, 10, 5, 5))[0])
    insured = Decimal(0)
    if rng.random() < 0.3:
        insured = max(CENT, (goods_value * Decimal("0.003")).quantize(CENT, ROUND_HALF_UP))
    discount = Decimal(0)
    if rng.random() < 0.4:
        discount = min(Decimal(rng.choice((5, 10, 20, 30, 50))), (goods_value / 2).quantize(CENT))
    return freight, insured, discount


def make_shipment(rng: random.Random, arrival: date, country: str | None = None) -> Shipment:
    """A flight carrying direct-purchase parcels from `country` (random if None)."""
    country = country or rng.choice(tuple(catalogue.AIRLINES))
    flight = f"{catalogue.AIRLINES[country]}{rng.randint(100, 999)}"
    return Shipment(
        traf_mode=TRAF_AIR,
        traf_no=flight,
        voyage_no=f"{flight}/{arrival:%Y%m%d}",
        bill_no=awb(rng.randrange(10**6, 10**7)),
        ie_date=arrival,
        country=country,
    )


# ---------------------------------------------------------------- purchases


def make_purchase(
    rng: random.Random,
    parties: Parties,
    *,
    lines: int | None = None,
    total_max: Decimal | None = None,
    total_min: Decimal | None = None,
    trade_mode: str = TRADE_BONDED,
    placed_at: datetime | None = None,
    shipment: Shipment | None = None,
    **overrides: object,
) -> Purchase:
    """A business-consistent purchase, the same for the same `rng` state.

    `total_max` / `total_min` bound the goods value (default: at most 3,000 CNY so the whole
    purchase stays under the 5,000 CNY single limit; pass `total_min=Decimal(5001)` for one
    over it). `overrides` replace `Purchase` fields afterwards (e.g. `payer=make_person(rng)`).
    """
    if trade_mode not in (TRADE_BONDED, TRADE_DIRECT):
        raise ValueError(f"trade mode {trade_mode!r}: the generator knows 1210 and 9610")
    if trade_mode == TRADE_BONDED and not (parties.ems_no and parties.area_code):
        raise ValueError("bonded (1210) purchases need the parties' emsNo and areaCode")
    placed = placed_at or DEFAULT_PLACED_AT + timedelta(seconds=rng.randrange(86400))
    bonded = trade_mode == TRADE_BONDED
    if not bonded and shipment is None:
        shipment = make_shipment(rng, (placed + timedelta(days=rng.randint(2, 5))).date())
    count = (
        lines if lines is not None else rng.choices((1, 2, 3, 4, 5), weights=(50, 25, 13, 7, 5))[0]
    )
    if not 1 <= count <= 99:
        raise ValueError("a purchase has 1..99 lines")
    high = total_max or max(DEFAULT_GOODS_MAX, (total_min or 0) * Decimal("1.2"))
    drawn = [
        _line(rng, gnum, goods, _origin(rng, goods, shipment), bonded)
        for gnum, goods in enumerate(_pick_goods(rng, count), start=1)
    ]
    goods_lines = tuple(_fit(drawn, total_min, high))
    goods_value = sum((line.total_price for line in goods_lines), Decimal(0))
    freight, insured, discount = _fees(rng, goods_value)
    net = max(CENT, sum((line.net_weight for line in goods_lines), Decimal(0)))
    buyer = make_person(rng)
    consignee = make_consignee(rng, buyer if rng.random() < 0.7 else None)
    purchase = Purchase(
        **_numbers(rng, placed),
        buyer=buyer,
        buyer_reg_no=f"u{_digits(rng, 10)}",
        payer=buyer,
        consignee=consignee,
        lines=goods_lines,
        freight=freight,
        insured_fee=insured,
        discount=discount,
        tax_total=estimate_tax(goods_lines, freight, insured),
        trade_mode=trade_mode,
        country=COUNTRY_CHINA if bonded else shipment.country,
        traf_mode=TRAF_ROAD if bonded else shipment.traf_mode,
        gross_weight=net + Decimal(rng.randint(10, 50)) / 100,
        net_weight=net,
        placed_at=placed,
        paid_at=placed + timedelta(seconds=rng.randint(10, 600)),
        shipment=shipment,
    )
    return replace(purchase, **overrides) if overrides else purchase


KEY_FIELDS = ("order_no", "pay_transaction_id", "logistics_no", "cop_no")


def make_purchases(
    n: int,
    seed: int = 0,
    *,
    parties: Parties | None = None,
    trade_mode: str = TRADE_BONDED,
    lines: int | None = None,
    total_max: Decimal | None = None,
    placed_at: datetime | None = None,
) -> list[Purchase]:
    """`n` purchases with distinct keys, the same for the same seed.

    Direct-purchase (9610) purchases of one call share one flight, as a real batch does.
    """
    rng = random.Random(seed)
    parties = parties or DEMO_PARTIES
    shipment = None
    if trade_mode == TRADE_DIRECT:
        shipment = make_shipment(rng, (placed_at or DEFAULT_PLACED_AT).date() + timedelta(days=3))
    seen: set[str] = set()
    out = []
    for _ in range(n):
        p = make_purchase(
            rng, parties, lines=lines, total_max=total_max, trade_mode=trade_mode,
            placed_at=placed_at, shipment=shipment,
        )  # fmt: skip
        while any(getattr(p, k) in seen for k in KEY_FIELDS):
            p = replace(p, **_numbers(rng, p.placed_at))
        seen.update(getattr(p, k) for k in KEY_FIELDS)
        out.append(p)
    return out
