"""The AMQP transport against the real RabbitMQ on loopback: late acks, redelivery, confirms."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.amqp import AmqpClaim, AmqpError, AmqpInbox, AmqpOutbox, inboxes_for, outboxes_for
from adapters.base import QueueSource
from adapters.directory import DirectoryOutbox
from hub import config
from hub.clock import utcnow
from hub.config import AmqpSettings, DeliverySettings
from hub.delivery.outbox import enqueue
from hub.delivery.worker import TransportError, deliver_due
from hub.store.db import engine_for
from hub.store.states import DeliveryState
from hub.store.tables import deliveries
from tests.helpers import cli
from tests.rabbit import (
    close_connections,
)

FETCH_WAIT = 2.0  # seconds one fetch may wait for the broker's first message
DEADLINE = 60.0  # seconds a loop may take before the test gives up (a hang, not a timing)
FAST_RETRY = DeliverySettings(max_attempts=10, backoff_seconds=0.001, backoff_cap_seconds=0.001)


# ---------------------------------------------------------------- a stand-in for the pipeline


class Effects:
    """The caller's transaction: one row per claim id, committed before the ack."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS effects (claim TEXT PRIMARY KEY, body BLOB)")

    def commit(self, claims: list[AmqpClaim]) -> int:
        """Records claims not seen before, as Processor does by Inbound.claim; returns how many."""
        with sqlite3.connect(self.path) as conn:
            cur = conn.executemany(
                "INSERT OR IGNORE INTO effects (claim, body) VALUES (?, ?)",
                [(c.claim, c.body) for c in claims],
            )
            return cur.rowcount

    def claims(self) -> set[str]:
        with sqlite3.connect(self.path) as conn:
            return {r[0] for r in conn.execute("SELECT claim FROM effects")}


def fetch_all(inbox: AmqpInbox, n: int, batch: int = 100) -> list[AmqpClaim]:
    got: list[AmqpClaim] = []
    deadline = time.monotonic() + DEADLINE
    while len(got) < n:
        assert time.monotonic() < deadline, f"only {len(got)} of {n} messages arrived"
        claims = inbox.fetch(batch, wait=FETCH_WAIT)
        assert len(claims) <= batch
        got.extend(claims)
    return got


def bodies(n: int, tag: str = "m") -> list[bytes]:
    return [f"<msg n='{i}' tag='{tag}'/>".encode() for i in range(n)]


# ---------------------------------------------------------------- inbound


def test_thousand_messages_fetched_in_batches_and_acked_once_after_commit(broker, tmp_path):
    queue = broker.queue("in")
    broker.publish(queue, bodies(1000))
    effects = Effects(tmp_path / "effects.db")
    inbox = AmqpInbox("platform", AmqpSettings(url=broker.url, queue=queue, prefetch=150))
    acked = Counter()
    deadline = time.monotonic() + DEADLINE
    while sum(acked.values()) < 1000:
        assert time.monotonic() < deadline
        claims = inbox.fetch(100, wait=FETCH_WAIT)
        assert 0 < len(claims) <= 100
        assert effects.commit(claims) == len(claims)  # every message new: no redelivery
        assert inbox.ack(claims) == len(claims)
        acked.update(c.claim for c in claims)
        assert not any(c.redelivered for c in claims)
    inbox.close()  # anything left unacked would go back to the queue now
    assert len(acked) == 1000 and set(acked.values()) == {1}
    assert effects.claims() == set(acked)
    assert broker.count(queue) == 0


def test_the_queue_source_counts_as_behind_until_a_claim_takes_less_than_it_asked(broker):
    """A hub keeping up records each batch in its round (`Hub._claim_all`); a queue tells it
    is behind while a claim comes back full or messages wait in the consumer's buffer."""
    queue = broker.queue("backlog")
    broker.publish(queue, bodies(30))
    source = QueueSource(
        AmqpInbox("platform", AmqpSettings(url=broker.url, queue=queue)), wait=FETCH_WAIT
    )
    try:
        assert len(source.claim(10)) == 10
        assert source.backlog() > 0
        taken, deadline = 10, time.monotonic() + DEADLINE
        while taken < 30:
            assert time.monotonic() < deadline, f"only {taken} of 30 messages arrived"
            taken += len(source.claim(100))
        assert taken == 30 and source.backlog() == 0
    finally:
        source.close()


def test_claim_id_is_deterministic_and_names_partner_and_message(broker):
    queue = broker.queue("ids")
    broker.publish(queue, [b"<a/>"])
    broker.publish(queue, [b"<a/>", b"<b/>"], message_ids=False)
    inbox = AmqpInbox("platform", AmqpSettings(url=broker.url, queue=queue))
    claims = fetch_all(inbox, 3)
    assert claims[0].claim.startswith("amqp-platform-m-00000-")
    assert claims[0].original_name == "m-00000"
    # without a message_id the body decides: the same bytes are the same claim
    assert claims[1].claim.startswith("amqp-platform-") and len(claims[1].claim) == 14 + 64
    assert claims[1].claim != claims[2].claim
    assert inbox.ack(claims) == 3
    inbox.close()


def test_consumer_closed_before_ack_messages_come_back_with_same_claim_ids(broker, tmp_path):
    queue = broker.queue("redeliver")
    broker.publish(queue, bodies(50))
    settings = AmqpSettings(url=broker.url, queue=queue)
    first = AmqpInbox("platform", settings)
    taken = fetch_all(first, 50)
    first.close()  # the transaction never committed: no ack
    assert broker.count(queue) == 50

    second = AmqpInbox("platform", settings)
    again = fetch_all(second, 50)
    assert sorted(c.claim for c in again) == sorted(c.claim for c in taken)
    assert all(c.redelivered for c in again)
    assert first.ack(taken) == 0  # tags of a closed connection are never used
    assert second.ack(again) == 50
    second.close()
    assert broker.count(queue) == 0


KILLED_CONSUMER = textwrap.dedent(
    """
    import json, os, signal, sys
    from adapters.amqp import AmqpInbox
    from hub.config import AmqpSettings
    from tests.test_amqp import Effects, fetch_all
    url, queue, db = sys.argv[1:]
    inbox = AmqpInbox("platform", AmqpSettings(url=url, queue=queue))
    claims = fetch_all(inbox, 40)
    Effects(db).commit(claims)  # the transaction commits ...
    print(json.dumps([c.claim for c in claims]), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # ... and the hub dies before the ack
    """
)


def test_hub_killed_between_commit_and_ack_no_second_effect(broker, tmp_path):
    queue = broker.queue("killed")
    broker.publish(queue, bodies(40))
    effects = Effects(tmp_path / "effects.db")
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_CONSUMER, broker.url, queue, str(effects.path)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == -9, proc.stderr
    committed = json.loads(proc.stdout)
    assert len(committed) == 40

    inbox = AmqpInbox("platform", AmqpSettings(url=broker.url, queue=queue))
    again = fetch_all(inbox, 40)
    assert {c.claim for c in again} == set(committed)
    assert effects.commit(again) == 0  # recognised by claim id: nothing happens twice
    assert inbox.ack(again) == 40
    inbox.close()
    assert broker.count(queue) == 0
    assert len(effects.claims()) == 40


def test_unacked_messages_come_back_after_a_broker_restart(broker, tmp_path):
    queue = broker.queue("restart-in")
    broker.publish(queue, bodies(30))
    effects = Effects(tmp_path / "effects.db")
    inbox = AmqpInbox("platform", AmqpSettings(url=broker.url, queue=queue))
    taken = fetch_all(inbox, 30)
    assert effects.commit(taken[:10]) == 10  # committed, but the broker goes before the ack
    with broker.stopped():
        with pytest.raises(TransportError) as down:
            inbox.fetch(10)
        assert down.value.retryable
        assert inbox.last_error and "127.0.0.1" in inbox.last_error
        assert inbox.ack(taken) == 0  # nothing to ack on: logged, not raised
    again = fetch_all(inbox, 30)  # the next fetch reconnects
    assert {c.claim for c in again} == {c.claim for c in taken}
    assert effects.commit(again) == 20  # the 10 committed ones make no second effect
    assert inbox.ack(again) == 30
    assert inbox.last_error is None
    inbox.close()
    assert broker.count(queue) == 0


def test_connection_closed_between_rounds_is_reopened_without_an_error(broker):
    queue = broker.queue("closed-in")
    partner = broker.name("p")
    inbox = AmqpInbox(partner, AmqpSettings(url=broker.url, queue=queue))
    assert inbox.fetch(10) == []
    assert close_connections(f"cebhub {partner} in") == 1
    broker.publish(queue, bodies(5))
    assert len(fetch_all(inbox, 5)) == 5  # no error: a dead idle connection is not an outage
    inbox.close()


def test_missing_queue_is_a_clear_error_and_declare_creates_it(broker):
    name = broker.name("missing")
    with pytest.raises(AmqpError, match=name) as missing:
        AmqpInbox("platform", AmqpSettings(url=broker.url, queue=name)).fetch(1)
    assert "NOT_FOUND" in str(missing.value)
    broker.queues.append(name)
    inbox = AmqpInbox("platform", AmqpSettings(url=broker.url, queue=name, declare=True))
    assert inbox.fetch(1) == []
    inbox.close()
    assert broker.count(name) == 0


# ---------------------------------------------------------------- outbound


def test_thousand_deliveries_published_with_confirms_each_once(broker):
    queue = broker.queue("out")
    exchange = broker.exchange("out", bound_to=queue, key="customs.in")
    sink = AmqpOutbox(
        "customs", AmqpSettings(url=broker.url, exchange=exchange, routing_key="customs.in")
    )
    guids = [f"guid-{i:05d}" for i in range(1000)]
    for guid in guids:
        sink.deliver("customs", f"CEB312Message_{guid}.xml", f"<r g='{guid}'/>".encode())
    sink.flush()
    sink.close()
    got = broker.drain(queue)
    assert sorted(p.message_id for p, _ in got) == guids  # each exactly once
    props, body = got[0]
    assert props.delivery_mode == 2
    assert props.content_type == "application/xml"
    assert props.type == "CEB312Message"
    assert props.headers["file_name"] == f"CEB312Message_{props.message_id}.xml"
    assert body == f"<r g='{props.message_id}'/>".encode()


def test_outbound_connection_closed_between_rounds_is_reopened(broker):
    queue = broker.queue("closed-out")
    partner = broker.name("p")
    sink = AmqpOutbox(partner, AmqpSettings(url=broker.url, routing_key=queue))
    sink.deliver(partner, "CEB312Message_a.xml", b"<a/>")
    assert close_connections(f"cebhub {partner} out") == 1
    sink.deliver(partner, "CEB312Message_b.xml", b"<b/>")
    sink.close()
    assert sorted(p.message_id for p, _ in broker.drain(queue)) == ["a", "b"]


def test_unroutable_publish_is_a_retryable_error(broker):
    sink = AmqpOutbox("customs", AmqpSettings(url=broker.url, routing_key=broker.name("nobody")))
    with pytest.raises(TransportError, match="unroutable") as failed:
        sink.deliver("customs", "CEB312Message_x.xml", b"<r/>")
    assert failed.value.retryable
    assert sink.last_error
    sink.close()


def test_refused_credentials_are_not_retried(broker):
    url = broker.url.replace("guest:guest", "guest:wrong-password")
    sink = AmqpOutbox("customs", AmqpSettings(url=url, routing_key="x"))
    with pytest.raises(TransportError) as refused:
        sink.deliver("customs", "CEB312Message_x.xml", b"<r/>")
    assert not refused.value.retryable
    assert "wrong-password" not in str(refused.value)  # the password never reaches a log


def _pending(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(
            select(deliveries.c.state, deliveries.c.attempts, deliveries.c.last_error)
        ).all()


def test_broker_stopped_mid_run_deliveries_retried_and_nothing_lost(broker, ws):
    queue = broker.queue("restart-out")
    settings = config.load(ws)
    engine = engine_for(settings, ws)
    sink = AmqpOutbox("customs", AmqpSettings(url=broker.url, routing_key=queue))
    sinks, default = {"customs": sink}, DirectoryOutbox(ws)

    def enqueue_many(start: int, n: int) -> None:
        with engine.begin() as conn:
            for i in range(start, start + n):
                enqueue(
                    conn, partner_id="customs", kind="route", msg_type="CEB311Message",
                    guid=f"g-{i:04d}", body=f"<o n='{i}'/>".encode(), message_id=None,
                    now=utcnow(),
                )  # fmt: skip

    enqueue_many(0, 100)
    assert deliver_due(engine, sinks, default, FAST_RETRY) == 100
    enqueue_many(100, 100)
    with broker.stopped():
        with pytest.raises(TransportError) as down:
            sink.deliver("customs", "CEB311Message_probe.xml", b"<p/>")
        assert down.value.retryable
        assert deliver_due(engine, sinks, default, FAST_RETRY) == 100
        rows = _pending(engine)
        failed = [r for r in rows if r.state == DeliveryState.PENDING]
        assert len(failed) == 100 and all(r.attempts == 1 and r.last_error for r in failed)
    deadline = time.monotonic() + DEADLINE
    while any(r.state != DeliveryState.DELIVERED for r in _pending(engine)):
        assert time.monotonic() < deadline, "deliveries did not go out after the restart"
        deliver_due(engine, sinks, default, FAST_RETRY)
    sink.close()
    got = Counter(p.message_id for p, _ in broker.drain(queue))
    assert set(got) == {f"g-{i:04d}" for i in range(200)}
    assert set(got.values()) == {1}  # every confirm arrived: exactly once, nothing lost


# ---------------------------------------------------------------- configuration


def test_partner_add_writes_the_amqp_table(ws):
    url = "amqp://hub:secret@mq.example:5672/%2F"
    args = ["partner", "add", "mq", "--role", "customs", "--codes", "CUSTOMS"]
    args += ["--transport", "amqp", "--amqp-url", url, "--queue", "customs.to-hub"]
    args += ["--exchange", "customs", "--routing-key", "from-hub"]
    assert cli(ws, *args) == 0
    partner = config.load(ws).partners["mq"]
    assert partner.transport == "amqp"
    assert partner.amqp == AmqpSettings(
        url=url, queue="customs.to-hub", exchange="customs", routing_key="from-hub"
    )
    assert set(inboxes_for([partner])) == set(outboxes_for([partner])) == {"mq"}
    assert "[partners.mq.amqp]" in ws.config_file.read_text(encoding="utf-8")


def test_partner_add_amqp_needs_a_url_and_amqp_options_need_amqp(ws):
    base = ("partner", "add", "mq", "--role", "customs", "--codes", "C")
    assert cli(ws, *base, "--transport", "amqp", "--queue", "q") != 0
    assert cli(ws, *base, "--queue", "q") != 0
    assert "mq" not in config.load(ws).partners
