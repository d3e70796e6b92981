"""The CEB stamps: Beijing time, whatever zone the instant was given in, cached or not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from hub.clock import CST, stamp8, stamp14, stamp17

ZONES = st.sampled_from([UTC, CST, timezone(timedelta(hours=-5)), timezone(timedelta(hours=13))])
INSTANTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=ZONES
)


@given(INSTANTS, ZONES)
def test_stamps_are_beijing_time_of_the_instant_in_any_zone(when, other_zone):
    beijing = when.astimezone(CST)
    expected17 = beijing.strftime("%Y%m%d%H%M%S") + f"{beijing.microsecond // 1000:03d}"
    # the same instant in another zone is equal, and hashes alike: the cached stamp must
    # be the one of the instant, not of the first zone it was asked in
    for at in (when, when.astimezone(other_zone), when):
        assert stamp17(at) == expected17
        assert stamp14(at) == beijing.strftime("%Y%m%d%H%M%S")
        assert stamp8(at) == beijing.strftime("%Y%m%d")


def test_a_stamp_without_an_instant_is_now():
    before = datetime.now(UTC).astimezone(CST).strftime("%Y%m%d")
    assert stamp8() in {before, datetime.now(UTC).astimezone(CST).strftime("%Y%m%d")}
    assert len(stamp17()) == 17
