"""Buyer identity: the GB 11643 resident-ID check and the real-name registry behind an interface."""

from __future__ import annotations

import csv
import functools
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, bindparam, delete, insert, select
from stdnum import numdb
from stdnum.cn import ric
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)
from stdnum.util import isdigits

from hub.clearance.tables import identities
from hub.store.prepared import Prepared

_NAME_OF = Prepared(select(identities.c.name).where(identities.c.id_number == bindparam("number")))


def id_number_problem(number: str) -> str | None:
    """Why `number` is not a valid GB 11643 resident ID, or None if it is.

    The checks of `stdnum.cn.ric.validate`, in its order; the region's entries are looked up
    in stdnum's table once per code (a search of ~300 µs each time in stdnum).
    """
    try:
        compact = ric.compact(number)
        if len(compact) != 18:
            raise InvalidLength()
        if not isdigits(compact[:-1]):
            raise InvalidFormat()
        if compact[-1] != ric.calc_check_digit(compact):
            raise InvalidChecksum()
        ric.get_birth_date(compact)
        _check_region(compact[:6], compact[6:10])
    except InvalidLength:
        return f"ID number {number!r} is not 18 characters"
    except InvalidFormat:
        return f"ID number {number!r} must be 17 digits and a check character"
    except InvalidChecksum:
        return f"ID number {number!r} fails the MOD 11-2 check digit"
    except InvalidComponent:
        return f"ID number {number!r} has no real birth date or region"
    except ValidationError:
        return f"ID number {number!r} is not a valid resident ID"
    return None


def _check_region(region: str, year: str) -> None:
    """Raise InvalidComponent unless the region code named a county in the birth year.

    stdnum's rule (`ric.get_birth_place`): a county entry is "[start-end]name" or a plain
    name (always valid); a code with no county entry is no region.
    """
    born = int(year)
    for county in _counties(region):
        if not county.startswith("["):
            return
        start, _, end = county[1:].partition("]")[0].partition("-")
        if (not start or born >= int(start)) and (not end or born <= int(end)):
            return
    raise InvalidComponent()


@functools.lru_cache(maxsize=8192)
def _counties(region: str) -> tuple[str, ...]:
    """The county entries stdnum's region table has for a code, looked up once per code."""
    found = numdb.get("cn/loc").info(region)
    info = {key: value for _, props in found for key, value in props.items()}
    return tuple(info["county"].split(",")) if info.get("county") else ()


class RealNameRegistry(Protocol):
    """Answers who an ID number belongs to; a real verification service fits behind this."""

    def name_of(self, conn: Connection, id_number: str) -> str | None: ...


class StoredRegistry:
    """The registry kept in the `identities` table (`cebhub identity import CSV`)."""

    def name_of(self, conn: Connection, id_number: str) -> str | None:
        return _NAME_OF.scalar(conn, {"number": id_number})


REGISTRY: RealNameRegistry = StoredRegistry()


def import_csv(conn: Connection, path: Path, now: datetime) -> int:
    """Load `id-number,name` rows (a header row is skipped); returns how many were stored."""
    rows: dict[str, str] = {}
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for record in csv.reader(fh):
            if len(record) < 2 or not record[0].strip():
                continue
            number, name = record[0].strip().upper(), record[1].strip()
            if number.lower() in ("id", "id_number", "id-number", "idnumber"):
                continue
            rows[number] = name
    if rows:
        conn.execute(delete(identities).where(identities.c.id_number.in_(list(rows))))
        conn.execute(
            insert(identities),
            [
                {"id_number": n, "name": m, "source": path.name[:64], "updated_at": now}
                for n, m in rows.items()
            ],
        )
    return len(rows)
