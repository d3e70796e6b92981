"""Prometheus metrics of one hub process, and the backlog gauges computed at each scrape."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hub.logsetup import update_context

# Our own registry: the process-wide default one carries python/process collectors and,
# in tests, whatever another import registered; ours holds exactly the hub's series.
REGISTRY = CollectorRegistry(auto_describe=True)

MESSAGES = Counter(
    "cebhub_messages",
    "Inbound messages by CEB type and outcome (accepted, rejected, duplicate, redelivered).",
    ["type", "outcome"],
    registry=REGISTRY,
)
STAGE_SECONDS = Histogram(
    "cebhub_stage_seconds",
    "Pipeline stage latency: parse, verify and validate per message; apply per batch.",
    ["stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "cebhub_delivery_attempts",
    "Delivery attempts by result: delivered, retry (failed, will be tried again), dead.",
    ["result"],
    registry=REGISTRY,
)
LIST_MOVES = Counter(
    "cebhub_list_transitions",
    "Declaration list moves by the state reached and the review reason code (R1…R5, L1, L2, M1).",
    ["to_state", "reason"],
    registry=REGISTRY,
)


_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, looked up once: the hub counts several times a message, and
    prometheus_client validates and hashes the labels on every call (the child is the same)."""
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def observe_stage(name: str, seconds: float) -> None:
    _child(STAGE_SECONDS, name).observe(seconds)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time a pipeline stage; the log context names the stage while it runs."""
    update_context(stage=name)
    start = time.perf_counter()
    try:
        yield
    finally:
        if _kept is not None:
            _kept.append((name, time.perf_counter() - start))
        else:
            observe_stage(name, time.perf_counter() - start)


_kept: list[tuple[str, float]] | None = None  # stage times a checker process hands back


@contextmanager
def keep_stage_seconds(into: list[tuple[str, float]]) -> Iterator[None]:
    """Stage times go to `into` instead of this process's histogram (which nobody scrapes)."""
    global _kept
    _kept = into
    try:
        yield
    finally:
        _kept = None


def count_messages(dispositions: Iterable[Any]) -> None:
    """Count committed outcomes (pipeline Disposition objects)."""
    for d in dispositions:
        _child(MESSAGES, d.inbound.type_name, str(d.state)).inc()


def delivery(result: str, n: int = 1) -> None:
    if n:
        _child(DELIVERIES, result).inc(n)


def list_moved(to_state: str, reason_code: str | None) -> None:
    _child(LIST_MOVES, str(to_state), reason_code or "").inc()


def lists_moved(moves: Iterable[tuple[str, str | None]]) -> None:
    """`list_moved` for each (state, reason code)."""
    for to_state, reason_code in moves:
        list_moved(to_state, reason_code)


# ---------------------------------------------------------------- computed at scrape


class BacklogCollector(Collector):
    """Folder depths and ages, deliveries and lists by state, read when Prometheus scrapes."""

    def __init__(self, ws, settings, engine) -> None:
        self.ws, self.settings, self.engine = ws, settings, engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from sqlalchemy import func, select

        from hub.clearance.tables import lists
        from hub.status import folder_backlog
        from hub.store.tables import deliveries

        files = GaugeMetricFamily(
            "cebhub_queue_files", "Files waiting per partner folder.", labels=["partner", "folder"]
        )
        oldest = GaugeMetricFamily(
            "cebhub_queue_oldest_seconds",
            "Age of the oldest file waiting per partner folder (0 when empty).",
            labels=["partner", "folder"],
        )
        for pid in self.settings.partners:
            for folder, path in (
                ("inbox", self.ws.inbox_of(pid)),
                ("outbox", self.ws.outbox_of(pid)),
                ("claims", self.ws.claims / pid),
                ("quarantine", self.ws.quarantine / pid),
            ):
                b = folder_backlog(path)
                n = b["files"]
                if folder == "quarantine":  # each file has its .reason.txt beside it
                    n = sum(1 for p in path.glob("*") if not p.name.endswith(".reason.txt"))
                files.add_metric([pid, folder], n)
                oldest.add_metric([pid, folder], b["oldest_age_seconds"] or 0.0)
        yield files
        yield oldest
        dq = GaugeMetricFamily(
            "cebhub_deliveries", "Deliveries by state and partner.", labels=["state", "partner"]
        )
        age = GaugeMetricFamily(
            "cebhub_delivery_oldest_pending_seconds",
            "Age of the oldest pending delivery (0 when none).",
        )
        ls = GaugeMetricFamily("cebhub_lists", "Declaration lists by state.", labels=["state"])
        with self.engine.connect() as conn:
            c = deliveries.c
            for state, partner, n in conn.execute(
                select(c.state, c.partner_id, func.count()).group_by(c.state, c.partner_id)
            ):
                dq.add_metric([str(state), partner], n)
            first = conn.execute(
                select(func.min(c.created_at)).where(c.state == "pending")
            ).scalar()
            for state, n in conn.execute(
                select(lists.c.state, func.count()).group_by(lists.c.state)
            ):
                ls.add_metric([str(state)], n)
        age.add_metric([], _age(first))
        yield dq
        yield age
        yield ls


def _age(when) -> float:
    if when is None:
        return 0.0
    from hub.clock import as_utc, utcnow

    return max(0.0, (utcnow() - as_utc(when)).total_seconds())


def exposition(ws=None, settings=None, engine=None) -> bytes:
    """The Prometheus text: this process's counters, then the backlog read now."""
    body = generate_latest(REGISTRY)
    if engine is not None:
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(BacklogCollector(ws, settings, engine))
        body += generate_latest(scrape)
    return body
