"""Guards that refuse changing an order, payment or waybill once a list declared for it."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Row, Table, and_, select

from hub.errors import RecordRejected
from hub.handlers.base import Guard
from hub.messages.types import MessageType
from hub.store import tables

LISTS_TABLE = "lists"
# List states that no longer bind the linked records: still the agent's to edit, or withdrawn.
OPEN_LIST_STATES = ("temporary", "returned", "deleted", "cancelled")
_NEEDED = ("ebp_code", "order_no", "logistics_code", "logistics_no", "state")


def lists_table() -> Table | None:
    """The declaration-list table, once the clearance engine has defined it with our columns."""
    table = tables.metadata.tables.get(LISTS_TABLE)
    if table is None or any(name not in table.c for name in _NEEDED):
        return None
    return table


def declared_list_state(conn: Connection, table: Table | None = None, **where: str) -> str | None:
    """The state of a declared (not temporary/returned/deleted) list matching `where`, if any."""
    table = table if table is not None else lists_table()
    if table is None:
        return None
    cond = and_(
        *(table.c[column] == value for column, value in where.items()),
        table.c.state.not_in(OPEN_LIST_STATES),
    )
    return conn.execute(select(table.c.state).where(cond).limit(1)).scalar()


def declared_list_guard(
    msg_type: MessageType, link: Callable[[Row], dict[str, str]], table: Table | None = None
) -> Guard:
    """A guard refusing a change or delete with the type's "declared" code (-301011, …).

    `link` maps the stored row to the list columns that tie a list to it. `table` is for
    tests that stand a lists table in; by default the guard looks the table up on each call.
    """
    assert msg_type.codes is not None
    code = msg_type.codes.declared

    def guard(conn: Connection, row: Row) -> None:
        where = link(row)
        state = declared_list_state(conn, table, **where)
        if state is not None:
            keys = ", ".join(f"{k} {v}" for k, v in where.items())
            raise RecordRejected(
                code,
                f"a declaration list for {keys} is {state}; the record may no longer change",
            )

    return guard


def order_link(row: Row) -> dict[str, str]:
    return {"ebp_code": row.ebp_code, "order_no": row.order_no}


def waybill_link(row: Row) -> dict[str, str]:
    return {"logistics_code": row.logistics_code, "logistics_no": row.logistics_no}


# A payment reaches its list through its order: ebpCode + orderNo.
payment_link = order_link
