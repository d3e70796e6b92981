"""`cebhub run --workers N`: N hub processes over one workspace, the first serving the console."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

log = logging.getLogger(__name__)

WORKER_ENV = "CEBHUB_WORKER"  # the worker's index; only worker 0 serves the console


def is_console_worker() -> bool:
    return os.environ.get(WORKER_ENV, "0") == "0"


def run_workers(workspace: str, n: int, run_args: list[str]) -> int:
    """Start `n` workers, pass SIGTERM/SIGINT on to them, and wait; the worst exit code wins.

    Workers share the inbox by atomic-rename claims and the database by row locks
    (SKIP LOCKED on PostgreSQL); a worker that dies leaves its claims to the next start.
    """
    command = [sys.executable, "-c", "import sys; from hub.cli import main; sys.exit(main())"]
    procs = []
    for index in range(n):
        env = {**os.environ, WORKER_ENV: str(index)}
        procs.append(subprocess.Popen([*command, "-w", workspace, "run", *run_args], env=env))

    asked: set[int] = set()  # the signals passed on

    def forward(signum, _frame) -> None:
        asked.add(signum)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        codes = [p.wait() for p in procs]
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    # A worker still starting when it was asked to stop dies of the signal itself: a stop too.
    failed = [c for c in codes if c != 0 and -c not in asked]
    if failed:
        log.error("workers exited with %s", codes)
    return max(failed, key=abs) if failed else 0
