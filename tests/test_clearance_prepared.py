"""The clearance engine's prepared statements on SQLite and PostgreSQL: same values, same rules."""

# ruff: noqa: F811  (fixtures are imported, then requested by name)
from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import NoResultFound

from hub.clearance import guarantee, lifecycle, quota, risk, sweep
from hub.clearance.tables import guarantee_ledger, list_log, lists
from hub.clock import as_utc
from hub.store.tables import deliveries, metadata
from tests.clearance_support import db, purchase, run, send_documents, send_list, set_guarantee
from tests.helpers import insert_message, scratch_engine
from tests.test_store_backends import store_ws  # noqa: F401

NOW = datetime(2026, 11, 26, 9, 30, 1, 250000, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    with scratch_engine(request.param, tmp_path, metadata) as eng:
        yield eng


def _message(conn) -> int:
    return insert_message(conn, partner_id="agent", msg_type="CEB621Message", at=NOW)


def _list(conn, message_id: int, cop_no: str, **values) -> int:
    row = dict(
        guid=f"g-{cop_no}", state="declared", app_status="2", app_time="20261126093001",
        partner_id="agent", message_id=message_id, created_at=NOW, updated_at=NOW,
        head={"copNo": cop_no, "名": "值"}, lines=[{"gnum": "1", "qty": "2"}],
        agent_code="A", cop_no=cop_no, ebp_code="E", ebc_code="C", order_no=cop_no,
        logistics_code="L", logistics_no=cop_no, buyer_id_number="B1", year="2026",
        dutiable_value=Decimal("100.50"), refunded_value=Decimal("0.25"), refunded_tax=0,
    )  # fmt: skip
    return conn.execute(insert(lists).returning(lists.c.id), {**row, **values}).scalar()


def test_get_and_update_list_give_what_core_reads(engine):
    with engine.begin() as conn:
        list_id = _list(conn, _message(conn), "P1")
        core = conn.execute(select(lists).where(lists.c.id == list_id)).one()
        assert tuple(lifecycle.get(conn, list_id)) == tuple(core)
        after = lifecycle.update_list(
            conn,
            list_id,
            {
                "decisions": {"customs": "release"},
                "routed_to": ["customs"],
                "tax": Decimal("12.34"),
                "waiting_since": NOW,
                "return_info": "二",
            },
        )
        core = conn.execute(select(lists).where(lists.c.id == list_id)).one()
    assert tuple(after) == tuple(core)
    assert after.decisions == {"customs": "release"} and after.tax == Decimal("12.34")
    assert after.waiting_since.replace(tzinfo=UTC) == NOW


def test_a_move_returns_the_list_as_stored_though_it_does_not_read_it_back(engine):
    from hub.clearance.states import ListState
    from hub.config import Settings
    from hub.routing import Router

    with engine.begin() as conn:
        list_id = _list(conn, _message(conn), "P2")
        desk = lifecycle.Desk(
            conn, Router(Settings()), NOW, actor="test", pending=lifecycle.Pending()
        )
        before = lifecycle.get(conn, list_id)
        moved = lifecycle.move(desk, before, ListState.SENT, info="发送海关成功")
        stored = lifecycle.get(conn, list_id)
    # The same values (SQLite hands times back naive: they are UTC).
    assert _utc(moved) == _utc(stored)
    assert moved.state == "sent" and moved.head == {"copNo": "P2", "名": "值"}
    assert moved.updated_at == NOW and moved.return_info == "发送海关成功"


def _utc(row) -> tuple:
    return tuple(as_utc(v) if isinstance(v, datetime) else v for v in row)


def test_a_list_that_is_not_there_is_no_result_as_before(engine):
    with engine.begin() as conn:
        with pytest.raises(NoResultFound):
            lifecycle.get(conn, 999)
        with pytest.raises(NoResultFound):
            lifecycle.update_list(conn, 999, {"return_info": "x"})


def test_the_guarantee_is_debited_only_when_it_covers_the_amount(engine):
    with engine.begin() as conn:
        guarantee.set_balance(conn, "G", Decimal("10"), NOW)
        assert guarantee.debit(conn, "G", Decimal("7.50"), 1, NOW) is True
        assert guarantee.debit(conn, "G", Decimal("5"), 2, NOW) is False  # 2.50 left
        assert guarantee.debit(conn, "nobody", Decimal("1"), 3, NOW) is False
        assert guarantee.debit(conn, "nobody", Decimal("0"), 3, NOW) is False
        assert guarantee.debit(conn, "G", Decimal("0"), 3, NOW) is True
        guarantee.restore(conn, "G", Decimal("1.25"), 1, NOW, "returned")
        assert guarantee.balance(conn, "G") == Decimal("3.75")
        assert guarantee.balance(conn, "nobody") is None
        kinds = conn.execute(
            select(guarantee_ledger.c.kind, guarantee_ledger.c.amount).order_by(
                guarantee_ledger.c.id
            )
        ).all()
    assert [(k, Decimal(a)) for k, a in kinds] == [
        ("set", Decimal("10")),
        ("debit", Decimal("-7.50")),
        ("restore", Decimal("1.25")),
    ]


def test_year_total_and_first_purchase_count_the_counted_lists_only(engine):
    with engine.begin() as conn:
        m = _message(conn)
        a = _list(conn, m, "Y1", state="accepted")
        _list(conn, m, "Y2", state="closed", dutiable_value=Decimal("20"), refunded_value=0)
        _list(conn, m, "Y3", state="returned")  # not counted
        _list(conn, m, "Y4", state="closed", year="2025")
        nobody = _list(conn, m, "Y5", state="sent", buyer_id_number=None)
        total = quota.year_total(conn, "B1", "2026")
        assert total == Decimal("120.25") and isinstance(total, Decimal)
        assert quota.year_total(conn, "B1", "2026", exclude=a) == Decimal("20")
        assert quota.year_total(conn, "B2", "2026") == Decimal(0)
        assert not risk._first_purchase(conn, lifecycle.get(conn, a))
        assert risk._first_purchase(conn, lifecycle.get(conn, nobody))  # IS NULL: none counted
        _list(conn, m, "Y6", state="closed", buyer_id_number=None)
        assert not risk._first_purchase(conn, lifecycle.get(conn, nobody))
        assert quota.year_total(conn, None, "2026") == Decimal("100.25")  # IS NULL, as Core


def test_copies_out_is_route_delivered(engine):
    with engine.begin() as conn:
        m = _message(conn)
        ids = {
            name: _list(conn, m, name, route_message_id=route)
            for name, route in (("none", None), ("out", m), ("pending", _message(conn)))
        }
        copies = [("out", "delivered"), ("out", "delivered"), ("pending", "delivered")]
        for n, (route_of, state) in enumerate([*copies, ("pending", "queued")]):
            conn.execute(
                insert(deliveries),
                dict(
                    partner_id=f"p{n}", kind="route", msg_type="CEB621Message", guid=f"d{n}",
                    file_name=f"d{n}.xml", body=b"x", state=state, next_attempt_at=NOW,
                    message_id=lifecycle.get(conn, ids[route_of]).route_message_id,
                    created_at=NOW,
                ),
            )  # fmt: skip
        for name, list_id in ids.items():
            row = sweep._DECLARED_LIST.first(conn, {"list_id": list_id})
            assert bool(row.copies_out) is lifecycle.route_delivered(conn, row), name
            assert bool(row.copies_out) is (name != "pending")


def test_one_failing_list_in_the_sweep_leaves_the_others_moving(store_ws, keys, monkeypatch):
    # A list whose step fails (here with a database error, which on PostgreSQL aborts the
    # transaction until its savepoint is rolled back) keeps its state; the next list moves.
    set_guarantee(store_ws, "10000")
    bought = [purchase(81), purchase(82)]
    real = sweep.review

    def failing_review(desk, row, **written):
        if row.cop_no == bought[0].cop_no:
            desk.conn.exec_driver_sql("SELECT no_such_column FROM lists")
        return real(desk, row, **written)

    monkeypatch.setattr(sweep, "review", failing_review)
    send_documents(store_ws, keys, bought)
    send_list(store_ws, keys, bought)
    run(store_ws)  # declared and routed, then the sweep moves them on
    with db(store_ws).connect() as conn:
        states = dict(conn.execute(select(lists.c.cop_no, lists.c.state)).all())
        steps = conn.execute(
            select(list_log.c.to_state)
            .join(lists, lists.c.id == list_log.c.list_id)
            .where(lists.c.cop_no == bought[0].cop_no)
        ).all()
    assert states == {bought[0].cop_no: "declared", bought[1].cop_no: "closed"}
    assert steps == [("declared",)]  # its move to sent was rolled back with the failure


def test_the_sweep_passes_over_a_list_another_worker_holds(tmp_path):
    """PostgreSQL, several workers: a list another worker's transaction holds is left to it,
    with no wait (and so no deadlock over the guarantee row); a later sweep takes it."""
    from hub.config import Settings
    from hub.routing import Router

    with scratch_engine("postgresql", tmp_path, metadata) as engine:
        with engine.begin() as conn:
            list_id = _list(conn, _message(conn), "P9")
        router = Router(Settings())
        holder = engine.connect()
        holder.begin()
        holder.execute(select(lists.c.id).where(lists.c.id == list_id).with_for_update())
        swept: list[int] = []
        other = threading.Thread(target=lambda: swept.append(sweep.sweep(engine, router)))
        other.start()
        other.join(timeout=30)
        holder.rollback()  # let a sweep that waits (the old behaviour) finish, then fail
        holder.close()
        other.join()
        assert swept == [0]  # passed over, not waited for
        assert sweep.sweep(engine, router) == 1
        with engine.connect() as conn:
            assert conn.execute(select(lists.c.state)).scalar() == "sent"
