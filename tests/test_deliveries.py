"""Delivery policy for every transport: retries, dead letters, `cebhub deliveries`, `cebhub resend`; the scheduler."""

from __future__ import annotations

import json
import threading
import time
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from hub import config, scheduler
from hub.clock import utcnow
from hub.console.tables import audit
from hub.generator import DEMO_PARTIES
from hub.runner import Hub
from hub.scheduler import Scheduler
from hub.store.db import engine_for
from hub.store.states import DeliveryState
from hub.store.tables import deliveries
from tests.helpers import cli, drop_orders, files, in_service, wait_until

DEADLINE = 60.0  # seconds a loop may take before the test calls it a hang (not a timing)
PLATFORM_CODES = f"{DEMO_PARTIES.ebp_code},{DEMO_PARTIES.ebc_code}"


def policy(ws, max_attempts: int = 3) -> None:
    doc = config.read_document(ws)
    doc["delivery"]["max_attempts"] = max_attempts
    doc["delivery"]["backoff_seconds"] = 0.01
    doc["delivery"]["backoff_cap_seconds"] = 0.02
    config.write_document(ws, doc)


def rows(ws, partner: str | None = None) -> list:
    engine = engine_for(config.load(ws), ws)
    q = select(deliveries).order_by(deliveries.c.id)
    if partner:
        q = q.where(deliveries.c.partner_id == partner)
    with engine.connect() as conn:
        return conn.execute(q).all()


def run_until(ws, done, hub: Hub | None = None) -> None:
    hub = hub or Hub(ws)
    deadline = time.monotonic() + DEADLINE
    while not done():
        assert time.monotonic() < deadline, "the hub did not get there"
        hub.run_once()
        time.sleep(0.02)  # let the backoff pass


def cli_json(ws, capsys, *args) -> object:
    capsys.readouterr()
    assert cli(ws, *args, "--json") == 0
    return json.loads(capsys.readouterr().out)


def break_outbox(ws, partner: str) -> None:
    """The partner's outbox folder is replaced by a file: every write there fails."""
    folder = ws.outbox_of(partner)
    folder.rmdir()
    folder.write_text("not a folder")


def test_dead_letter_after_max_attempts_then_resend_delivers(hub_ws, keys, capsys):
    policy(hub_ws, max_attempts=3)
    break_outbox(hub_ws, "customs")
    drop_orders(hub_ws, keys, 2)
    run_until(hub_ws, lambda: {r.state for r in rows(hub_ws, "customs")} == {DeliveryState.DEAD})

    dead = rows(hub_ws, "customs")
    assert len(dead) == 2 and all(r.attempts == 3 for r in dead)
    assert all("File exists" in r.last_error or "Not a directory" in r.last_error for r in dead)
    # One broken partner never held up the others.
    assert len(files(hub_ws.outbox_of("inspection"))) == 2
    assert len(files(hub_ws.outbox_of("platform"))) == 2  # a receipt (2 and 120) an order

    listed = cli_json(hub_ws, capsys, "deliveries", "--failed")
    assert sorted(d["id"] for d in listed) == sorted(r.id for r in dead)
    assert {(d["partner"], d["state"], d["attempts"]) for d in listed} == {("customs", "dead", 3)}
    assert all(d["last_error"] and d["file"].startswith("CEB311Message_") for d in listed)
    assert cli_json(hub_ws, capsys, "deliveries", "--partner", "inspection") == []
    assert len(cli_json(hub_ws, capsys, "deliveries", "--all", "--partner", "inspection")) == 2
    data = cli_json(hub_ws, capsys, "status")
    assert data["delivery_backlog"]["dead"] == 2
    assert data["delivery_backlog"]["by_partner"] == {"customs": {"dead": 2}}

    (hub_ws.outbox_of("customs")).unlink()  # ops fixed the destination
    Hub(hub_ws).run_once()
    assert {r.state for r in rows(hub_ws, "customs")} == {DeliveryState.DEAD}  # stays dead

    assert cli(hub_ws, "resend", dead[0].id) == 0
    first = rows(hub_ws, "customs")[0]
    assert (first.state, first.attempts, first.last_error) == (DeliveryState.PENDING, 0, None)
    assert cli(hub_ws, "resend", "--dead", "--partner", "customs") == 0
    Hub(hub_ws).run_once()
    assert {r.state for r in rows(hub_ws, "customs")} == {DeliveryState.DELIVERED}
    assert sorted(p.name for p in files(hub_ws.outbox_of("customs"))) == sorted(
        r.file_name for r in dead
    )
    engine = engine_for(config.load(hub_ws), hub_ws)
    with engine.connect() as conn:
        trail = conn.execute(select(audit).where(audit.c.action == "resend")).all()
    assert sorted(t.target for t in trail) == sorted(f"delivery {r.id}" for r in dead)
    assert all(
        "was dead after 3 attempt(s)" in t.detail and t.actor.startswith("cli:") for t in trail
    )


def test_resend_of_a_delivered_file_writes_it_again(hub_ws, keys):
    drop_orders(hub_ws, keys, 1)
    Hub(hub_ws).run_once()
    [row] = rows(hub_ws, "customs")
    [copy] = files(hub_ws.outbox_of("customs"))
    copy.unlink()  # the partner lost it
    assert cli(hub_ws, "resend", row.id) == 0
    Hub(hub_ws).run_once()
    assert [p.name for p in files(hub_ws.outbox_of("customs"))] == [row.file_name]
    again = rows(hub_ws, "customs")[0]
    assert again.state == DeliveryState.DELIVERED and again.attempts == 1


def test_resend_of_an_unknown_id_changes_nothing(hub_ws, keys):
    policy(hub_ws, max_attempts=1)
    break_outbox(hub_ws, "customs")
    drop_orders(hub_ws, keys, 1)
    Hub(hub_ws).run_once()
    [row] = rows(hub_ws, "customs")
    assert row.state == DeliveryState.DEAD
    assert cli(hub_ws, "resend", row.id, 999999) == 1
    assert rows(hub_ws, "customs")[0].state == DeliveryState.DEAD
    assert cli(hub_ws, "resend") == 1  # nothing named


def test_retries_back_off_and_keep_the_last_error(hub_ws, keys):
    doc = config.read_document(hub_ws)
    doc["delivery"]["backoff_seconds"] = 30.0  # long enough that no retry is due in this test
    config.write_document(hub_ws, doc)
    break_outbox(hub_ws, "customs")
    drop_orders(hub_ws, keys, 1)
    before = utcnow()
    Hub(hub_ws).run_once()
    [row] = rows(hub_ws, "customs")
    assert (row.state, row.attempts) == (DeliveryState.PENDING, 1)
    assert row.last_error
    wait = (row.next_attempt_at.replace(tzinfo=before.tzinfo) - before).total_seconds()
    assert 29 <= wait <= 60  # the first retry waits the base delay (with jitter up to 2x)
    Hub(hub_ws).run_once()  # not due yet: not attempted again
    assert rows(hub_ws, "customs")[0].attempts == 1


def test_in_service_a_failed_delivery_is_retried_when_it_comes_due(hub_ws, keys, caplog):
    """`cebhub run` schedules the loop's next pass for the earliest pending retry (SQLite hands
    that time back naive): the retry happens then, not at the next inbox poll."""
    doc = config.read_document(hub_ws)
    doc["delivery"]["backoff_seconds"] = 0.5
    doc["delivery"]["backoff_cap_seconds"] = 1.0
    doc["hub"]["poll_seconds"] = 3600.0  # no periodic rescan: only the scheduler can wake it
    doc["console"]["enabled"] = False
    config.write_document(hub_ws, doc)
    break_outbox(hub_ws, "customs")
    drop_orders(hub_ws, keys, 1)
    with in_service(Hub(hub_ws)):
        wait_until(lambda: rows(hub_ws, "customs") and rows(hub_ws, "customs")[0].attempts,
                   "the first attempt never came")  # fmt: skip
        hub_ws.outbox_of("customs").unlink()  # fixed: the retry finds a folder
        hub_ws.outbox_of("customs").mkdir()
        wait_until(lambda: rows(hub_ws, "customs")[0].state == DeliveryState.DELIVERED,
                   "the retry was never made")  # fmt: skip
    assert rows(hub_ws, "customs")[0].attempts == 2
    assert len(files(hub_ws.outbox_of("customs"))) == 1
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text


# ---------------------------------------------------------------- SFTP: a permanent refusal


def test_sftp_push_refused_by_permissions_waits_long_and_is_resent_once_fixed(
    ws, keys, sshd, capsys
):
    inbox, outbox = sshd.root / "customs" / "inbox", sshd.root / "customs" / "outbox"
    inbox.mkdir(parents=True)
    outbox.mkdir()
    inbox.chmod(0o555)  # the hub's user may not write there (it logs in unprivileged)
    p = ["partner", "add", "platform", "--role", "platform", "--codes", PLATFORM_CODES]
    assert cli(ws, *p, "--cert", keys["platform"].cert_path) == 0
    c = ["partner", "add", "customs", "--role", "customs", "--codes", "CUSTOMS"]
    c += ["--transport", "sftp", "--sftp-host", sshd.host, "--sftp-port", sshd.port]
    c += ["--sftp-user", sshd.unprivileged_username, "--sftp-key", sshd.user_key]
    c += ["--known-hosts", sshd.known_hosts, "--remote-dir", outbox, "--remote-inbox", inbox]
    assert cli(ws, *c) == 0
    assert cli(ws, "partner", "add", "inspection", "--role", "inspection", "--codes", "CIQ") == 0
    policy(ws, max_attempts=5)
    doc = config.read_document(ws)
    doc["delivery"]["backoff_seconds"] = 1.0
    doc["delivery"]["backoff_cap_seconds"] = 300.0
    config.write_document(ws, doc)
    drop_orders(ws, keys, 2)
    Hub(ws).run_once()

    [first, second] = rows(ws, "customs")
    # A refusal the partner must fix is retried at the longest interval, not dead-lettered.
    assert first.state == DeliveryState.PENDING and first.attempts == 1
    assert "permission denied" in first.last_error
    wait = first.next_attempt_at.replace(tzinfo=None) - utcnow().replace(tzinfo=None)
    assert wait.total_seconds() > 250
    # The rest of that partner's round was skipped, and retried later: nothing is lost.
    assert second.state == DeliveryState.PENDING
    status = cli_json(ws, capsys, "status")
    push = next(a for a in status["adapters"] if a["name"] == "sftp-push:customs")
    assert push["up"] is False and "permission denied" in push["last_error"]

    inbox.chmod(0o777)  # the partner fixed its folder
    assert cli(ws, "resend", first.id, second.id) == 0  # no need to wait for the retry
    run_until(ws, lambda: {r.state for r in rows(ws, "customs")} == {DeliveryState.DELIVERED})
    assert sorted(p.name for p in files(inbox)) == sorted(r.file_name for r in rows(ws, "customs"))


# ---------------------------------------------------------------- the scheduler


def test_run_once_runs_housekeeping_and_hooked_jobs_once(hub_ws, monkeypatch):
    monkeypatch.setattr(scheduler, "_hooks", [])
    calls: list[str] = []

    @scheduler.add_hook
    def _jobs(hub, sched):
        sched.every("test-job", 3600, lambda: calls.append(hub.ws.root.name))

    old = hub_ws.archive / "platform" / (date.today() - timedelta(days=400)).isoformat()
    recent = hub_ws.archive / "platform" / date.today().isoformat()
    for folder in (old, recent):
        folder.mkdir(parents=True)
        (folder / "x.xml").write_text("<x/>")
    (hub_ws.archive / "platform" / "notes").mkdir()  # not a day folder: left alone
    assert cli(hub_ws, "run", "--once") == 0
    assert calls == ["ws"]
    assert not old.exists() and recent.exists() and (hub_ws.archive / "platform" / "notes").exists()


def test_a_due_job_wakes_the_loop_and_runs_in_it():
    wakeup = threading.Event()
    sched = Scheduler(wakeup)
    ran: list[str] = []
    sched.every("tick", 0.05, lambda: ran.append(threading.current_thread().name))
    assert sched.run_due() == 1  # due once at the start
    sched.at("once", utcnow() + timedelta(seconds=0.05), lambda: ran.append("once"))
    sched.start()
    try:
        deadline = time.monotonic() + DEADLINE
        while "once" not in ran or len(ran) < 3:
            assert time.monotonic() < deadline
            wakeup.wait(1.0)
            wakeup.clear()
            sched.run_due()
    finally:
        sched.shutdown()
    # Jobs run in the caller's (the main loop's) thread, never in the scheduler's.
    assert set(ran) - {"once"} == {threading.current_thread().name}


def test_a_failing_job_does_not_stop_the_others():
    sched = Scheduler(threading.Event())
    ran: list[str] = []
    sched.every("a-broken", 60, lambda: 1 / 0)
    sched.every("b-fine", 60, lambda: ran.append("b"))
    assert sched.run_due(every_job=True) == 1
    assert ran == ["b"]


@pytest.mark.parametrize("days", [0, -1])
def test_archive_retention_of_zero_keeps_everything(tmp_path, days):
    folder = tmp_path / "archive" / "p" / "2000-01-01"
    folder.mkdir(parents=True)
    assert scheduler.prune_archive(tmp_path / "archive", days) == 0
    assert folder.exists()


def test_delivered_at_is_when_the_files_were_durable_not_when_the_write_lock_came(hub_ws, keys):
    """The deliverer may wait for the database's write lock to record a round; a partner could
    read the files before that, and `delivered_at` says when."""
    drop_orders(hub_ws, keys, 1)
    hub = Hub(hub_ws)
    hub.process_claims(hub.inbox.claim(10))  # recorded; nothing delivered yet
    engine = engine_for(config.load(hub_ws), hub_ws)
    holder = engine.connect()
    holder.begin()  # BEGIN IMMEDIATE: another writer holds the lock
    released = []

    def release_later() -> None:
        time.sleep(1.0)
        released.append(utcnow())
        holder.commit()

    threading.Thread(target=release_later).start()
    try:
        assert hub.deliver() == 3  # the receipt (2 and 120), copies to customs and inspection
    finally:
        holder.close()
        hub.close()
    [release] = released
    delivered = [r.delivered_at for r in rows(hub_ws)]  # naive UTC, as SQLite keeps it
    assert delivered and all(w is not None and w < release.replace(tzinfo=None) for w in delivered)
    assert len(files(hub_ws.outbox_of("platform"))) == 1
