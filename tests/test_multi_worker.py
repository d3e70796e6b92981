"""Several `cebhub run` processes on one workspace: claims name their owner; each file once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections import Counter

from sqlalchemy import func, select

from adapters.directory import DirectoryInbox, claim_owner, orphaned
from hub import config
from hub.bench.workload import generate, message_mix, prepare_workspace
from hub.store.db import dispose_all, engine_for
from hub.store.tables import deliveries, messages, receipts
from tests.test_store_backends import drop_schema, pg_schema

WORKER = "import sys; from hub.cli import main; sys.exit(main(sys.argv[1:]))"


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_claim_names_its_owner_and_only_a_dead_owners_claim_is_recovered(ws):
    inbox = DirectoryInbox(ws, [("platform", "immediate")])
    (ws.inbox_of("platform") / "a.xml").write_bytes(b"<a/>")
    [mine] = inbox.claim(10)
    host = socket.gethostname().replace("-", "_")[:63]
    assert claim_owner(mine.name) == (os.getpid(), host)
    folder = ws.claims / "platform"
    dead = folder / f"18eb0000-0badcafe-{dead_pid()}-{host}--b.xml"
    elsewhere = folder / "18eb0001-0badcafe-1-some_other_host--c.xml"
    legacy = folder / "18eb0002-0badcafe--d.xml"  # a claim from before owners were named
    for path in (dead, elsewhere, legacy):
        path.write_bytes(b"<x/>")
    assert not orphaned(mine.name) and not orphaned(elsewhere.name)
    found = {c.name: c.original_name for c in inbox.recover()}
    assert found == {dead.name: "b.xml", legacy.name: "d.xml"}


def test_two_worker_processes_on_postgresql_answer_every_message_exactly_once(tmp_path):
    schema, url = pg_schema()
    try:
        ws = prepare_workspace(tmp_path / "ws", url)
        types, _ = message_mix()
        dropped = generate(ws, 300, types, seed=3)
        dispose_all()
        args = [sys.executable, "-c", WORKER, "-w", str(ws.root), "run", "--once"]
        procs = [subprocess.Popen(args, stderr=subprocess.PIPE) for _ in range(2)]
        errors = [p.communicate(timeout=600)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errors
        # The second start-up ran while the first held claims: nothing was taken twice.
        assert b"messages_claim_key" not in b"".join(errors)

        engine = engine_for(config.load(ws), ws)
        with engine.connect() as conn:
            rows = conn.execute(select(messages.c.file_name, messages.c.state)).all()
            per_message = dict(
                conn.execute(
                    select(receipts.c.message_id, func.count()).group_by(receipts.c.message_id)
                ).all()
            )
            sent = conn.execute(
                select(deliveries.c.partner_id, deliveries.c.file_name, deliveries.c.state)
            ).all()
        assert sorted(name for name, _ in rows) == sorted(d.file_name for d in dropped)
        assert Counter(state for _, state in rows) == {"accepted": 300}  # none a duplicate
        assert len(per_message) == 300  # every message answered
        assert all(state == "delivered" for _, _, state in sent)
        # Every receipt row became exactly one file, in its partner's outbox, and nothing else.
        written = sorted((p.parent.name, p.name) for p in ws.outbox.glob("*/*.xml") if p.is_file())
        assert written == sorted((partner, name) for partner, name, _ in sent)
        assert not list(ws.claims.glob("*/*")) and not list(ws.inbox.glob("*/*.xml"))
        archived = [p.name.partition("--")[2] for p in ws.archive.glob("*/*/*")]
        assert sorted(archived) == sorted(d.file_name for d in dropped)
    finally:
        dispose_all()
        drop_schema(schema)


def test_a_round_whose_reserved_files_another_worker_took_goes_on_to_the_next_ones(hub_ws, keys):
    """Two workers reserve the same oldest files; the one that comes second finds them gone.
    Its round must take the next ones: a round that found nothing ended `run --once` with the
    inbox still full (one worker then did all the work)."""
    from hub.runner import Hub
    from tests.helpers import drop_orders

    doc = config.read_document(hub_ws)
    doc["hub"]["check_processes"] = 0  # workers check in their own process
    doc["hub"]["batch_size"] = 5
    config.write_document(hub_ws, doc)
    drop_orders(hub_ws, keys, 12)
    hub = Hub(hub_ws)
    try:
        inbox = hub.folder.inbox
        inbox._scan()  # this worker's queue: the oldest first
        elsewhere = hub_ws.root / "taken-by-the-other-worker"
        elsewhere.mkdir()
        for _, name in list(inbox._queue)[:10]:  # the other worker took two batches' worth
            os.replace(hub_ws.inbox_of("platform") / name, elsewhere / name)

        assert hub._claim_all()  # a batch was started: the round found work

        with engine_for(config.load(hub_ws), hub_ws).connect() as conn:
            recorded = conn.execute(select(func.count()).select_from(messages)).scalar()
        assert recorded == 2  # the two files the other worker had not taken
        assert not list(hub_ws.inbox_of("platform").glob("*.xml"))
    finally:
        hub.close()
