"""Timed jobs inside `cebhub run` (APScheduler 3): SFTP polls, delivery retries, housekeeping, hooks.

APScheduler only keeps time. A job that comes due is queued and the main loop is woken; the
loop runs it between rounds, so jobs never race the pipeline for the sources or the database.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from hub.clock import as_utc, utcnow

log = logging.getLogger(__name__)

DELIVERY_JOB = "delivery-retry"

Job = Callable[[], Any]
Hook = Callable[[Any, "Scheduler"], None]  # (hub, scheduler): adds the module's jobs

_hooks: list[Hook] = []


def add_hook(hook: Hook) -> Hook:
    """Let another module add jobs to every hub's scheduler, e.g. the clearance wait sweep:

    @scheduler.add_hook
    def _jobs(hub, sched):
        sched.every("clearance-waits", 60, lambda: sweep(hub.engine, hub.router))
    """
    if hook not in _hooks:
        _hooks.append(hook)
    return hook


@dataclass
class _Spec:
    name: str
    func: Job
    seconds: float | None = None  # a repeating job
    when: datetime | None = None  # a one-off job


class Scheduler:
    """Jobs by name; APScheduler wakes the loop, `run_due()` runs what has come due."""

    def __init__(self, wakeup: threading.Event) -> None:
        self.wakeup = wakeup
        self._specs: dict[str, _Spec] = {}
        self._due: set[str] = set()
        self._lock = threading.Lock()
        self._aps: Any = None  # the BackgroundScheduler, once started

    # ------------------------------------------------------------ defining jobs

    def every(self, name: str, seconds: float, func: Job) -> None:
        """Run `func` every `seconds` (and once at the start, and once in `run --once`)."""
        self._specs[name] = _Spec(name, func, seconds=seconds)
        with self._lock:
            self._due.add(name)
        if self._aps is not None:
            self._add_interval(self._specs[name])

    def at(self, name: str, when: datetime, func: Job) -> None:
        """Run `func` once at `when` (naive: UTC, as SQLite hands stored times back); scheduling
        the same name again moves it."""
        when = as_utc(when)
        spec = self._specs[name] = _Spec(name, func, when=when)
        if self._aps is not None:
            self._add_date(spec)
        elif when <= utcnow():
            with self._lock:
                self._due.add(name)

    @property
    def running(self) -> bool:
        return self._aps is not None

    @property
    def names(self) -> list[str]:
        return sorted(self._specs)

    # ------------------------------------------------------------ running them

    def _mark(self, name: str) -> None:
        with self._lock:
            self._due.add(name)
        self.wakeup.set()

    def _add_date(self, spec: _Spec) -> None:
        from apscheduler.triggers.date import DateTrigger

        assert self._aps is not None and spec.when is not None
        self._aps.add_job(
            self._mark, DateTrigger(run_date=max(spec.when, utcnow())), args=[spec.name],
            id=spec.name, replace_existing=True, misfire_grace_time=None,
        )  # fmt: skip

    def _add_interval(self, spec: _Spec) -> None:
        from apscheduler.triggers.interval import IntervalTrigger

        assert self._aps is not None and spec.seconds is not None
        self._aps.add_job(
            self._mark, IntervalTrigger(seconds=spec.seconds), args=[spec.name], id=spec.name,
            replace_existing=True, coalesce=True, max_instances=1, misfire_grace_time=None,
        )  # fmt: skip

    def start(self) -> None:
        """Keep time in a background thread (for run_forever)."""
        if self._aps is not None:
            return
        # Imported here: `run --once` and the benchmark never pay for it.
        from apscheduler.schedulers.background import BackgroundScheduler

        self._aps = BackgroundScheduler(timezone="UTC", daemon=True)
        for spec in self._specs.values():
            if spec.seconds is not None:
                self._add_interval(spec)
            elif spec.when is not None and spec.name not in self._due:
                self._add_date(spec)
        self._aps.start()

    def shutdown(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None

    def run_due(self, *, every_job: bool = False) -> int:
        """Run the jobs that have come due (`every_job`: each repeating job once, due or not)."""
        with self._lock:
            names = set(self._specs) if every_job else self._due & set(self._specs)
            self._due -= names
        ran = 0
        for name in sorted(names):
            spec = self._specs[name]
            if spec.seconds is None:
                if spec.when is not None and spec.when > utcnow() and every_job:
                    continue  # a one-off that is not due yet is not "each due job"
                del self._specs[name]  # a one-off runs once
            try:
                spec.func()
                ran += 1
            except Exception:  # one job failing must not stop the others or the loop
                log.exception("scheduled job %s failed", name)
        return ran

    def install_hooks(self, hub: Any) -> None:
        for hook in _hooks:
            try:
                hook(hub, self)
            except Exception:
                log.exception("scheduler hook %r failed", hook)


# ---------------------------------------------------------------- housekeeping


def prune_archive(archive: Path, days: int, today: date | None = None) -> int:
    """Remove archive/<partner>/<YYYY-MM-DD>/ folders older than `days`; returns how many."""
    if days <= 0 or not archive.is_dir():
        return 0
    cutoff = (today or utcnow().date()) - timedelta(days=days)
    removed = 0
    for partner_dir in archive.iterdir():
        if not partner_dir.is_dir():
            continue
        for day_dir in partner_dir.iterdir():
            try:
                day = date.fromisoformat(day_dir.name)
            except ValueError:
                continue  # not one of ours: leave it
            if day < cutoff and day_dir.is_dir():
                shutil.rmtree(day_dir, ignore_errors=True)
                removed += 1
    if removed:
        log.info("housekeeping: removed %d archive folder(s) older than %d days", removed, days)
    return removed
