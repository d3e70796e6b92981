"""Migrations: a database made before 0002 or 0003 upgrades with its rows; a new one is the same schema."""

from __future__ import annotations

from datetime import datetime

import pytest
from alembic import command
from sqlalchemy import Index, MetaData, event, insert, inspect, select

from hub.store.db import make_engine
from hub.store.migrate import alembic_config, upgrade
from hub.store.tables import deliveries, messages, metadata
from tests.helpers import insert_message
from tests.test_store_backends import drop_schema, pg_schema

NOW = datetime(2024, 5, 1, 8, 30)
MESSAGE = b'<?xml version="1.0"?><ceb:CEB311Message xmlns:ceb="http://www.chinaport.gov.cn/ceb"/>'
RECEIPT = b"<ceb:CEB312Message/>"
HEAD = "0003"


@pytest.fixture(params=["sqlite", "postgresql"])
def new_engine(request, tmp_path):
    """Makes engines of new empty databases on the parametrised backend."""
    schemas: list[str] = []
    engines = []

    def make():
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / f'db{len(engines)}.sqlite'}"
        else:
            schema, url = pg_schema()
            schemas.append(schema)
        engines.append(make_engine(url))
        return engines[-1]

    yield make
    for engine in engines:
        engine.dispose()
    for schema in schemas:
        drop_schema(schema)


def tables_before_0002() -> MetaData:
    """The tables as 0001 created them before 0002: deliveries.body NOT NULL (and, as before
    0003, an index on messages.sha256)."""
    old = tables_before_0003()
    old.tables["deliveries"].c.body.nullable = False
    return old


def tables_before_0003() -> MetaData:
    """The tables as 0001 created them before 0003: an index on messages.sha256."""
    old = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(old)
    Index("ix_messages_sha256", old.tables["messages"].c.sha256)
    return old


def index_names(engine, table: str) -> set[str]:
    return {i["name"] for i in inspect(engine).get_indexes(table)}


def stamp(engine, revision: str) -> None:
    cfg = alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.stamp(cfg, revision)
        conn.commit()


def version(engine) -> str:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def schema(engine) -> dict:
    """Every table's columns, keys, indexes and constraints as the database reports them."""
    insp = inspect(engine)
    out = {}
    for name in sorted(insp.get_table_names()):
        if name == "alembic_version":
            continue
        out[name] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in insp.get_columns(name)
            ],
            "pk": tuple(insp.get_pk_constraint(name)["constrained_columns"]),
            "fks": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in insp.get_foreign_keys(name)
            ),
            "unique": sorted(
                (str(u["name"]), tuple(u["column_names"]))
                for u in insp.get_unique_constraints(name)
            ),
            "indexes": sorted(
                (str(i["name"]), tuple(i["column_names"]), bool(i["unique"]), where(i))
                for i in insp.get_indexes(name)
            ),
        }
    return out


def where(index: dict) -> str:
    """A partial index's WHERE clause as text."""
    return repr(sorted((k, str(v)) for k, v in index.get("dialect_options", {}).items()))


def body_nullable(engine) -> bool:
    columns = inspect(engine).get_columns("deliveries")
    return next(c for c in columns if c["name"] == "body")["nullable"]


def delivery(kind: str, partner: str, guid: str, body: bytes, message_id: int | None) -> dict:
    return dict(
        partner_id=partner, kind=kind, msg_type="CEB311Message", guid=guid,
        file_name=f"CEB311Message_{guid}.xml", body=body, state="delivered", attempts=1,
        next_attempt_at=NOW, message_id=message_id, created_at=NOW, delivered_at=NOW,
    )  # fmt: skip


def fill(engine) -> None:
    """A message, its two routed copies (the old way: the bytes again) and a receipt."""
    with engine.begin() as conn:
        message_id = insert_message(conn, guid="G1", body=MESSAGE, at=NOW)
        conn.execute(
            insert(deliveries),
            [
                delivery("route", "customs", "G1", MESSAGE, message_id),
                delivery("route", "inspection", "G1", MESSAGE, message_id),
                delivery("receipt", "platform", "R1", RECEIPT, message_id),
            ],
        )


def rows(engine) -> dict:
    with engine.connect() as conn:
        return {
            t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
            for t in (messages, deliveries)
        }


def test_a_database_created_before_0002_upgrades_and_keeps_its_rows(new_engine):
    old = new_engine()
    tables_before_0002().create_all(old)
    stamp(old, "0001")
    fill(old)
    assert not body_nullable(old)
    kept = rows(old)

    upgrade(old)

    assert version(old) == HEAD
    assert body_nullable(old)
    assert rows(old) == kept
    # the rebuilt table (SQLite) is the table a new database gets: keys, indexes, constraints
    new = new_engine()
    upgrade(new)
    assert schema(old) == schema(new)
    # and it works as one: ids go on, a routed copy without bytes of its own goes in
    with old.begin() as conn:
        message_id = kept["messages"][0][0]
        new_id = conn.execute(
            insert(deliveries).returning(deliveries.c.id),
            delivery("route", "other", "G1", None, message_id),
        ).scalar_one()
    assert new_id == max(r[0] for r in kept["deliveries"]) + 1


def test_0002_changes_nothing_on_a_database_0001_has_just_created(new_engine):
    engine = new_engine()
    upgrade(engine, "0001")  # today's tables: body is nullable already
    assert body_nullable(engine)
    before = schema(engine)
    ran: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: ran.append(a[2]))

    upgrade(engine, "0002")

    assert version(engine) == "0002"
    assert schema(engine) == before == schema_of_metadata(new_engine)
    reads = ("SELECT", "PRAGMA", "BEGIN")
    changes = [s for s in ran if not s.lstrip().upper().startswith(reads)]
    assert changes and all(s.startswith("UPDATE alembic_version") for s in changes), changes


def schema_of_metadata(new_engine) -> dict:
    """The schema `metadata.create_all` gives, without alembic."""
    engine = new_engine()
    metadata.create_all(engine)
    return schema(engine)


def test_downgrade_gives_the_routed_copies_their_bytes_back(new_engine):
    engine = new_engine()
    tables_before_0002().create_all(engine)
    stamp(engine, "0001")
    fill(engine)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(deliveries.update().where(deliveries.c.kind == "route").values(body=None))
    cfg = alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
        conn.commit()
    assert not body_nullable(engine)
    with engine.connect() as conn:
        bodies = conn.execute(
            select(deliveries.c.kind, deliveries.c.body).order_by(deliveries.c.id)
        ).all()
    assert [(k, bytes(b)) for k, b in bodies] == [
        ("route", MESSAGE),
        ("route", MESSAGE),
        ("receipt", RECEIPT),
    ]


def test_0003_drops_the_sha256_index_keeps_the_rows_and_downgrade_brings_it_back(new_engine):
    old = new_engine()
    tables_before_0003().create_all(old)
    stamp(old, "0002")
    fill(old)
    kept = rows(old)
    assert "ix_messages_sha256" in index_names(old, "messages")

    upgrade(old)

    assert version(old) == HEAD
    assert "ix_messages_sha256" not in index_names(old, "messages")
    assert rows(old) == kept
    new = new_engine()
    upgrade(new)  # 0003 on a database 0001 made from today's tables: nothing to drop
    assert schema(old) == schema(new) == schema_of_metadata(new_engine)
    cfg = alembic_config()
    with old.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
        conn.commit()
    assert "ix_messages_sha256" in index_names(old, "messages")
