"""The resident-ID check answers as `stdnum.cn.ric.validate` does, with the region look-up kept."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from hub.clearance.identity import id_number_problem
from hub.generator.purchase import resident_id


def stdnum_says(number: str) -> bool:
    try:
        ric.validate(number)
    except ValidationError:
        return False
    except KeyError:  # stdnum's own failure on a province or city code: no county, no region
        return False
    return True


def with_check_digit(body: str) -> str:
    return body + ric.calc_check_digit(body + "0")


VALID = [resident_id(random.Random(seed)) for seed in range(200)]
# Beijing codes whose counties were valid only for some years: 崇文区 until 2010, 燕山区
# until 1986, 房山区 from 1986, 通州区 from 1997.
DATED_REGIONS = ["110103", "110110", "110111", "110112"]


def test_generated_ids_pass_and_each_kind_of_fault_gets_its_reason():
    assert all(id_number_problem(n) is None for n in VALID)
    good = VALID[0]
    assert "18 characters" in id_number_problem(good[:-1])
    assert "17 digits" in id_number_problem("A" + good[1:])
    wrong_digit = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert "check digit" in id_number_problem(wrong_digit)
    assert "birth date or region" in id_number_problem(with_check_digit(good[:10] + "1399001"))
    assert "birth date or region" in id_number_problem(with_check_digit("999999" + good[6:17]))
    # stdnum itself raises KeyError for a code with no county (500001): a fault, not a crash
    assert "birth date or region" in id_number_problem(with_check_digit("500001" + good[6:17]))


@settings(max_examples=500, deadline=None)
@given(
    base=st.sampled_from(VALID),
    region=st.one_of(st.none(), st.sampled_from(DATED_REGIONS), st.from_regex(r"\A[0-9]{6}\Z")),
    year=st.one_of(st.none(), st.integers(1900, 2030), st.sampled_from([1985, 1986, 2010, 2011])),
    fix_digit=st.booleans(),
)
def test_same_verdict_as_stdnum(base, region, year, fix_digit):
    body = (region or base[:6]) + (f"{year:04d}" if year else base[6:10]) + base[10:17]
    number = with_check_digit(body) if fix_digit else body + base[17]
    assert (id_number_problem(number) is None) == stdnum_says(number)
