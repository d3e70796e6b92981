"""The checker process: batches checked there are answered exactly as batches checked in the hub."""

from __future__ import annotations

import logging
import pickle
import shutil
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from hub import checker, codes, config
from hub.constants import CEB_NS
from hub.errors import (
    EnvelopeError,
    FormatError,
    HubError,
    MessageRejected,
    NotPermitted,
    OversizeError,
    RecordRejected,
    SchemaError,
    SignatureError,
)
from hub.generator import DEMO_PARTIES, make_purchases, order_message, to_bytes
from hub.messages.types import by_root
from hub.pipeline import Processor
from hub.runner import Hub
from hub.store.tables import messages, receipts
from hub.workspace import Workspace
from tests.clearance_support import db, purchase, send_documents, send_list, set_guarantee
from tests.helpers import drop_orders, receipt_entries
from tests.test_bad_input import CASES


def _set_checkers(ws: Workspace, n: int, batch_size: int = 100) -> None:
    doc = config.read_document(ws)
    doc["hub"]["check_processes"] = n
    doc["hub"]["batch_size"] = batch_size
    config.write_document(ws, doc)


def _drop_mixed_input(ws: Workspace, keys) -> None:
    """Good documents and lists, and every kind of bad file, in the partners' inboxes."""
    set_guarantee(ws, "100000")
    bought = [purchase(seed) for seed in (31, 32, 33)]
    send_documents(ws, keys, bought)
    send_list(ws, keys, bought)
    inbox = ws.inbox_of("platform")
    for name, (make, _, _) in CASES.items():
        if name != "huge.xml":  # refused unread either way; 50 MB is not worth writing twice
            (inbox / name).write_bytes(make(keys))
    stranger = order_message(make_purchases(1, seed=41), DEMO_PARTIES, sign=keys["stranger"].sign)
    (inbox / "wrong-signer.xml").write_bytes(to_bytes(stranger))
    foreign = order_message(make_purchases(1, seed=42), DEMO_PARTIES, sign=keys["platform"].sign)
    (ws.inbox_of("payment") / "not-theirs.xml").write_bytes(to_bytes(foreign))


def _checked_here(monkeypatch) -> list:
    """The items the hub's own process checks from now on (not the checker process)."""
    here: list = []
    real_check_all = Processor.check_all
    monkeypatch.setattr(
        Processor,
        "check_all",
        lambda self, items: (here.extend(items), real_check_all(self, items)),
    )
    return here


def _answers(ws: Workspace) -> dict:
    """Every receipt entry per partner (without its guid and time), and every message row."""
    found: dict = {}
    for folder in sorted(ws.outbox.iterdir()):
        entries = [e for e in receipt_entries(folder) if "returnStatus" in e.fields]
        found[folder.name] = sorted(
            (e.msg_type, e.status, e.info, tuple(sorted(
                (k, v) for k, v in e.fields.items() if k not in ("guid", "returnTime")
            )))
            for e in entries
        )  # fmt: skip
        copies = [p.read_bytes() for p in folder.glob("*.xml")] if not entries else []
        found[f"{folder.name} copies"] = sorted(copies)
    with db(ws).connect() as conn:
        rows = conn.execute(
            select(
                messages.c.file_name,
                messages.c.msg_type,
                messages.c.state,
                messages.c.return_status,
                messages.c.return_info,
                messages.c.signed_by,
                messages.c.body,
            )
        )
        found["messages"] = sorted(tuple(r) for r in rows)
        stored = "select head, lines from orders union all select head, lines from lists"
        found["stored json"] = sorted(tuple(r) for r in conn.exec_driver_sql(stored))
    return found


def test_a_batch_checked_in_the_checker_process_is_answered_as_one_checked_in_the_hub(
    hub_ws, keys, tmp_path, monkeypatch
):
    _drop_mixed_input(hub_ws, keys)
    twin = Workspace(tmp_path / "twin")
    shutil.copytree(hub_ws.root, twin.root)  # the same partners, certificates and files
    _set_checkers(hub_ws, 0)
    _set_checkers(twin, 1)

    Hub(hub_ws).run_once()

    checked_here = _checked_here(monkeypatch)
    hub = Hub(twin)
    hub.checker.min_batch = 1
    assert hub.checker.wait_ready(timeout=60)
    hub.run_once()

    assert checked_here == []  # every file went through the checker process
    here, there = _answers(hub_ws), _answers(twin)
    assert there == here
    states = {row[0]: row[2] for row in here["messages"]}
    assert len(states) == 4 + len(CASES) - 1 + 2
    assert states["wrong-signer.xml"] == states["not-theirs.xml"] == "rejected"
    assert {"2", "120", "-0001", "-0002"} <= {s for _, s, _, _ in here["platform"]}
    assert ("CEB622Message", "899") in {(m, s) for m, s, _, _ in here["agent"]}  # lists closed


def test_a_checker_process_that_dies_costs_nothing_the_hub_checks_the_batch_itself(
    hub_ws, keys, monkeypatch, caplog
):
    _set_checkers(hub_ws, 1, batch_size=2)
    drop_orders(hub_ws, keys, 6, seed=50)
    hub = Hub(hub_ws)
    hub.checker.min_batch = 1
    assert hub.checker.wait_ready(timeout=60)
    killed = []
    real_send = checker.Checker._send

    def send_then_die(self, work):
        number = real_send(self, work)
        if not killed:  # the first batch handed over is lost with its process
            self.kill(number)
            killed.append(True)
        return number

    monkeypatch.setattr(checker.Checker, "_send", send_then_die)
    with caplog.at_level(logging.WARNING, logger="hub.checker"):
        hub.run_once()

    assert killed
    assert "the checker process failed" in caplog.text
    assert "the checker process had failed" in caplog.text  # the batch queued behind it too
    entries = receipt_entries(hub_ws.outbox_of("platform"))
    assert sorted(e.status for e in entries) == ["120"] * 6 + ["2"] * 6
    with db(hub_ws).connect() as conn:
        assert conn.execute(select(messages.c.state)).scalars().all() == ["accepted"] * 6


def test_a_small_batch_after_a_handed_over_one_is_recorded_after_it(hub_ws, keys):
    """An order and then its change: the change must not be recorded before the order."""
    _set_checkers(hub_ws, 1)
    bought = make_purchases(2, seed=60)
    new = [order_message([p], DEMO_PARTIES, sign=keys["platform"].sign) for p in bought]
    change = order_message(bought[:1], DEMO_PARTIES, app_type="2", sign=keys["platform"].sign)
    inbox = hub_ws.inbox_of("platform")
    hub = Hub(hub_ws)
    hub.checker.min_batch = 2
    assert hub.checker.wait_ready(timeout=60)
    try:
        for i, root in enumerate(new):
            (inbox / f"new-{i}.xml").write_bytes(to_bytes(root))
        assert hub._claim_all()  # two files: handed to the checker, recorded next round
        assert [b.remote for b in hub._checking] == [True]
        (inbox / "change.xml").write_bytes(to_bytes(change))
        assert hub._claim_all()  # one file: checked here, recorded after the two
        assert hub._checking == []
    finally:
        hub.close()
    with db(hub_ws).connect() as conn:
        rows = conn.execute(
            select(messages.c.file_name, messages.c.state, messages.c.return_status).order_by(
                messages.c.id
            )
        ).all()
        assert [r.file_name for r in rows][-1] == "change.xml"
        assert {r.state for r in rows} == {"accepted"}
        answered = conn.execute(select(receipts.c.return_status)).scalars().all()
    assert sorted(answered) == ["120"] * 3 + ["2"] * 3  # the change too, not -301xxx


def _recorded(ws: Workspace) -> list[str]:
    with db(ws).connect() as conn:
        return sorted(conn.execute(select(messages.c.file_name)).scalars())


def test_a_hub_keeping_up_records_a_batch_in_the_round_that_took_it(hub_ws, keys, monkeypatch):
    """Fewer files than a batch: the inbox is empty once they are taken, so no batch comes
    after them to be recorded meanwhile. They are checked in the checker process (even a
    batch smaller than a behind hub would hand over) and recorded before the round ends, not
    held there until a next batch arrives."""
    _set_checkers(hub_ws, 1, batch_size=100)
    names = drop_orders(hub_ws, keys, 20, seed=70)
    checked_here = _checked_here(monkeypatch)
    hub = Hub(hub_ws)
    assert hub.checker.wait_ready(timeout=60)
    deliverer = hub._deliverer()
    try:
        assert hub.checker.min_batch > 20  # behind, 20 files would be checked here
        assert hub._round(deliverer)
        assert hub._checking == []
        assert _recorded(hub_ws) == sorted(names)
    finally:
        hub._stop_deliverer(deliverer)
        hub.close()
    assert checked_here == []


def test_a_hub_behind_records_a_batch_while_the_next_two_are_in_the_checker(hub_ws, keys):
    """More files than a batch: each round hands the next batch to the checker process and
    records the oldest, while the process holds two: the one it checks and the next, waiting
    in its pipe. Checking and recording overlap, and the process never waits for a round."""
    _set_checkers(hub_ws, 1, batch_size=20)
    names = drop_orders(hub_ws, keys, 76, seed=71)
    hub = Hub(hub_ws)
    assert hub.checker.wait_ready(timeout=60)
    deliverer = hub._deliverer()
    recorded, held = [], []
    try:
        for _ in range(4):  # 20, 20 and 20 of 76 taken: behind; then the last 16
            assert hub._round(deliverer)
            recorded.append(len(_recorded(hub_ws)))
            held.append(([b.remote for b in hub._checking], hub.checker.held()))
    finally:
        hub._stop_deliverer(deliverer)
        hub.close()
    assert held == [([True], [1]), ([True, True], [2]), ([True, True], [2]), ([], [0])]
    assert recorded == [0, 0, 20, 76]  # the last round keeps up: it records all it holds
    assert _recorded(hub_ws) == sorted(names)


@pytest.mark.parametrize(
    "error",
    [
        HubError("internal", path="a/b"),
        FormatError("not XML"),
        SchemaError("too long", path="CEB311Message/Order/OrderHead/orderNo"),
        OversizeError("too big"),
        EnvelopeError("sender", return_status=codes.ADDRESS_MISMATCH, path="DxpMsg"),
        MessageRejected("-621005", "over the limit"),
        SignatureError(by_root("CEB621Message"), "digest", digest=True),
        NotPermitted(by_root("CEB311Message"), "not yours"),
        RecordRejected("-301010", "exists"),
    ],
)
def test_errors_cross_to_the_hub_exactly_as_raised(error):
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert (back.return_status, back.return_info, str(back)) == (
        error.return_status,
        error.return_info,
        str(error),
    )


def test_no_checker_process_for_small_batches_or_when_turned_off(hub_ws):
    hub = Hub(hub_ws)
    try:
        assert hub.checker.min_batch == 50  # half a full batch of 100: the hub is behind
        assert not hub.checker.available(49)
        assert not hub.checker.started()  # a hub that sees a few files never starts it
    finally:
        hub.close()
    _set_checkers(hub_ws, 0)
    hub = Hub(hub_ws)
    try:
        assert not hub.checker.available(1000) and not hub.checker.started()
    finally:
        hub.close()


def test_the_checks_accept_exactly_the_types_that_have_a_handler():
    """hub.checks decides what is accepted without importing the handlers (the checker
    process has no database modules); the two lists must not drift apart."""
    from hub.handlers import HANDLERS
    from hub.messages.types import HANDLED

    assert set(HANDLED) == set(HANDLERS)
    assert all(HANDLERS[root].msg_type is msg_type for root, msg_type in HANDLED.items())


def test_the_checker_process_imports_no_database_module():
    import subprocess
    import sys

    code = (
        "import sys; from hub.checker import setup; from hub.checks import build_stages; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'psycopg')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_batch_whose_recording_fails_is_recorded_in_a_later_round(hub_ws, keys, monkeypatch):
    """A transaction that fails (the database was away) leaves its claims held, not stranded:
    the next round records them, whether they were checked here or in the checker process."""
    _set_checkers(hub_ws, 1, batch_size=4)
    names = drop_orders(hub_ws, keys, 6, seed=80)
    hub = Hub(hub_ws)
    hub.checker.min_batch = 2
    assert hub.checker.wait_ready(timeout=60)
    real_record = Processor.record
    failures = []

    def record_once_failing(self, engine, items):
        if not failures:
            failures.append(len(items))
            raise RuntimeError("database away")
        return real_record(self, engine, items)

    monkeypatch.setattr(Processor, "record", record_once_failing)
    rounds = 0
    try:
        while True:
            rounds += 1
            assert rounds < 20, "the claims were never recorded"
            try:
                if not hub._claim_all():
                    break
            except RuntimeError:
                continue  # run_forever logs the failed round and goes on
        hub._archive_durable(keep=0)  # as a round that finds nothing to claim ends
    finally:
        hub.close()
    assert failures == [4]
    with db(hub_ws).connect() as conn:
        states = conn.execute(select(messages.c.file_name, messages.c.state)).all()
    assert sorted(states) == [(name, "accepted") for name in sorted(names)]
    assert not list((hub_ws.claims / "platform").iterdir())


def test_a_batch_from_the_checker_carries_each_field_name_once(hub_ws, keys, monkeypatch):
    """The records of a batch share their field names' string objects, so the frame the
    checker sends names each field once (pickle's memo) and the hub unpickles less; past the
    cap, names made up by a hostile file are still read, just not kept."""
    from hub.checks import build_stages
    from hub.clock import utcnow
    from hub.messages import records

    names = drop_orders(hub_ws, keys, 3, seed=90)
    settings = config.load(hub_ws)
    work = [
        ("platform", n, (hub_ws.inbox_of("platform") / n).read_bytes(), utcnow(), None)
        for n in names
    ]
    results = checker.check_batch(work, settings, build_stages(hub_ws, settings))

    heads = [r.records[0].head for r in results]
    assert all(h["orderNo"] for h in heads) and len({h["orderNo"] for h in heads}) == 3
    first = next(k for k in heads[0] if k == "orderNo")
    assert all(next(k for k in h if k == "orderNo") is first for h in heads[1:])
    assert pickle.dumps(heads, protocol=pickle.HIGHEST_PROTOCOL).count(b"orderNo") == 1
    frame = pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL)
    assert pickle.loads(frame)[2].records[0].head == heads[2]

    monkeypatch.setattr(records, "_NAMES", {})
    monkeypatch.setattr(records, "_MAX_NAMES", 0)
    again = checker.check_batch(work, settings, build_stages(hub_ws, settings))
    assert [r.records[0].head for r in again] == heads
    assert records._NAMES == {}

    monkeypatch.setattr(records, "_MAX_NAMES", 4096)  # room, but a long made-up name is not kept
    long_name = "x" * 10_000
    head = etree.fromstring(
        f'<h xmlns="{CEB_NS}"><orderNo>1</orderNo><{long_name}>2</{long_name}></h>'
    )
    assert records.fields_of(head) == {"orderNo": "1", long_name: "2"}
    assert list(records._NAMES.values()) == ["orderNo"]


def test_the_checker_process_takes_a_big_batch_the_hub_renames_and_reads_none_of_it(
    hub_ws, keys, monkeypatch
):
    """A batch big enough for the checker is claimed (renamed into claims/) and read there:
    the hub's own process spends no rename and no read on it, and every file is answered and
    archived once. A file over the size limit is refused unread there, as it is here."""
    import adapters.directory as directory

    _set_checkers(hub_ws, 1, batch_size=8)
    doc = config.read_document(hub_ws)
    doc["hub"]["max_message_bytes"] = 20_000
    config.write_document(hub_ws, doc)
    names = drop_orders(hub_ws, keys, 7, seed=95)
    (hub_ws.inbox_of("platform") / "big.xml").write_bytes(b"<a>" + b"x" * 30_000 + b"</a>")
    here = []
    real_take, real_read = directory.take_file, Hub.read
    monkeypatch.setattr(directory, "take_file", lambda r: here.append(r) or real_take(r))
    monkeypatch.setattr(
        Hub, "read", lambda self, c, s=None: here.append(c) or real_read(self, c, s)
    )
    hub = Hub(hub_ws)
    hub.checker.min_batch = 8
    assert hub.checker.wait_ready(timeout=60)
    hub.run_once()

    assert here == []
    assert sorted(p.name for p in hub_ws.inbox_of("platform").iterdir()) == []
    assert list((hub_ws.claims / "platform").iterdir()) == []
    archived = [p.name.partition("--")[2] for p in (hub_ws.archive / "platform").rglob("*.xml")]
    assert sorted(archived) == sorted(names)
    refused = [p.name for p in (hub_ws.quarantine / "platform").iterdir()]
    assert [n.partition("--")[2] for n in refused if not n.endswith(".txt")] == ["big.xml"]
    entries = receipt_entries(hub_ws.outbox_of("platform"))
    assert sorted(e.status for e in entries if e.msg_type == "CEB312Message") == (
        ["120"] * 7 + ["2"] * 7
    )
    with db(hub_ws).connect() as conn:
        rows = conn.execute(select(messages.c.file_name, messages.c.state, messages.c.size))
        by_name = {r.file_name: (r.state, r.size) for r in rows}
    assert by_name.pop("big.xml") == ("rejected", 30_007)
    assert set(by_name) == set(names) and {s for s, _ in by_name.values()} == {"accepted"}


def test_files_a_dead_checker_took_are_taken_again_here_and_a_file_gone_is_left_out(hub_ws, keys):
    """The checker renames a reserved file into claims/ under the name the hub chose. If it
    dies before it answers, the hub takes the batch itself: what the checker took counts as
    taken, and a file another worker took meanwhile is simply not the hub's."""
    from adapters.directory import take_file

    drop_orders(hub_ws, keys, 3, seed=96)
    hub = Hub(hub_ws)
    try:
        reserved = hub.folder.reserve(10)
        assert len(reserved) == 3 and not list((hub_ws.claims / "platform").iterdir())
        assert take_file(reserved[0]) is not None  # as the checker did before it died
        Path(reserved[1].src).unlink()  # another worker took it
        claims = hub.folder.take(reserved)
    finally:
        hub.close()
    assert [c.name for c in claims] == [reserved[0].name, reserved[2].name]
    assert all(c.path.is_file() and c.size > 0 for c in claims)
    assert sorted(p.name for p in (hub_ws.claims / "platform").iterdir()) == sorted(
        c.name for c in claims
    )


def test_two_checker_processes_take_turns_and_batches_are_recorded_in_the_order_claimed(
    hub_ws, keys, monkeypatch
):
    """With `check_processes = 2` a batch goes to whichever process is free, so the next is
    checked while the one before it still is; recording keeps the order the files came in."""
    _set_checkers(hub_ws, 2, batch_size=3)
    names = drop_orders(hub_ws, keys, 14, seed=97)
    used = []
    real_send = checker.Checker._send

    def send_and_note(self, work):
        ticket = real_send(self, work)
        used.append((self.process_of(ticket), sum(self.held())))
        return ticket

    monkeypatch.setattr(checker.Checker, "_send", send_and_note)
    hub = Hub(hub_ws)
    hub.checker.min_batch = 2
    assert hub.checker.depth == 4 and hub.checker.wait_ready(timeout=60)  # two batches each
    hub.run_once()

    assert {n for n, _ in used} == {0, 1}
    assert max(busy for _, busy in used) >= 2  # several batches in the checkers at once
    with db(hub_ws).connect() as conn:
        rows = conn.execute(
            select(messages.c.file_name, messages.c.state).order_by(messages.c.id)
        ).all()
        answered = conn.execute(select(receipts.c.return_status)).scalars().all()
    assert [r.file_name for r in rows] == names
    assert {r.state for r in rows} == {"accepted"}
    assert sorted(answered) == ["120"] * 14 + ["2"] * 14
    assert list((hub_ws.claims / "platform").iterdir()) == []


def test_a_scan_does_not_list_again_the_files_a_checker_is_taking(hub_ws, keys):
    drop_orders(hub_ws, keys, 3, seed=98)
    hub = Hub(hub_ws)
    try:
        reserved = hub.folder.reserve(10)
        assert len(reserved) == 3
        assert hub.folder.reserve(10) == []  # a new scan: all three are reserved, not taken
        hub.folder.settle(reserved[:1])  # the checker died before taking it, say
        again = hub.folder.reserve(10)
        assert [r.src for r in again] == [reserved[0].src]
        assert again[0].name != reserved[0].name  # a claim name of its own
    finally:
        hub.close()


def test_a_file_that_cannot_be_moved_is_left_in_the_inbox_and_logged_not_a_failed_round(
    hub_ws, keys, caplog
):
    from adapters.directory import take_file

    drop_orders(hub_ws, keys, 2, seed=99)
    hub = Hub(hub_ws)
    try:
        stuck, fine = hub.folder.reserve(10)
        blocker = Path(stuck.dst)
        (blocker / "inside").mkdir(parents=True)  # the claim name is taken by a folder
        with caplog.at_level(logging.ERROR, logger="adapters.directory"):
            assert take_file(stuck) is None
            claims = hub.folder.take([stuck, fine])
    finally:
        hub.close()
    assert [c.name for c in claims] == [fine.name]
    assert Path(stuck.src).is_file()
    assert "claiming" in caplog.text and stuck.src in caplog.text


def test_files_reserved_by_a_round_that_fails_are_found_again_by_the_next(
    hub_ws, keys, monkeypatch
):
    """A bug between reserving files and handing them over fails the round (the loop logs it
    and goes on); the files are still in the inbox, and the next round reserves them again."""
    names = drop_orders(hub_ws, keys, 2, seed=100)
    hub = Hub(hub_ws)
    try:
        with monkeypatch.context() as m:
            m.setattr(Hub, "_start_taking", lambda *a: (_ for _ in ()).throw(RuntimeError("bug")))
            with pytest.raises(RuntimeError, match="bug"):
                hub._claim_all()
        assert sorted(Path(r.src).name for r in hub.folder.reserve(10)) == sorted(names)
    finally:
        hub.close()
