"""Guarantee balances: atomic debits that never go negative, restores, and a ledger of both."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, bindparam, insert, select, update

from hub.clearance.tables import guarantee_ledger, guarantees
from hub.store.prepared import Prepared

_CODE = guarantees.c.assure_code == bindparam("code")
_AMOUNT = bindparam("amount", type_=guarantees.c.balance.type)
_NOW = bindparam("now", type_=guarantees.c.updated_at.type)
_BALANCE = Prepared(select(guarantees.c.balance).where(_CODE))
# The check and the change in one statement: its row count says whether the debit was made.
_DEBIT = Prepared(
    update(guarantees)
    .where(_CODE, guarantees.c.balance >= _AMOUNT)
    .values(balance=guarantees.c.balance - _AMOUNT, updated_at=_NOW)
)
_RESTORE = Prepared(
    update(guarantees).where(_CODE).values(balance=guarantees.c.balance + _AMOUNT, updated_at=_NOW)
)
_LEDGER = Prepared(insert(guarantee_ledger))


def balance(conn: Connection, assure_code: str) -> Decimal | None:
    """The balance of a guarantee, or None if it has none."""
    return _BALANCE.scalar(conn, {"code": assure_code})


def set_balance(conn: Connection, assure_code: str, amount: Decimal, now: datetime) -> None:
    """Set a guarantee's balance (lodged or topped up by the enterprise)."""
    before = balance(conn, assure_code)
    if before is None:
        conn.execute(
            insert(guarantees).values(assure_code=assure_code, balance=amount, updated_at=now)
        )
        before = Decimal(0)
    else:
        conn.execute(
            update(guarantees)
            .where(guarantees.c.assure_code == assure_code)
            .values(balance=amount, updated_at=now)
        )
    _ledger(conn, assure_code, None, "set", amount - before, now, f"balance set to {amount}")


def debit(conn: Connection, assure_code: str, amount: Decimal, list_id: int, now: datetime) -> bool:
    """Take `amount` off the balance if it covers it; False leaves everything untouched.

    The check and the change are one conditional UPDATE, so two processes debiting the same
    guarantee at once can never take it below zero, whatever the isolation level.
    """
    if amount <= 0:
        return balance(conn, assure_code) is not None
    done = _DEBIT.execute(conn, {"code": assure_code, "amount": amount, "now": now}).rowcount
    if done != 1:
        return False
    _ledger(conn, assure_code, list_id, "debit", -amount, now, "tax of list")
    return True


def restore(
    conn: Connection, assure_code: str, amount: Decimal, list_id: int, now: datetime, note: str
) -> None:
    """Give back tax debited for a list that was returned, cancelled or refunded."""
    if amount <= 0:
        return
    _RESTORE.execute(conn, {"code": assure_code, "amount": amount, "now": now})
    _ledger(conn, assure_code, list_id, "restore", amount, now, note)


def _ledger(
    conn: Connection,
    code: str,
    list_id: int | None,
    kind: str,
    amount: Decimal,
    now: datetime,
    note: str,
) -> None:
    _LEDGER.execute(
        conn,
        dict(assure_code=code, list_id=list_id, kind=kind, amount=amount, at=now, note=note),
    )
