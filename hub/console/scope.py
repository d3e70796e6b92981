"""Operator isolation: which records and partners a principal may see (design §8)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Table, false, or_

from hub.config import Partner, Settings
from hub.console.auth import Principal, UserRole

# The enterprise-code columns of each record table: an operator sees a row when any is its own.
CODE_COLUMNS: dict[str, tuple[str, ...]] = {
    "orders": ("ebp_code", "ebc_code"),
    "payments": ("pay_code", "ebp_code"),
    "waybills": ("logistics_code",),
    "lists": ("agent_code", "ebp_code", "ebc_code", "logistics_code", "pay_code"),
}


def visible(table: Table, who: Principal) -> ColumnElement[bool] | None:
    """A WHERE clause limiting `table` to the principal's records; None: no limit."""
    if not who.scoped:
        return None
    columns = [table.c[n] for n in CODE_COLUMNS.get(table.name, ()) if n in table.c]
    if not columns or not who.codes:
        return false()
    return or_(*(c.in_(sorted(who.codes)) for c in columns))


def limit(query, table: Table, who: Principal):
    clause = visible(table, who)
    return query if clause is None else query.where(clause)


def own_partners(settings: Settings, who: Principal) -> list[Partner]:
    """Partners the principal may act as when it uploads or submits a message."""
    if who.role in (UserRole.ADMIN, UserRole.OPS):
        return list(settings.partners.values())
    if who.role == UserRole.OPERATOR:
        return [p for p in settings.partners.values() if who.codes & set(p.codes)]
    return []


def may_pull(settings: Settings, who: Principal, partner_id: str) -> bool:
    """Customs and inspection systems pull their own role's feed; admin and ops any."""
    partner = settings.partners.get(partner_id)
    if partner is None or partner.transport != "pull":
        return False
    if who.role in (UserRole.ADMIN, UserRole.OPS):
        return True
    return who.officer and partner.role.value == who.role.value
