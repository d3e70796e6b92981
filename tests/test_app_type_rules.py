"""appType / appStatus rules, record limits and schema errors, table-driven over 411/511/513/711."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import pytest
from lxml import etree
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

from hub import config, schemas
from hub.clock import utcnow
from hub.constants import ceb
from hub.errors import RecordRejected
from hub.generator import (
    DEMO_PARTIES,
    TRADE_DIRECT,
    Purchase,
    entry_message,
    make_purchases,
    order_message,
    payment_message,
    to_bytes,
    waybill_message,
    waybill_status_message,
)
from hub.handlers.guards import (
    declared_list_guard,
    lists_table,
    order_link,
    payment_link,
    waybill_link,
)
from hub.messages.types import ORDER, PAYMENT, WAYBILL
from hub.store.db import engine_for
from hub.store.tables import metadata, payments
from hub.workspace import Workspace
from tests.helpers import Entry, cli, files, receipt_entries, traced_sql, unwrap

OLD_CLOCK = lambda: datetime(2020, 1, 1)  # noqa: E731  (older than anything stored)


def db(ws: Workspace):
    return engine_for(config.load(ws), ws)


def add_operator(ws: Workspace, keys) -> None:
    """The supervised-site operator that sends CEB711 (not in the `hub_ws` fixture)."""
    code = DEMO_PARTIES.operator_code
    cert = keys["operator"].cert_path
    assert (
        cli(ws, "partner", "add", "operator", "--role", "operator", "--codes", code, "--cert", cert)
        == 0
    )


def send(ws: Workspace, partner: str, root: etree._Element, name: str | None = None) -> list[Entry]:
    """Submit a message as `partner`, run the hub once, and return the receipt entries it caused."""
    out = ws.outbox_of(partner)
    before = len(receipt_entries(out))
    src = ws.root / (name or f"{partner}-{before}-{len(files(ws.root))}.xml")
    src.write_bytes(root if isinstance(root, bytes) else to_bytes(root))
    assert cli(ws, "submit", src, "--from", partner) == 0
    assert cli(ws, "run", "--once") == 0
    return receipt_entries(out)[before:]


def codes_of(entries: list[Entry]) -> list[str]:
    return [e.status for e in entries]


def assert_everything_sent_is_valid(ws: Workspace) -> None:
    """Every receipt and routed copy in every outbox passes our XSD."""
    sent = [p for d in ws.outbox.iterdir() if d.is_dir() for p in files(d)]
    assert sent
    for path in sent:
        schemas.validate(unwrap(path.read_bytes()))


@dataclass(frozen=True)
class Case:
    """One declaration type as these tests drive it."""

    code: str
    partner: str  # sending partner (and key) id
    build: Callable[..., etree._Element]  # (purchases, **generator kwargs) -> unsigned root
    record: str  # the repeated record entity under the root
    receipt: str
    table: str
    exists: str
    unknown: str
    stale: str
    too_many: str
    bad: tuple[str, str, str]  # (entity, field, value) that breaks our XSD
    trade_mode: str = "1210"
    too_many_count: int = 101

    def purchases(self, seed: int) -> list[Purchase]:
        return make_purchases(1, seed=seed, trade_mode=self.trade_mode)

    def message(self, ws, keys, purchases, **kw) -> etree._Element:
        return keys[self.partner].sign(self.build(purchases, **kw))

    def prepare(self, ws: Workspace, keys, purchases: list[Purchase]) -> None:
        if self.code == "513":  # a status needs its waybill
            root = keys["logistics"].sign(waybill_message(purchases, DEMO_PARTIES))
            assert "120" in codes_of(send(ws, "logistics", root))
        if self.code == "711":
            add_operator(ws, keys)


CASES = {
    "411": Case(
        "411", "payment", lambda ps, **kw: payment_message(ps, DEMO_PARTIES, **kw), "Payment",
        "CEB412Message", "payments", exists="-401007", unknown="-401009", stale="-401012",
        too_many="-401013", bad=("PaymentHead", "amountPaid", "1.123456"),
    ),
    "511": Case(
        "511", "logistics", lambda ps, **kw: waybill_message(ps, DEMO_PARTIES, **kw),
        "Logistics", "CEB512Message", "waybills", exists="-504015", unknown="-504000",
        stale="-504000", too_many="-504013", bad=("LogisticsHead", "weight", "1.123456"),
    ),
    "513": Case(
        "513", "logistics", lambda ps, **kw: waybill_status_message(ps, DEMO_PARTIES, **kw),
        "LogisticsStatus", "CEB514Message", "waybill_statuses", exists="-505012",
        unknown="-505000", stale="-505000", too_many="-505000",
        bad=("LogisticsStatus", "logisticsTime", "2025"),
    ),
    "711": Case(
        "711", "operator", lambda ps, **kw: entry_message(ps, DEMO_PARTIES, **kw), "Delivery",
        "CEB712Message", "entries", exists="-800003", unknown="-800000", stale="-800005",
        too_many="-800000", bad=("DeliveryHead", "billNo", "B" * 38), trade_mode=TRADE_DIRECT,
        too_many_count=2,
    ),
}  # fmt: skip


@pytest.mark.parametrize("code", CASES)
def test_app_type_and_app_status_rules(hub_ws, keys, code):
    case = CASES[code]
    purchases = case.purchases(seed=int(code))
    case.prepare(hub_ws, keys, purchases)

    def go(app_type: str, **kw) -> list[str]:
        entries = send(
            hub_ws, case.partner, case.message(hub_ws, keys, purchases, app_type=app_type, **kw)
        )
        assert {e.msg_type for e in entries} == {case.receipt}
        return codes_of(entries)

    assert go("2") == [case.unknown]  # change of an unknown record
    assert go("3") == [case.unknown]  # delete of an unknown record
    assert go("1") == ["2", "120"]
    assert go("1") == [case.exists]  # the same key again as new
    assert go("2") == ["2", "120"]
    assert go("2", clock=OLD_CLOCK) == [case.stale]  # older than the stored version: ignored
    assert go("3") == ["2"]
    assert go("1", app_status="1") == ["1"]  # temporary save: 暂存 only
    assert go("2") == ["2", "120"]  # declared by a change

    table = metadata.tables[case.table]
    with db(hub_ws).connect() as conn:
        [row] = conn.execute(select(table)).all()
    assert (row.state, row.app_status, row.return_status) == ("active", "2", "120")
    assert_everything_sent_is_valid(hub_ws)


@pytest.mark.parametrize("code", CASES)
def test_temporary_record_is_answered_and_stored_as_temporary(hub_ws, keys, code):
    case = CASES[code]
    purchases = case.purchases(seed=int(code) + 1)
    case.prepare(hub_ws, keys, purchases)
    entries = send(hub_ws, case.partner, case.message(hub_ws, keys, purchases, app_status="1"))
    assert [(e.status, e.info) for e in entries] == [("1", "暂存")]
    with db(hub_ws).connect() as conn:
        [row] = conn.execute(select(metadata.tables[case.table])).all()
    assert (row.app_status, row.return_status) == ("1", "1")


def _replicate(root: etree._Element, record: str, count: int) -> etree._Element:
    first = root.find(ceb(record))
    for _ in range(count - 1):
        first.addnext(copy.deepcopy(first))
    return root


@pytest.mark.parametrize("code", CASES)
def test_too_many_records_get_the_type_code_for_every_record(hub_ws, keys, code):
    case = CASES[code]
    purchases = case.purchases(seed=int(code) + 2)
    case.prepare(hub_ws, keys, purchases)
    root = _replicate(case.build(purchases), case.record, case.too_many_count)
    entries = send(hub_ws, case.partner, keys[case.partner].sign(root))
    assert codes_of(entries) == [case.too_many] * case.too_many_count
    assert {e.msg_type for e in entries} == {case.receipt}
    assert f"{case.too_many_count} {case.record} records" in entries[0].info
    with db(hub_ws).connect() as conn:
        assert conn.execute(select(metadata.tables[case.table])).all() == []
    assert_everything_sent_is_valid(hub_ws)  # 101 answers: receipts of at most 100 entries


@pytest.mark.parametrize("code", CASES)
def test_schema_error_is_a_ceb900_naming_the_field(hub_ws, keys, code):
    case = CASES[code]
    entity, field, value = case.bad
    purchases = [p.override(entity, **{field: value}) for p in case.purchases(seed=int(code) + 3)]
    case.prepare(hub_ws, keys, case.purchases(seed=int(code) + 3))
    root = case.message(hub_ws, keys, purchases)
    [entry] = send(hub_ws, case.partner, root)
    assert (entry.msg_type, entry.status) == ("CEB900Message", "-0002")
    assert field in entry.info and entity in entry.info
    assert entry.fields["oriMessageType"] == f"CEB{code}Message"
    assert_everything_sent_is_valid(hub_ws)


ROUTES = {"411": {"customs", "inspection"}, "511": {"customs", "inspection"},
          "513": {"customs"}, "711": {"customs"}}  # fmt: skip


@pytest.mark.parametrize("code", CASES)
def test_accepted_declarations_follow_the_default_routes(hub_ws, keys, code):
    case = CASES[code]
    purchases = case.purchases(seed=int(code) + 4)
    case.prepare(hub_ws, keys, purchases)
    root = case.message(hub_ws, keys, purchases)
    assert "120" in codes_of(send(hub_ws, case.partner, root))
    root_name = f"CEB{code}Message"
    guid = root.get("guid")
    for partner in ("customs", "inspection"):
        copies = [p for p in files(hub_ws.outbox_of(partner)) if p.name.startswith(root_name)]
        if partner in ROUTES[code]:
            assert [p.name for p in copies] == [f"{root_name}_{guid}.xml"]
            assert copies[0].read_bytes() == to_bytes(root)  # exactly as signed
        else:
            assert copies == []


# ---------------------------------------------------------------- change after the list is declared

GUARDED = {
    "311": ("platform", ORDER, "orders", order_message, order_link),
    "411": ("payment", PAYMENT, "payments", payment_message, payment_link),
    "511": ("logistics", WAYBILL, "waybills", waybill_message, waybill_link),
}
DECLARED = {"311": "-301011", "411": "-401008", "511": "-504016"}


def _stand_in_lists() -> Table:
    """The columns the guard needs, in the test's own MetaData (the real table is the
    clearance engine's)."""
    return Table(
        "stand_in_lists",
        MetaData(),
        Column("id", Integer, primary_key=True),
        *(
            Column(name, String(60))
            for name in ("ebp_code", "order_no", "logistics_code", "logistics_no")
        ),
        Column("state", String(16)),
    )


def _list_row(table: Table, purchase: Purchase, state: str, message_id: int) -> dict:
    """A list row for `purchase`; columns the guard does not read get placeholder values."""
    row = {
        "ebp_code": DEMO_PARTIES.ebp_code,
        "order_no": purchase.order_no,
        "logistics_code": DEMO_PARTIES.logistics_code,
        "logistics_no": purchase.logistics_no,
        "state": state,
        "message_id": message_id,
    }
    for col in table.c:
        if col.name in row or col.nullable or col.primary_key or col.default or col.server_default:
            continue
        kind = col.type.python_type if hasattr(col.type, "python_type") else str
        placeholders = {
            str: "X",
            int: 0,
            Decimal: Decimal(0),
            datetime: utcnow(),
            dict: {},
            list: [],
        }
        row[col.name] = placeholders.get(kind, "X")
    return {name: value for name, value in row.items() if name in table.c}


@pytest.mark.parametrize("code", GUARDED)
def test_declared_list_guard_against_a_stand_in_lists_table(hub_ws, keys, code):
    partner, msg_type, table_name, build, link = GUARDED[code]
    [purchase] = make_purchases(1, seed=int(code) + 5)
    assert codes_of(send(hub_ws, partner, keys[partner].sign(build([purchase], DEMO_PARTIES)))) == [
        "2",
        "120",
    ]
    lists = _stand_in_lists()
    guard = declared_list_guard(msg_type, link, table=lists)
    engine = db(hub_ws)
    lists.create(engine)
    with engine.begin() as conn:
        stored = conn.execute(select(metadata.tables[table_name])).one()
        conn.execute(
            insert(lists).values(_list_row(lists, purchase, "temporary", stored.message_id))
        )
        guard(conn, stored)  # a temporary list does not bind the record
        conn.execute(
            insert(lists).values(_list_row(lists, purchase, "declared", stored.message_id))
        )
        with pytest.raises(RecordRejected) as refused:
            guard(conn, stored)
    assert refused.value.return_status == DECLARED[code]
    assert "declared" in refused.value.info


@pytest.mark.skipif(
    lists_table() is None, reason="the clearance engine's lists table is not defined yet"
)
@pytest.mark.parametrize("code", GUARDED)
def test_change_after_the_list_is_declared_is_refused(hub_ws, keys, code):
    partner, _, table_name, build, _ = GUARDED[code]
    [purchase] = make_purchases(1, seed=int(code) + 6)
    sign = keys[partner].sign
    assert codes_of(send(hub_ws, partner, sign(build([purchase], DEMO_PARTIES)))) == ["2", "120"]
    table = lists_table()
    with db(hub_ws).begin() as conn:
        stored = conn.execute(select(metadata.tables[table_name])).one()
        conn.execute(
            insert(table).values(_list_row(table, purchase, "declared", stored.message_id))
        )
    assert codes_of(send(hub_ws, partner, sign(build([purchase], DEMO_PARTIES, app_type="2")))) == [
        DECLARED[code]
    ]
    assert codes_of(send(hub_ws, partner, sign(build([purchase], DEMO_PARTIES, app_type="3")))) == [
        DECLARED[code]
    ]


def test_a_new_record_is_inserted_without_a_look_up_and_a_deleted_one_comes_back_in_its_row(
    hub_ws, keys
):
    """appType 1 inserts first and looks the key up only when it is taken: by a live record
    (refused as existing) or by a deleted one, which the new declaration brings back."""
    case = CASES["411"]
    purchases = case.purchases(seed=4111)

    def go(app_type: str) -> list[str]:
        root = case.message(hub_ws, keys, purchases, app_type=app_type)
        return codes_of(send(hub_ws, case.partner, root))

    statements: list[str] = []
    with traced_sql(statements):
        assert go("1") == ["2", "120"]
    on_payments = [
        s.strip()
        for s in statements
        if re.match(r"\s*(INSERT INTO|UPDATE) payments\b", s) or re.search(r"\bFROM payments\b", s)
    ]
    assert [s.split()[0].upper() for s in on_payments] == ["INSERT"], on_payments
    assert "ON CONFLICT (pay_code, pay_transaction_id) DO NOTHING" in on_payments[0]

    with db(hub_ws).connect() as conn:
        [(first_id, _)] = conn.execute(select(payments.c.id, payments.c.state)).all()
    assert go("1") == [case.exists]
    assert go("3") == ["2"]
    assert go("1") == ["2", "120"]
    with db(hub_ws).connect() as conn:
        rows = conn.execute(select(payments.c.id, payments.c.state)).all()
    assert [tuple(r) for r in rows] == [(first_id, "active")]
