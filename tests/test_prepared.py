"""Prepared statements read and write exactly what Core's `Connection.execute` does, on both stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)

from hub.clearance.tables import lists
from hub.store.prepared import ByDialect, Prepared, in_values, savepoint, values_param
from tests.helpers import scratch_engine
from tests.test_store_backends import PG_URL

meta = MetaData()
things = Table(
    "things",
    meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(32), nullable=False),
    Column("kind", String(16)),
    Column("at", DateTime(timezone=True)),
    Column("amount", Numeric(19, 5)),
    Column("tags", JSON),
    Column("body", LargeBinary),
)

INSERT = Prepared(insert(things).returning(things.c.id))
BY_ID = Prepared(select(things).where(things.c.id == bindparam("id")))
BY_KIND = Prepared(
    select(things.c.name).where(things.c.kind == "fixed").order_by(things.c.id).limit(5)
)
RENAME = Prepared(
    update(things).where(things.c.id == bindparam("thing")).returning(things.c.name, things.c.tags)
)

ROW = dict(
    name="a",
    kind="fixed",
    at=datetime(2026, 11, 26, 9, 30, 1, 250000, tzinfo=UTC),
    amount=Decimal("12.34500"),
    tags={"x": [1, "二"]},
    body=b"\x00<xml/>",
)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    with scratch_engine(request.param, tmp_path, meta) as eng:
        yield eng


def test_insert_then_read_back_equals_core(engine):
    with engine.begin() as conn:
        new_id = INSERT.scalar(conn, ROW)
        core_id = conn.execute(insert(things).returning(things.c.id), ROW).scalar_one()
    with engine.connect() as conn:
        fast = BY_ID.one(conn, {"id": new_id})
        core = conn.execute(select(things).where(things.c.id == core_id)).one()
    assert fast.id == new_id
    assert tuple(fast)[1:] == tuple(core)[1:]
    assert fast.tags == {"x": [1, "二"]} and fast.amount == Decimal("12.34500")
    assert fast.at.replace(tzinfo=UTC) == ROW["at"]
    assert bytes(fast.body) == b"\x00<xml/>"


def test_core_reads_what_prepared_wrote(engine):
    with engine.begin() as conn:
        INSERT.execute_many(conn, [ROW, {**ROW, "name": "b", "tags": None}])
    with engine.connect() as conn:
        rows = conn.execute(select(things).order_by(things.c.id)).all()
    assert [r.name for r in rows] == ["a", "b"]
    assert rows[0].tags == ROW["tags"] and rows[1].tags is None
    assert rows[0].amount == ROW["amount"]


def test_literals_limits_and_returning_updates(engine):
    with engine.begin() as conn:
        ids = [INSERT.scalar(conn, {**ROW, "name": f"n{i}"}) for i in range(7)]
        INSERT.scalar(conn, {**ROW, "name": "other", "kind": "other"})
        assert [r.name for r in BY_KIND.all(conn)] == ["n0", "n1", "n2", "n3", "n4"]
        renamed = RENAME.one(conn, {"thing": ids[0], "name": "renamed", "tags": [3]})
        assert (renamed.name, renamed.tags) == ("renamed", [3])
        assert RENAME.first(conn, {"thing": 10_000, "name": "x"}) is None


def test_statements_join_the_connections_transaction_and_savepoints(engine):
    with engine.connect() as conn:
        with conn.begin():
            INSERT.scalar(conn, ROW)
            try:
                with conn.begin_nested():
                    INSERT.scalar(conn, {**ROW, "name": "rolled back"})
                    raise RuntimeError("refused")
            except RuntimeError:
                pass
        with conn.begin() as tx:
            INSERT.scalar(conn, {**ROW, "name": "never committed"})
            tx.rollback()
    with engine.connect() as conn:
        assert [r.name for r in conn.execute(select(things.c.name))] == ["a"]


def test_a_missing_parameter_is_refused_before_anything_runs(engine):
    with engine.connect() as conn, pytest.raises(ValueError, match="not given"):
        BY_ID.first(conn, {})


def test_pg_url_is_the_store_suites():
    assert PG_URL.startswith("postgresql+psycopg://")


def test_savepoints_nest_roll_back_alone_and_mix_with_core_ones(engine):
    def names(conn):
        return [r.name for r in conn.execute(select(things.c.name).order_by(things.c.id))]

    with engine.begin() as conn:
        with savepoint(conn):
            INSERT.scalar(conn, {**ROW, "name": "kept"})
            with pytest.raises(RuntimeError), savepoint(conn):
                INSERT.scalar(conn, {**ROW, "name": "inner, rolled back"})
                raise RuntimeError("refused")
            with conn.begin_nested():  # a Core savepoint inside ours
                INSERT.scalar(conn, {**ROW, "name": "core inside"})
        with pytest.raises(RuntimeError), conn.begin_nested(), savepoint(conn):
            INSERT.scalar(conn, {**ROW, "name": "ours inside core, rolled back"})
            raise RuntimeError("refused")
        assert names(conn) == ["kept", "core inside"]


def test_a_failed_statement_in_a_savepoint_leaves_the_transaction_usable(engine):
    with engine.begin() as conn:
        first = INSERT.scalar(conn, ROW)
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"), savepoint(conn):
            INSERT.scalar(conn, {**ROW, "id": first})  # the primary key is taken
        INSERT.scalar(conn, {**ROW, "name": "after"})  # PostgreSQL: not an aborted transaction
    with engine.connect() as conn:
        assert conn.execute(select(things.c.name).order_by(things.c.id)).scalars().all() == [
            "a",
            "after",
        ]


def test_a_datetime_bound_again_and_a_new_one_each_store_their_own_time(engine):
    first = datetime(2026, 11, 26, 9, 30, 1, 250000, tzinfo=UTC)
    second = datetime(2026, 11, 26, 9, 30, 2, tzinfo=UTC)
    with engine.begin() as conn:
        ids = [INSERT.scalar(conn, {**ROW, "at": when}) for when in (first, first, second, first)]
        stamps = [BY_ID.one(conn, {"id": i}).at.replace(tzinfo=UTC) for i in ids]
    assert stamps == [first, first, second, first]


def test_json_encoded_already_is_bound_as_its_text_on_sqlite_and_as_the_value_elsewhere(engine):
    """A record's head, encoded by the checker process, is stored as that text on SQLite (the
    hub does not encode it again); PostgreSQL's driver encodes the value itself, which is the
    same dict. The stored value reads back the same either way."""
    from hub.messages.records import Record

    record = Record(1, {"orderNo": "EO1", "note": "二"}, [{"gnum": "1"}])
    record.encode()
    head = record.stored_head()
    head.json = '{"orderNo": "EO1", "note": "\\u4e8c", "marker": "as encoded"}'
    with engine.begin() as conn:
        kept = INSERT.scalar(conn, {**ROW, "tags": head})
        plain = INSERT.scalar(conn, {**ROW, "tags": record.stored_lines()})
    with engine.connect() as conn:
        stored = {r.id: r.tags for r in conn.execute(select(things.c.id, things.c.tags))}
    if engine.dialect.name == "sqlite":
        assert stored[kept] == {"orderNo": "EO1", "note": "二", "marker": "as encoded"}
    else:
        assert stored[kept] == {"orderNo": "EO1", "note": "二"}
    assert stored[plain] == [{"gnum": "1"}]


def test_states_blobs_and_nulls_are_bound_through_registered_adapters_as_plain_values(tmp_path):
    """sqlite3 adapts every parameter that is not exactly an int, float, str or bytearray; the
    hub's engine registers adapters for what it binds (a look-up that fails costs an
    exception each), and the values are stored exactly as without them."""
    import sqlite3

    from hub.clearance.states import ListState
    from hub.codes import Status
    from hub.store.db import make_engine
    from hub.store.states import DeliveryState

    engine = make_engine(f"sqlite:///{tmp_path / 'adapted.db'}")
    meta.create_all(engine)
    for kind in (ListState, Status, DeliveryState, type(None), bytes, memoryview):
        assert (kind, sqlite3.PrepareProtocol) in sqlite3.adapters, kind
    row = {**ROW, "name": ListState.SENT, "kind": Status.RETURNED, "amount": None}
    with engine.begin() as conn:
        new_id = INSERT.scalar(conn, {**row, "body": memoryview(b"\x00blob")})
        typed = conn.exec_driver_sql(
            "SELECT name, typeof(name), kind, typeof(amount), typeof(body), body FROM things "
            f"WHERE id = {new_id}"
        ).one()
    engine.dispose()
    assert tuple(typed) == ("sent", "text", "100", "null", "blob", b"\x00blob")
    assert type(typed[0]) is str


BY_NAMES = ByDialect(
    lambda dialect: (
        select(things.c.name)
        .where(in_values(things.c.name, "names", dialect))
        .order_by(things.c.id)
    )
)
NOT_IDS = ByDialect(
    lambda dialect: (
        select(things.c.name).where(~in_values(things.c.id, "ids", dialect)).order_by(things.c.id)
    )
)


def test_in_values_binds_any_number_of_values_as_one_parameter(engine):
    names = ["a", "b's", 'q"uote', "二", "x" * 300, "[1]"]
    with engine.begin() as conn:
        ids = [INSERT.scalar(conn, {**ROW, "name": n[:32]}) for n in names]
    with engine.connect() as conn:
        by_names = BY_NAMES(conn)
        for wanted in ([], names[:1], [n[:32] for n in names], ["b's", "missing", "二"]):
            got = [r.name for r in by_names.all(conn, {"names": values_param(conn, wanted)})]
            core = conn.execute(
                select(things.c.name).where(things.c.name.in_(wanted)).order_by(things.c.id)
            )
            assert got == core.scalars().all()
        assert len(by_names._plans) == 1  # one compiled statement for every length
        left = NOT_IDS(conn).all(conn, {"ids": values_param(conn, ids[1:])})
        assert [r.name for r in left] == ["a"]
        everything = NOT_IDS(conn).all(conn, {"ids": values_param(conn, [])})
        assert len(everything) == len(names)
    assert BY_NAMES(conn) is by_names  # built once per dialect


def test_a_run_records_clears_and_delivers_with_prepared_statements_only(hub_ws, keys, monkeypatch):
    """Core's `Connection.execute` costs a cache key and parameter set-up each time (an IN
    list, a statement per length): none of it may creep back into a round's work."""
    from hub.runner import Hub
    from tests.clearance_support import db, purchase, send_documents, send_list, set_guarantee

    set_guarantee(hub_ws, "100000")
    bought = [purchase(seed) for seed in (31, 32)]
    send_documents(hub_ws, keys, bought)
    send_list(hub_ws, keys, bought)
    hub = Hub(hub_ws)
    executed: list[str] = []
    real = Connection.execute

    def spy(self, statement, *args, **kwargs):
        executed.append(str(statement).split("\n")[0])
        return real(self, statement, *args, **kwargs)

    monkeypatch.setattr(Connection, "execute", spy)
    try:
        hub.run_once()
    finally:
        monkeypatch.undo()
        hub.close()
    with db(hub_ws).connect() as conn:
        states = conn.execute(select(lists.c.state)).scalars().all()
    assert states == ["closed", "closed"]  # reviewed, released, every receipt delivered
    assert executed == []


def test_json_read_back_from_sqlite_is_exactly_what_json_loads_gives(tmp_path):
    """The hub's own text is decoded by the scanner directly; text with space around it,
    numbers stored as such, and broken text take the processor's way, errors included."""
    texts = [
        '{"a": [1, "二", null], "b": {"c": 1.5}}',  # as json.dumps writes it
        '{"a":1}',
        '"text"',
        "[]",
        " [1, 2] ",  # space around the value: the slow way, the same value
        "\t{}\n",
        "3",
        "true",
        '{"a": 1} {"b": 2}',  # two values: an error, as json.loads says
        '{"a": ',
    ]
    with scratch_engine("sqlite", tmp_path, meta) as engine:
        with engine.begin() as conn:
            for n, text in enumerate(texts, start=1):
                conn.exec_driver_sql(
                    "INSERT INTO things (id, name, tags) VALUES (?, ?, ?)", (n, f"t{n}", text)
                )
            conn.exec_driver_sql("INSERT INTO things (id, name, tags) VALUES (100, 'num', 7)")
        with engine.connect() as conn:
            for n, text in enumerate(texts, start=1):
                try:
                    expected = json.loads(text)
                except ValueError as exc:
                    with pytest.raises(type(exc)):
                        BY_ID.first(conn, {"id": n})
                    continue
                assert BY_ID.first(conn, {"id": n}).tags == expected, text
            assert BY_ID.first(conn, {"id": 100}).tags == 7
