"""`cebhub run` and `cebhub submit`: the hub at work, and handing it a file."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from hub import gctune
from hub.cli.common import fail, settings, setup_logging, workspace


def cmd_run(args: argparse.Namespace) -> int:
    from hub.runner import Hub

    setup_logging(args.verbose, args.log_format)
    ws = workspace(args)
    if args.workers > 1:
        return _run_workers(ws, args)
    hub = Hub(ws, settings(ws))
    gctune.settle()
    if args.once:
        hub.run_once()
        return 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: (stop.set(), hub.wakeup.set()))
    hub.run_forever(stop)
    return 0


def _run_workers(ws, args: argparse.Namespace) -> int:
    from hub.store.db import database_url
    from hub.workers import run_workers

    if database_url(settings(ws), ws).startswith("sqlite"):
        print("cebhub: SQLite takes one writer at a time; --workers pays off on PostgreSQL",
              file=sys.stderr)  # fmt: skip
    passed = ["--once"] if args.once else []
    passed += ["-v"] if args.verbose else []
    passed += ["--log-format", args.log_format] if args.log_format else []
    return run_workers(str(ws.root), args.workers, passed)


def submit(ws_inbox: Path, source: Path) -> Path:
    """Put a file in a partner's inbox the way a partner should: temp name, then rename."""
    ws_inbox.mkdir(parents=True, exist_ok=True)
    target = ws_inbox / source.name
    n = 1
    while target.exists():
        target = ws_inbox / f"{source.stem}.{n}{source.suffix}"
        n += 1
    tmp = ws_inbox / f".{target.name}.tmp"
    with open(tmp, "wb") as f:
        f.write(source.read_bytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    return target


def cmd_submit(args: argparse.Namespace) -> int:
    ws = workspace(args)
    s = settings(ws)
    if args.sender not in s.partners:
        return fail(f"no partner {args.sender}; see `cebhub partner list`")
    for name in args.files:
        source = Path(name)
        if not source.is_file():
            return fail(f"{source}: no such file")
        print(submit(ws.inbox_of(args.sender), source))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run adapters, pipeline, delivery and console")
    p.add_argument("--once", action="store_true", help="process everything pending, then exit")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="run N worker processes over this workspace (PostgreSQL scales them out)",
    )  # fmt: skip
    p.add_argument(
        "--log-format", choices=["json", "text"],
        help="log lines as JSON (default when stderr is not a terminal) or text",
    )  # fmt: skip
    p.set_defaults(func=cmd_run)

    s = sub.add_parser("submit", help="hand files to the hub as if a partner dropped them")
    s.add_argument("files", nargs="+", metavar="FILE")
    s.add_argument("--from", dest="sender", required=True, metavar="ID", help="sending partner")
    s.set_defaults(func=cmd_submit)
