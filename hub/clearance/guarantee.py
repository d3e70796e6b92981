"""Guarantee balances: atomic debits that never go negative, restores, and a ledger of both."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, insert, select, update

from hub.clearance.tables import guarantee_ledger, guarantees


def balance(conn: Connection, assure_code: str) -> Decimal | None:
    """The balance of a guarantee, or None if it has none."""
    return conn.execute(
        select(guarantees.c.balance).where(guarantees.c.assure_code == assure_code)
    ).scalar()


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
    done = conn.execute(
        update(guarantees)
        .where(guarantees.c.assure_code == assure_code, guarantees.c.balance >= amount)
        .values(balance=guarantees.c.balance - amount, updated_at=now)
    ).rowcount
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
    conn.execute(
        update(guarantees)
        .where(guarantees.c.assure_code == assure_code)
        .values(balance=guarantees.c.balance + amount, updated_at=now)
    )
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
    conn.execute(
        insert(guarantee_ledger).values(
            assure_code=code, list_id=list_id, kind=kind, amount=amount, at=now, note=note
        )
    )
