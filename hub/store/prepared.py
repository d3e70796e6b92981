"""Hot-path statements: built and compiled once by SQLAlchemy Core, run on the DBAPI cursor.

SQLAlchemy's `Connection.execute` costs ~10-60 µs a statement in Python (cache key, parameter
coercion, result set-up) against ~2 µs for SQLite itself; at fifteen statements a message that
was the largest single cost of the hub. A `Prepared` statement is an ordinary Core construct,
compiled once per dialect and set of parameter names with SQLAlchemy's own compiler; its
execution applies the dialect's bind and result processors (dates, JSON, decimals) exactly as
`Connection.execute` would, on the same DBAPI connection and so inside the same transaction and
savepoints. What it does not do: expanding IN lists (`in_values` binds a list as one
parameter instead) and SQLAlchemy's execution events.
"""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, ColumnElement, Connection, DateTime, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import ClauseElement

# The dialects whose insert() can skip a row whose unique key is taken (ON CONFLICT DO
# NOTHING), by name: the hot path's inserts that must not fail a transaction use them.
CONFLICT_DIALECTS = {"sqlite": sqlite, "postgresql": postgresql}


@dataclass
class _Plan:
    """One compiled form of a statement: SQL text, parameter order and processors."""

    dialect: Any
    sql: str
    names: tuple[str, ...]  # bind names in the order the SQL wants them
    defaults: dict[str, Any]  # values bound in the statement itself (literals)
    processors: dict[str, Any]  # bind name -> the dialect's bind processor
    positional: bool
    row: type | None  # a named tuple type for the result columns, if any
    types: tuple[Any, ...]  # per result column: its SQLAlchemy type
    results: tuple[tuple[int, Any], ...] | None = None  # (column, result processor), first run

    def __post_init__(self) -> None:
        # The values in the SQL's order, taken in C; then only the few that need it processed.
        names = self.names
        pick = itemgetter(*names) if names else (lambda params: ())
        self._values = (lambda params: (pick(params),)) if len(names) == 1 else pick
        self._steps = tuple(
            (i, self.processors[n]) for i, n in enumerate(names) if self.processors.get(n)
        )

    def bind(self, params: Mapping[str, Any]) -> Any:
        if self.defaults:
            params = {**self.defaults, **params}
        values = list(self._values(params))
        for i, process in self._steps:
            values[i] = process(values[i])
        return values if self.positional else dict(zip(self.names, values, strict=True))


class Prepared:
    """A Core statement with its compiled forms cached per dialect and parameter names."""

    __slots__ = ("_plans", "statement")

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._plans: dict[tuple[str, tuple[str, ...]], _Plan] = {}

    def _plan(self, conn: Connection, keys: tuple[str, ...]) -> _Plan:
        dialect = conn.dialect
        plan = self._plans.get((dialect.name, keys))
        if plan is None:
            plan = self._plans[(dialect.name, keys)] = _compile(self.statement, dialect, keys)
        return plan

    def _cursor(self, conn: Connection):
        if not conn.in_transaction():
            conn.begin()  # as Connection.execute's autobegin would (SQLite: BEGIN IMMEDIATE)
        return conn.connection.dbapi_connection.cursor()

    def execute(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """Run once; returns the DBAPI cursor (for `rowcount`, `lastrowid`)."""
        params = params or {}
        plan = self._plan(conn, tuple(params))
        cursor = self._cursor(conn)
        cursor.execute(plan.sql, plan.bind(params))
        return cursor

    def execute_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run once per parameter set; every set must have the first set's names."""
        if not rows:
            return
        plan = self._plan(conn, tuple(rows[0]))
        self._cursor(conn).executemany(plan.sql, [plan.bind(r) for r in rows])

    def all(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list:
        params = params or {}
        plan = self._plan(conn, tuple(params))
        cursor = self._cursor(conn)
        cursor.execute(plan.sql, plan.bind(params))
        return [_row(plan, cursor, raw) for raw in cursor.fetchall()]

    def first(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any | None:
        params = params or {}
        plan = self._plan(conn, tuple(params))
        cursor = self._cursor(conn)
        cursor.execute(plan.sql, plan.bind(params))
        raw = cursor.fetchone()
        if raw is not None:
            cursor.fetchall()  # finish the statement (SQLite: RETURNING runs to the end)
        return None if raw is None else _row(plan, cursor, raw)

    def one(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        rows = self.all(conn, params)
        if len(rows) != 1:
            raise LookupError(f"expected one row, got {len(rows)}: {self.statement}")
        return rows[0]

    def scalar(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        row = self.first(conn, params)
        return None if row is None else row[0]


class ByDialect:
    """A `Prepared` statement per dialect, built on first use: for statements whose SQL
    differs by dialect beyond what SQLAlchemy's compiler does (`in_values`)."""

    __slots__ = ("_build", "_prepared")

    def __init__(self, build: Callable[[str], ClauseElement]) -> None:
        self._build = build
        self._prepared: dict[str, Prepared] = {}

    def __call__(self, conn: Connection) -> Prepared:
        name = conn.dialect.name
        prepared = self._prepared.get(name)
        if prepared is None:
            prepared = self._prepared[name] = Prepared(self._build(name))
        return prepared


def in_values(column: ColumnElement, name: str, dialect: str) -> ColumnElement:
    """`column IN (…)` with the values bound as one parameter `name` (see `values_param`):
    one statement and one compiled plan for any number of values, where an IN list is a
    statement per length that SQLAlchemy compiles at each execution. SQLite reads the
    values from a JSON array (json_each), PostgreSQL from an array (= ANY)."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(column.type)))
    return column.in_(select(func.json_each(bindparam(name)).table_valued("value").c.value))


def values_param(conn: Connection, values: Iterable[Any]) -> Any:
    """The values of an `in_values` parameter as `conn`'s dialect binds them."""
    if conn.dialect.name == "postgresql":
        return list(values)
    return json.dumps(list(values))


@contextmanager
def savepoint(conn: Connection, name: str = "hub_savepoint") -> Iterator[None]:
    """`conn.begin_nested()` as two plain statements on the DBAPI connection.

    Core's savepoint costs two full statement executions and a compile each (every one has a
    new name): ~56 µs against ~1 µs. Savepoints of one name nest (RELEASE and ROLLBACK TO
    take the latest); Core savepoints opened inside must close inside, as `with` makes them.
    On an exception the work since the savepoint is rolled back and the exception goes on.
    """
    if not conn.in_transaction():
        conn.begin()
    cursor = conn.connection.dbapi_connection.cursor()
    cursor.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        cursor.execute(f"ROLLBACK TO SAVEPOINT {name}")
        cursor.execute(f"RELEASE SAVEPOINT {name}")
        raise
    cursor.execute(f"RELEASE SAVEPOINT {name}")


def _row(plan: _Plan, cursor: Any, raw: Sequence[Any]) -> Any:
    assert plan.row is not None, "statement returns no rows"
    if plan.results is None:  # some processors depend on the DBAPI's type codes
        dialect, codes = plan.dialect, [d[1] for d in cursor.description]
        procs = [
            _wrap_result(t._cached_result_processor(dialect, code), t, dialect)
            for t, code in zip(plan.types, codes, strict=True)
        ]
        plan.results = tuple((i, p) for i, p in enumerate(procs) if p is not None)
    if not plan.results:
        return plan.row._make(raw)
    values = list(raw)
    for i, proc in plan.results:  # only the columns that need it (dates, JSON, decimals)
        values[i] = proc(values[i])
    return plan.row._make(values)


def _wrap_result(proc: Any, type_: Any, dialect: Any) -> Any:
    if proc is not None and isinstance(type_, JSON) and dialect.name == "sqlite":
        return _decoded_directly(proc)
    return proc


# The C scanner `json.loads` ends in, called without loads' three Python layers and two
# regular expressions (skipping whitespace before and after the value).
_scan_json = json.JSONDecoder().scan_once


def _decoded_directly(proc: Any) -> Any:
    """SQLite's JSON result processor, with the text the hub wrote (`json.dumps`: nothing
    around the value) decoded by the scanner straight away; any other text, and every
    error, goes through `proc` as before. A list's row has six JSON columns."""

    def result(value: Any) -> Any:
        if type(value) is str:
            try:
                decoded, end = _scan_json(value, 0)
            except (StopIteration, ValueError):
                return proc(value)
            if end == len(value):
                return decoded
        return proc(value)

    return result


def _wrap(proc: Any, type_: Any, dialect: Any) -> Any:
    if isinstance(type_, DateTime):
        return _last_one(proc)
    if isinstance(type_, JSON) and dialect.name == "sqlite":
        return _encoded_as_is(proc)
    return proc


def _encoded_as_is(proc: Any) -> Any:
    """SQLite's JSON processor, which binds `json.dumps(value)`, taking the text of a value
    encoded already (`records.EncodedDict`, in the checker process) as it is."""

    def bind(value: Any) -> Any:
        text = getattr(value, "json", None)
        return text if text is not None else proc(value)

    return bind


def _last_one(proc: Any) -> Any:
    """`proc` remembering its last answer: a batch binds the same `now` many times.

    Only for immutable values (datetimes), matched by identity; the pair is replaced in one
    assignment, so threads sharing a plan never see one value with another's answer.
    """
    last: tuple[Any, Any] = (object(), None)

    def bind(value: Any) -> Any:
        nonlocal last
        seen = last
        if seen[0] is value:
            return seen[1]
        out = proc(value)
        last = (value, out)
        return out

    return bind


def _compile(statement: ClauseElement, dialect: Any, keys: tuple[str, ...]) -> _Plan:
    compiled = statement.compile(
        dialect=dialect,
        column_keys=list(keys),
        compile_kwargs={"render_postcompile": True},
    )
    sql = compiled.string
    if "POSTCOMPILE" in sql:
        raise ValueError(f"expanding parameters are not supported: {sql}")
    positional = bool(compiled.positional)
    names = tuple(compiled.positiontup) if positional else tuple(compiled.binds)
    if not positional:  # pyformat: only the names that appear in the SQL, once each
        names = tuple(n for n in compiled.binds if f"%({n})s" in sql)
    defaults = {
        name: bp.effective_value
        for name, bp in compiled.binds.items()
        if not bp.required and name not in keys
    }
    missing = [n for n in names if n not in keys and n not in defaults]
    if missing:
        raise ValueError(f"parameters {missing} not given for: {sql}")
    processors = {n: _wrap(p, compiled.binds[n].type, dialect) for n, p in
                  compiled._bind_processors.items() if n in names}  # fmt: skip
    columns = compiled._result_columns
    if columns:
        row = namedtuple("Row", [c.keyname for c in columns], rename=True)
        types = tuple(c.type for c in columns)
    else:
        row, types = None, ()
    return _Plan(dialect, sql, names, defaults, processors, positional, row, types)
