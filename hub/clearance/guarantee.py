"""Guarantee balances: atomic debits that never go negative, restores, and a ledger of both."""

from __future__ import annotations

from dataclasses import dataclass, field
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


class GuaranteeMoved(Exception):
    """Deferred debits no longer fit: the guarantee was drawn on since its balance was read."""


@dataclass
class DeferredDebits:
    """The debits of a sweep's transaction, taken off each guarantee in one statement at its
    end (`apply`), so that its row is locked from that UPDATE to the commit instead of from
    the first list's debit: two PostgreSQL workers sweeping at once waited on it for each
    other's whole transaction (docs/performance.md, rounds 15 and 16).

    A list's debit is decided on the balance read once a transaction, read again before a
    list is refused; each is in the ledger at once. `apply`'s UPDATE is conditional, as
    `debit`'s is, so a balance never goes below zero: if another worker drew on it meanwhile,
    GuaranteeMoved, and the sweep does its lists again with their debits made at once.
    """

    balances: dict[str, Decimal | None] = field(default_factory=dict)
    taken: dict[str, Decimal] = field(default_factory=dict)  # by lists whose step is done

    def debit(
        self,
        conn: Connection,
        code: str,
        amount: Decimal,
        list_id: int,
        now: datetime,
        pending: list[tuple[str, Decimal]],
    ) -> bool:
        """`debit` deferred: noted in `pending` (the list's, until `take`) if it fits."""
        held = self.taken.get(code, Decimal(0)) + sum(
            (a for c, a in pending if c == code), Decimal(0)
        )
        have = self.balances.get(code)
        if have is None or have - held < amount:
            have = self.balances[code] = balance(conn, code)
        if have is None or have - held < amount:
            return False
        pending.append((code, amount))
        _ledger(conn, code, list_id, "debit", -amount, now, "tax of list")
        return True

    def take(self, debits: list[tuple[str, Decimal]]) -> None:
        """A list's deferred debits, once its step has been written."""
        for code, amount in debits:
            self.taken[code] = self.taken.get(code, Decimal(0)) + amount

    def apply(self, conn: Connection, now: datetime) -> None:
        """Take the debits off their guarantees (in the order of their codes: two workers
        never lock two guarantees in opposite orders)."""
        for code in sorted(self.taken):
            params = {"code": code, "amount": self.taken[code], "now": now}
            if _DEBIT.execute(conn, params).rowcount != 1:
                raise GuaranteeMoved(code)
        self.taken.clear()
