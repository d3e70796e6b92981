"""The hub consuming partners' queues and publishing to their exchanges on the real RabbitMQ."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from hub import config
from hub.faults import ENV as CRASH_ENV
from hub.generator import DEMO_PARTIES, make_purchases, order_message, to_bytes
from hub.runner import Hub
from hub.store.db import dispose_all, engine_for
from hub.store.states import DeliveryState
from hub.store.tables import deliveries
from tests.helpers import cli, counts, files, unwrap
from tests.helpers import status_json as status
from tests.rabbit import Broker

CEBHUB = str(Path(sys.executable).parent / "cebhub")
PLATFORM_CODES = f"{DEMO_PARTIES.ebp_code},{DEMO_PARTIES.ebc_code}"


class Queues:
    """The platform's inbound queue and receipt queue, and the customs queue, on the broker."""

    def __init__(self, broker: Broker) -> None:
        self.inbound = broker.queue("platform-in")
        self.receipts = broker.queue("platform-receipts")
        self.customs = broker.queue("customs")
        self.platform_exchange = broker.exchange("platform", self.receipts, "receipts")
        self.customs_exchange = broker.exchange("customs", self.customs, "declarations")


@pytest.fixture
def q(broker) -> Queues:
    return Queues(broker)


@pytest.fixture
def mq_ws(ws, keys, broker, q):
    platform = ["partner", "add", "platform", "--role", "platform", "--codes", PLATFORM_CODES]
    platform += ["--cert", keys["platform"].cert_path, "--transport", "amqp"]
    platform += ["--amqp-url", broker.url, "--queue", q.inbound]
    platform += ["--exchange", q.platform_exchange, "--routing-key", "receipts"]
    assert cli(ws, *platform) == 0
    customs = ["partner", "add", "customs", "--role", "customs", "--codes", "CUSTOMS"]
    customs += ["--transport", "amqp", "--amqp-url", broker.url]
    customs += ["--exchange", q.customs_exchange, "--routing-key", "declarations"]
    assert cli(ws, *customs) == 0
    assert cli(ws, "partner", "add", "inspection", "--role", "inspection", "--codes", "CIQ") == 0
    doc = config.read_document(ws)
    doc["delivery"]["backoff_seconds"] = 0.01
    doc["delivery"]["backoff_cap_seconds"] = 0.02
    # Retried fast, so never dead-lettered while the broker is away: a run --once on a slow
    # machine retries for longer than 10 attempts of 20 ms, and the copies waiting for the
    # broker must still be "retrying" when the test looks.
    doc["delivery"]["max_attempts"] = 100_000
    config.write_document(ws, doc)
    return ws


def signed_orders(keys, n: int, seed: int = 1) -> list[bytes]:
    return [
        to_bytes(order_message([p], DEMO_PARTIES, sign=keys["platform"].sign))
        for p in make_purchases(n, seed=seed)
    ]


def by_id(got) -> Counter:
    return Counter(props.message_id for props, _ in got)


def receipt_codes(got) -> Counter:
    return Counter(
        status.text
        for _, body in got
        for status in unwrap(body).iterfind("{*}OrderReturn/{*}returnStatus")
    )


def test_thousand_messages_consumed_and_answered_exactly_once(mq_ws, keys, broker, q):
    broker.publish(q.inbound, signed_orders(keys, 1000))
    Hub(mq_ws).run_once()

    assert counts(mq_ws) == {"messages": 1000, "accepted": 1000, "orders": 1000, "receipts": 2000}
    assert broker.count(q.inbound) == 0  # every message acknowledged
    answers = broker.drain(q.receipts)
    assert len(answers) == 1000 and set(by_id(answers).values()) == {1}  # 2 and 120 in one
    assert receipt_codes(answers) == {"2": 1000, "120": 1000}
    copies = broker.drain(q.customs)
    assert len(copies) == 1000 and set(by_id(copies).values()) == {1}
    assert len(files(mq_ws.outbox_of("inspection"))) == 1000
    assert len(files(mq_ws.archive / "platform", "*/*")) == 1000
    data = status(mq_ws)
    up = {a["name"]: a["up"] for a in data["adapters"]}
    assert up == {"amqp-in:platform": True, "amqp-out:platform": True, "amqp-out:customs": True}


def _cebhub(ws, *args, crash: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash:
        env[CRASH_ENV] = crash
    return subprocess.run(
        [CEBHUB, "-w", str(ws.root), *args], env=env, capture_output=True, timeout=120
    )


def test_hub_killed_between_consume_and_ack_no_second_effect(mq_ws, keys, broker, q):
    broker.publish(q.inbound, signed_orders(keys, 20))
    killed = _cebhub(mq_ws, "run", "--once", crash="after-commit")
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    dispose_all()
    # The first batch is what the broker had pushed by the first fetch: usually all 20, fewer
    # on a loaded machine. Whatever it was, it committed ...
    first_batch = counts(mq_ws)["accepted"]
    assert 1 <= first_batch <= 20
    assert broker.count(q.inbound) == 20  # ... but was never acknowledged: all back in the queue
    done = _cebhub(mq_ws, "run", "--once")
    assert done.returncode == 0, done.stderr.decode()[-2000:]

    dispose_all()
    assert counts(mq_ws) == {"messages": 20, "accepted": 20, "orders": 20, "receipts": 40}
    assert broker.count(q.inbound) == 0
    answers = broker.drain(q.receipts)
    assert receipt_codes(answers) == {"2": 20, "120": 20}  # no duplicate receipt either
    assert len(broker.drain(q.customs)) == 20


def test_broker_restarted_mid_run_nothing_lost(mq_ws, keys, broker, q):
    # A folder partner keeps sending while the broker is away: its copies for customs wait.
    shop = ["partner", "add", "shop", "--role", "platform", "--codes", PLATFORM_CODES]
    assert cli(mq_ws, *shop, "--cert", keys["platform"].cert_path) == 0
    broker.publish(q.inbound, signed_orders(keys, 10, seed=1))
    Hub(mq_ws).run_once()
    assert counts(mq_ws)["accepted"] == 10
    broker.publish(q.inbound, signed_orders(keys, 10, seed=2))  # persistent: survives the restart

    hub = Hub(mq_ws)
    with broker.stopped():
        for i, body in enumerate(signed_orders(keys, 5, seed=3)):
            (mq_ws.inbox_of("shop") / f"order-{i}.xml").write_bytes(body)
        hub.run_once()  # must neither hang nor fail
        data = status(mq_ws)
        down = {a["name"]: a for a in data["adapters"] if a["up"] is False}
        assert {"amqp-in:platform", "amqp-out:customs"} <= set(down)
        assert "127.0.0.1" in down["amqp-in:platform"]["last_error"]
        assert data["delivery_backlog"]["by_partner"]["customs"] == {"retrying": 5}
        assert counts(mq_ws)["accepted"] == 15
        assert len(files(mq_ws.outbox_of("shop"))) == 5  # folder partners were served

    hub.run_once()  # the same hub reconnects
    assert counts(mq_ws) == {"messages": 25, "accepted": 25, "orders": 25, "receipts": 50}
    assert broker.count(q.inbound) == 0
    copies = by_id(broker.drain(q.customs))
    assert len(copies) == 25 and set(copies.values()) == {1}
    assert receipt_codes(broker.drain(q.receipts)) == {"2": 20, "120": 20}
    engine = engine_for(config.load(mq_ws), mq_ws)
    with engine.connect() as conn:
        states = set(conn.execute(select(deliveries.c.state)).scalars())
    assert states == {DeliveryState.DELIVERED}
    assert all(a["up"] for a in status(mq_ws)["adapters"])
