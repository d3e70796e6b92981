"""Test helpers for the real RabbitMQ on loopback: reachability, throwaway queues, stop/start."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pika
import pika.exceptions as px
import pytest

URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
START_HINT = (
    "RabbitMQ is not reachable on 127.0.0.1:5672 (guest/guest): start it with "
    "`rabbitmq-server -detached` (.ci/run does this). Not skipped: a skip would hide a gap."
)
RESTART_WAIT = 60.0  # seconds the broker may take to accept connections after start_app


def connect() -> pika.BlockingConnection:
    params = pika.URLParameters(URL)
    params.connection_attempts = 1
    params.socket_timeout = 5
    return pika.BlockingConnection(params)


def reachable(wait: float = 0.0) -> bool:
    """Whether the broker accepts a connection, trying for up to `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            connect().close()
        except (px.AMQPError, OSError):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        else:
            return True


CTL = ("rabbitmqctl", "-q")
LOCK_FILE = os.path.join(tempfile.gettempdir(), "cebhub-test-rabbitmq.lock")
REACH_WAIT = 15.0  # seconds a broker that is (re)starting gets before the fixture fails


def rabbitmqctl(*args: str) -> None:
    subprocess.run([*CTL, *args], check=True, capture_output=True, timeout=120)


def close_connections(name: str) -> int:
    """Close, from the broker's side, the client connections named `name`; returns how many."""
    listing = subprocess.run(
        [*CTL, "list_connections", "--no-table-headers", "pid", "client_properties"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    tag = '{"connection_name",' + json.dumps(name) + "}"  # as rabbitmqctl prints the property
    pids = [line.split("\t", 1)[0] for line in listing.splitlines() if tag in line]
    for pid in pids:
        rabbitmqctl("close_connection", pid, "closed by the test")
    return len(pids)


@contextlib.contextmanager
def shared_use() -> Iterator[int]:
    """Hold the broker for a test; several test runs at once share it (a lock file).

    A test that stops the broker takes the lock exclusively (broker_stopped), so it never
    pulls the broker from under a test of another run going on at the same time.
    """
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield fd
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def broker_stopped(lock_fd: int) -> Iterator[None]:
    """The RabbitMQ application stopped (the Erlang node stays up), started again on exit."""
    fcntl.flock(lock_fd, fcntl.LOCK_EX)  # waits for other runs' tests to finish with it
    rabbitmqctl("stop_app")
    try:
        yield
    finally:
        rabbitmqctl("start_app")
        if not reachable(RESTART_WAIT):
            raise RuntimeError("RabbitMQ did not come back after start_app")
        fcntl.flock(lock_fd, fcntl.LOCK_SH)


@dataclass
class Broker:
    """The test's view of the broker: unique queue names, deleted when the test ends."""

    lock_fd: int
    url: str = URL
    queues: list[str] = field(default_factory=list)
    exchanges: list[str] = field(default_factory=list)

    def stopped(self) -> contextlib.AbstractContextManager[None]:
        return broker_stopped(self.lock_fd)

    def name(self, prefix: str) -> str:
        return f"cebhub-test-{prefix}-{secrets.token_hex(4)}"

    def queue(self, prefix: str = "q") -> str:
        """A new durable queue."""
        name = self.name(prefix)
        self.queues.append(name)
        with contextlib.closing(connect()) as conn:
            conn.channel().queue_declare(name, durable=True)
        return name

    def exchange(self, prefix: str = "x", bound_to: str | None = None, key: str = "") -> str:
        """A new durable direct exchange, bound to a queue with `key` if given."""
        name = self.name(prefix)
        self.exchanges.append(name)
        with contextlib.closing(connect()) as conn:
            ch = conn.channel()
            ch.exchange_declare(name, "direct", durable=True)
            if bound_to:
                ch.queue_bind(bound_to, name, routing_key=key)
        return name

    def publish(self, queue: str, bodies: list[bytes], *, message_ids: bool = True) -> None:
        """Persistent messages straight into `queue`, confirmed, as a partner would send them."""
        with contextlib.closing(connect()) as conn:
            ch = conn.channel()
            ch.confirm_delivery()
            for i, body in enumerate(bodies):
                props = pika.BasicProperties(
                    delivery_mode=2, message_id=f"m-{i:05d}" if message_ids else None
                )
                ch.basic_publish("", queue, body, props, mandatory=True)

    def count(self, queue: str) -> int:
        """Messages ready in the queue (unacknowledged ones are not counted)."""
        with contextlib.closing(connect()) as conn:
            return conn.channel().queue_declare(queue, passive=True).method.message_count

    def drain(self, queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
        """Every message in the queue, taken and acknowledged."""
        out = []
        with contextlib.closing(connect()) as conn:
            ch = conn.channel()
            while True:
                method, props, body = ch.basic_get(queue, auto_ack=True)
                if method is None:
                    return out
                out.append((props, body))

    def cleanup(self) -> None:
        with contextlib.closing(connect()) as conn:
            ch = conn.channel()
            for name in self.queues:
                ch.queue_delete(name)
            for name in self.exchanges:
                ch.exchange_delete(name)


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A reachable broker, shared with other tests unless one of them stops it."""
    with shared_use() as lock_fd:
        if not reachable(REACH_WAIT):
            pytest.fail(START_HINT, pytrace=False)
        b = Broker(lock_fd)
        yield b
        b.cleanup()
