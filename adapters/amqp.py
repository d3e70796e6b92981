"""AMQP (RabbitMQ) transport: consume a partner's queue with late acks, publish with confirms."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pika
import pika.exceptions as px
from pika.adapters.blocking_connection import BlockingChannel

from adapters.directory import display_name, safe_name
from hub.clock import utcnow
from hub.config import AmqpSettings
from hub.delivery.worker import TransportError
from hub.workspace import Workspace

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0  # seconds for TCP connect and the AMQP handshake, unless the URL says
BLOCKED_TIMEOUT = 30.0  # a broker in flow control (memory/disk alarm) fails a publish after this
MAX_MESSAGE_ID = 64  # characters of a partner's message_id kept in a claim id
CONTENT_TYPE = "application/xml"
PERSISTENT = 2  # AMQP delivery mode: written to disk by the broker
ACCESS_REFUSED = 403  # AMQP reply code: a permission problem, fixed by a person, not by waiting
POLL_SLICE = 0.05  # seconds one wait for the broker blocks, so `wait` is honoured closely


class AmqpError(TransportError):
    """The broker could not be used; `retryable` is False only for refused credentials."""


def redact(url: str) -> str:
    """The broker URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def connection_parameters(url: str, name: str = "cebhub") -> pika.URLParameters:
    """pika parameters from the partner's URL, with timeouts that fail fast when it is down."""
    params = pika.URLParameters(url)
    query = urlsplit(url).query
    # An outage is retried by our own loop and backoff, not by pika sleeping inside a round.
    if "connection_attempts" not in query:
        params.connection_attempts = 1
    if "socket_timeout" not in query:
        params.socket_timeout = CONNECT_TIMEOUT
    if "blocked_connection_timeout" not in query:
        params.blocked_connection_timeout = BLOCKED_TIMEOUT
    params.client_properties = {"connection_name": name}  # shown by rabbitmqctl and the UI
    return params


def _error(what: str, url: str, exc: BaseException) -> AmqpError:
    refused = isinstance(
        exc,
        px.ProbableAuthenticationError | px.AuthenticationError | px.ProbableAccessDeniedError,
    ) or (isinstance(exc, px.ChannelClosedByBroker) and exc.reply_code == ACCESS_REFUSED)
    detail = str(exc) or type(exc).__name__
    return AmqpError(
        f"{what} on {redact(url)}: {type(exc).__name__}: {detail}", retryable=not refused
    )


def claim_id(partner_id: str, message_id: str | None, body: bytes) -> str:
    """Deterministic: a redelivery of the same message gets the same claim id.

    The body hash is part of it even with a message_id, so a partner that reuses a message_id
    for different contents loses nothing; the same contents under a new message_id (a re-send)
    is a new claim and gets the pipeline's duplicate receipt.
    """
    digest = hashlib.sha256(body).hexdigest()
    if message_id:
        return f"amqp-{partner_id}-{safe_name(message_id)[:MAX_MESSAGE_ID]}-{digest[:16]}"
    return f"amqp-{partner_id}-{digest}"


@dataclass(frozen=True)
class AmqpClaim:
    """A message taken from a partner's queue and not yet acknowledged."""

    partner_id: str
    claim: str  # deterministic id, stored as Inbound.claim: a redelivery is recognised by it
    body: bytes
    delivery_tag: int
    message_id: str | None
    redelivered: bool
    received_at: datetime
    generation: int = field(repr=False)  # the connection it came on; tags die with it

    @property
    def name(self) -> str:
        return self.claim

    @property
    def original_name(self) -> str:
        """What the partner knows it by, for Inbound.file_name."""
        return display_name(self.message_id) if self.message_id else self.claim

    @property
    def size(self) -> int:
        return len(self.body)


class AmqpInbox:
    """Consumes one partner's queue; messages are acknowledged only after the commit."""

    def __init__(
        self, partner_id: str, settings: AmqpSettings, ws: Workspace | None = None
    ) -> None:
        """With `ws`, archive() and quarantine() keep a copy as the directory inbox does."""
        if not settings.queue:
            raise ValueError(f"partner {partner_id}: amqp.queue is not set")
        self.partner_id = partner_id
        self.settings = settings
        self.queue = settings.queue
        self.ws = ws
        self.last_error: str | None = None  # for `cebhub status`
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._generation = 0
        self._buffer: deque[AmqpClaim] = deque()

    # ------------------------------------------------------------ connection

    def _connect(self) -> BlockingChannel:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self._drop()
        url = self.settings.url
        try:
            self._connection = pika.BlockingConnection(
                connection_parameters(url, f"cebhub {self.partner_id} in")
            )
            channel = self._connection.channel()
            # passive=True asks only whether it exists: a missing queue is an error to report
            channel.queue_declare(self.queue, durable=True, passive=not self.settings.declare)
            channel.basic_qos(prefetch_count=self.settings.prefetch)
            channel.basic_consume(self.queue, self._on_message, auto_ack=False)
        except (px.AMQPError, OSError) as exc:
            self._drop()
            raise self._failed(f"consuming queue {self.queue!r}", exc) from exc
        self._generation += 1
        self._channel = channel
        self.last_error = None
        return channel

    def _failed(self, what: str, exc: BaseException) -> AmqpError:
        error = _error(what, self.settings.url, exc)
        self.last_error = str(error)
        return error

    def _drop(self) -> None:
        """Forget the connection; what it delivered and we did not ack comes back redelivered."""
        connection, self._connection, self._channel = self._connection, None, None
        self._buffer.clear()
        _close(connection)

    def _on_message(self, channel, method, props, body: bytes) -> None:
        message_id = props.message_id or None
        self._buffer.append(
            AmqpClaim(
                partner_id=self.partner_id,
                claim=claim_id(self.partner_id, message_id, body),
                body=body,
                delivery_tag=method.delivery_tag,
                message_id=message_id,
                redelivered=bool(method.redelivered),
                received_at=utcnow(),
                generation=self._generation,
            )
        )

    # ------------------------------------------------------------ consuming

    def fetch(self, limit: int, *, wait: float = 0.0) -> list[AmqpClaim]:
        """Up to `limit` messages the broker has sent; waits up to `wait` s for the first one.

        At most `prefetch` messages are unacknowledged at a time, so a batch is never larger.
        Raises AmqpError (retryable) when the broker cannot be reached; the next call reconnects.
        """
        deadline = time.monotonic() + wait
        for attempt in (1, 2):
            fresh = self._channel is None or not self._channel.is_open
            self._connect()
            try:
                self._receive(limit, deadline)
            except (px.AMQPError, OSError) as exc:
                self._drop()
                # A connection closed under us since the last round (heartbeat, broker
                # closing idle connections) gets one fresh try before it counts as an outage.
                if attempt == 1 and not fresh and _connection_lost(exc):
                    continue
                raise self._failed(f"consuming queue {self.queue!r}", exc) from exc
            break
        return [self._buffer.popleft() for _ in range(min(limit, len(self._buffer)))]

    def buffered(self) -> int:
        """Messages received from the broker and not yet fetched."""
        return len(self._buffer)

    def _receive(self, limit: int, deadline: float) -> None:
        assert self._connection is not None
        while len(self._buffer) < limit:
            before = len(self._buffer)
            self._connection.process_data_events(time_limit=0)
            if len(self._buffer) > before:
                continue  # more may be waiting in the socket
            remaining = deadline - time.monotonic()
            if self._buffer or remaining <= 0:
                return
            self._connection.process_data_events(time_limit=min(remaining, POLL_SLICE))

    def ack(self, claims: Iterable[AmqpClaim]) -> int:
        """Acknowledge messages whose transaction has committed; returns how many were acked.

        A claim from a connection that has since gone is skipped: the broker has already put
        it back, and its redelivery carries the same claim id. A failure here is logged, not
        raised, for the same reason.
        """
        acked = 0
        for claim in claims:
            channel = self._channel
            if channel is None or claim.generation != self._generation:
                continue
            try:
                channel.basic_ack(delivery_tag=claim.delivery_tag)
            except (px.AMQPError, OSError) as exc:
                log.warning("%s", self._failed(f"acknowledging on queue {self.queue!r}", exc))
                self._drop()
                continue
            acked += 1
        return acked

    # ------------------------------------------------------------ after the commit

    def archive(self, claim: AmqpClaim) -> Path | None:
        """Keep a copy in archive/<partner>/<day>/ (with a workspace), then acknowledge."""
        dst = None
        if self.ws is not None:
            folder = self.ws.archive / self.partner_id / utcnow().strftime("%Y-%m-%d")
            folder.mkdir(parents=True, exist_ok=True)
            dst = folder / f"{claim.claim}.xml"
            dst.write_bytes(claim.body)  # a convenience copy: the database holds the message
        self.ack([claim])
        return dst

    def quarantine(self, claim: AmqpClaim, reason: str) -> Path | None:
        """Keep the rejected message and its reason in quarantine/<partner>/, then acknowledge."""
        dst = None
        if self.ws is not None:
            folder = self.ws.quarantine / self.partner_id
            folder.mkdir(parents=True, exist_ok=True)
            dst = folder / f"{claim.claim}.xml"
            note = folder / f"{claim.claim}.xml.reason.txt"
            note.write_text(
                f"message_id: {claim.original_name}\npartner: {claim.partner_id}\n"
                f"queue: {self.queue}\nreceived: {claim.received_at.isoformat()}\n"
                f"reason: {reason}\n",
                encoding="utf-8",
            )
            # the database keeps no body for a rejected message: this copy must survive the ack
            with open(dst, "wb") as f:
                f.write(claim.body)
                f.flush()
                os.fsync(f.fileno())
        self.ack([claim])
        return dst

    def close(self) -> None:
        """Disconnect; unacknowledged messages go back to the queue."""
        self._drop()


class AmqpOutbox:
    """A delivery Sink: publishes to one partner's exchange and returns only once confirmed."""

    def __init__(self, partner_id: str, settings: AmqpSettings) -> None:
        self.partner_id = partner_id
        self.settings = settings
        self.exchange = settings.exchange
        self.routing_key = settings.routing_key or ""
        self.last_error: str | None = None
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    def _connect(self) -> BlockingChannel:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self._drop()
        try:
            self._connection = pika.BlockingConnection(
                connection_parameters(self.settings.url, f"cebhub {self.partner_id} out")
            )
            channel = self._connection.channel()
            channel.confirm_delivery()
        except (px.AMQPError, OSError) as exc:
            self._drop()
            raise self._failed("connecting", exc) from exc
        self._channel = channel
        return channel

    def _drop(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        _close(connection)

    def _failed(self, what: str, exc: BaseException) -> AmqpError:
        error = _error(what, self.settings.url, exc)
        self.last_error = str(error)
        return error

    def _target(self) -> str:
        return f"exchange {self.exchange or '(default)'!r} key {self.routing_key!r}"

    def deliver(self, partner_id: str, file_name: str, body: bytes) -> None:
        """Publish persistently and wait for the broker's confirm; raises retryable AmqpError.

        The message_id is the guid from `<MsgType>_<guid>.xml`, so the partner can drop a
        second copy: a publish whose confirm was lost is sent again (at-least-once).
        """
        stem = Path(file_name).stem
        msg_type, _, guid = stem.partition("_")
        props = pika.BasicProperties(
            message_id=guid or stem,
            type=msg_type if guid else None,
            content_type=CONTENT_TYPE,
            delivery_mode=PERSISTENT,
            timestamp=int(time.time()),
            app_id="cebhub",
            headers={"file_name": file_name},
        )
        for attempt in (1, 2):
            fresh = self._channel is None or not self._channel.is_open
            channel = self._connect()
            try:
                # mandatory: a message no queue takes comes back as UnroutableError, not lost
                channel.basic_publish(self.exchange, self.routing_key, body, props, mandatory=True)
            except px.UnroutableError as exc:
                raise self._unroutable(exc) from exc
            except px.NackError as exc:
                raise self._failed(f"publishing to {self._target()} (nacked)", exc) from exc
            except (px.AMQPError, OSError) as exc:
                self._drop()
                # A connection idle since the last round may have been closed under us
                # (heartbeat); one fresh attempt tells that apart from an outage.
                if attempt == 1 and not fresh and _connection_lost(exc):
                    log.info("AMQP connection to %s was gone; reconnecting", self.partner_id)
                    continue
                raise self._failed(f"publishing to {self._target()}", exc) from exc
            self.last_error = None
            return

    def _unroutable(self, exc: px.UnroutableError) -> AmqpError:
        error = AmqpError(
            f"no queue on {redact(self.settings.url)} takes {self._target()} (unroutable)",
            retryable=True,
        )
        self.last_error = str(error)
        return error

    def flush(self) -> None:
        """Nothing to do: every publish was confirmed before deliver() returned."""

    def close(self) -> None:
        self._drop()


def _close(connection: pika.BlockingConnection | None) -> None:
    if connection is not None and connection.is_open:
        with contextlib.suppress(px.AMQPError, OSError):  # it is going away either way
            connection.close()


def _connection_lost(exc: BaseException) -> bool:
    return isinstance(exc, px.AMQPConnectionError | px.ConnectionClosed | OSError)


def inboxes_for(partners: Iterable, ws: Workspace | None = None) -> dict[str, AmqpInbox]:
    """An AmqpInbox per AMQP partner that has an inbound queue (config Partner objects)."""
    return {
        p.id: AmqpInbox(p.id, p.amqp, ws)
        for p in partners
        if p.transport == "amqp" and p.amqp is not None and p.amqp.queue
    }


def outboxes_for(partners: Iterable) -> dict[str, AmqpOutbox]:
    """A delivery Sink per AMQP partner, for deliver_due's `sinks` mapping."""
    return {
        p.id: AmqpOutbox(p.id, p.amqp)
        for p in partners
        if p.transport == "amqp" and p.amqp is not None
    }
