"""Time: UTC in the database, China Standard Time in CEB stamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

CST = timezone(timedelta(hours=8), "CST")  # customs stamps are Beijing time


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(at: datetime) -> datetime:
    """`at` as an aware datetime: a naive one is UTC (SQLite hands stored times back naive)."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def stamp17(when: datetime | None = None) -> str:
    """`returnTime`: yyyyMMddHHmmssSSS."""
    return _stamp17(when or utcnow())


# A transaction stamps all its receipts and numbers with one `now`: formatted once.
@lru_cache(maxsize=16)
def _stamp17(when: datetime) -> str:
    t = when.astimezone(CST)
    return t.strftime("%Y%m%d%H%M%S") + f"{t.microsecond // 1000:03d}"


def stamp14(when: datetime | None = None) -> str:
    """`appTime`: yyyyMMddHHmmss."""
    return (when or utcnow()).astimezone(CST).strftime("%Y%m%d%H%M%S")


def stamp8(when: datetime | None = None) -> str:
    """`declTime`: yyyyMMdd."""
    return _stamp8(when or utcnow())


@lru_cache(maxsize=16)
def _stamp8(when: datetime) -> str:
    return when.astimezone(CST).strftime("%Y%m%d")
