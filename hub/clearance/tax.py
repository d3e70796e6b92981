"""The tax on a list within the CBEC limits (spec §7): tariff 0, VAT and consumption tax at 70 %."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path

from hub.errors import ConfigError

CENT = Decimal("0.01")
DEFAULT_VAT = Decimal("0.13")  # import VAT on goods the table does not name
CBEC_SHARE = Decimal("0.7")  # VAT and consumption tax are levied at 70 % of the statutory amount
REPO_TAX_FILE = Path(__file__).resolve().parents[2] / "config" / "tax_rates.csv"


@dataclass(frozen=True)
class Rate:
    vat: Decimal
    consumption_tax: Decimal


DEFAULT_RATE = Rate(DEFAULT_VAT, Decimal(0))


class TaxTable:
    """Rates by HS-code prefix; the longest matching prefix wins."""

    def __init__(self, rates: dict[str, Rate]) -> None:
        self.rates = rates
        self._lengths = sorted({len(p) for p in rates}, reverse=True)

    def rate(self, gcode: str) -> Rate:
        for n in self._lengths:
            found = self.rates.get(gcode[:n])
            if found is not None:
                return found
        return DEFAULT_RATE


@lru_cache(maxsize=8)
def _load(path: Path, mtime: float) -> TaxTable:
    rates: dict[str, Rate] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=2):
            try:
                rates[row["hs_prefix"].strip()] = Rate(
                    Decimal(row["vat"]), Decimal(row["consumption_tax"] or "0")
                )
            except (KeyError, ArithmeticError, AttributeError) as exc:
                raise ConfigError(
                    f"{path}: line {n}: expected hs_prefix,vat,consumption_tax ({exc!r})"
                ) from None
    return TaxTable(rates)


def load_table(path: Path) -> TaxTable:
    """The table in `path`, or the repository's copy when the workspace has none."""
    chosen = path if path.is_file() else REPO_TAX_FILE
    return _load(chosen, chosen.stat().st_mtime)


@dataclass(frozen=True)
class LineTax:
    gnum: str
    gcode: str
    tax_price: Decimal  # the line's dutiable value
    customs_tax: Decimal
    value_added_tax: Decimal
    consumption_tax: Decimal


@dataclass(frozen=True)
class ListTax:
    lines: list[LineTax]

    @property
    def customs_tax(self) -> Decimal:
        return sum((x.customs_tax for x in self.lines), Decimal(0))

    @property
    def value_added_tax(self) -> Decimal:
        return sum((x.value_added_tax for x in self.lines), Decimal(0))

    @property
    def consumption_tax(self) -> Decimal:
        return sum((x.consumption_tax for x in self.lines), Decimal(0))

    @property
    def total(self) -> Decimal:
        return self.customs_tax + self.value_added_tax + self.consumption_tax


def _money(text: str | None) -> Decimal:
    return Decimal(text) if text else Decimal(0)


def compute(head: dict[str, str], lines: list[dict[str, str]], table: TaxTable) -> ListTax:
    """Tax per line on its dutiable value: its price plus its share of freight and insurance."""
    goods = sum((_money(x.get("totalPrice")) for x in lines), Decimal(0))
    extra = _money(head.get("freight")) + _money(head.get("insuredFee"))
    out = []
    for line in lines:
        price = _money(line.get("totalPrice"))
        share = extra * price / goods if goods else Decimal(0)
        dutiable = price + share
        rate = table.rate(line.get("gcode", ""))
        ct_full = dutiable * rate.consumption_tax / (1 - rate.consumption_tax)
        vat_full = (dutiable + ct_full) * rate.vat
        out.append(
            LineTax(
                gnum=line.get("gnum", ""),
                gcode=line.get("gcode", ""),
                tax_price=dutiable.quantize(CENT, ROUND_HALF_UP),
                customs_tax=Decimal("0.00"),  # tariff is 0 within the limits
                value_added_tax=(vat_full * CBEC_SHARE).quantize(CENT, ROUND_HALF_UP),
                consumption_tax=(ct_full * CBEC_SHARE).quantize(CENT, ROUND_HALF_UP),
            )
        )
    return ListTax(out)


def dutiable_value(head: dict[str, str], lines: list[dict[str, str]]) -> Decimal:
    """Goods + freight + insurance (spec §7): what the limits measure."""
    goods = sum((_money(x.get("totalPrice")) for x in lines), Decimal(0))
    return goods + _money(head.get("freight")) + _money(head.get("insuredFee"))
