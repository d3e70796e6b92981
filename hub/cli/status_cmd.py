"""`cebhub status`: backlog and age per folder and state, failed deliveries, quarantine."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from hub.cli.common import print_json, settings, workspace
from hub.status import age_text, collect
from hub.store.db import engine_for


def cmd_status(args: argparse.Namespace) -> int:
    ws = workspace(args)
    s = settings(ws)
    data = collect(ws, s, engine_for(s, ws))
    if args.json:
        print_json(data)
        return 0
    console = Console()
    folders = Table(title="Folders")
    for col in ("partner", "role", "transport", "inbox", "oldest", "outbox", "oldest ", "claims"):
        folders.add_column(col)
    for pid, p in data["partners"].items():
        folders.add_row(
            pid, p["role"], p["transport"],
            str(p["inbox"]["files"]), age_text(p["inbox"]["oldest_age_seconds"]),
            str(p["outbox"]["files"]), age_text(p["outbox"]["oldest_age_seconds"]),
            str(p["claims"]["files"]),
        )  # fmt: skip
    console.print(folders)
    states = Table(title="Work")
    states.add_column("what")
    states.add_column("state")
    states.add_column("count", justify="right")
    for state, n in sorted(data["messages"].items()):
        states.add_row("messages", state, str(n))
    for state, n in sorted(data["deliveries"].items()):
        states.add_row("deliveries", state, str(n))
    backlog = data["delivery_backlog"]
    for state in ("pending", "retrying", "dead"):
        states.add_row("delivery backlog", state, str(backlog[state]))
    for state, n in sorted(data["lists"].items()):
        states.add_row("lists", state, str(n))
    states.add_row("quarantine", "files", str(data["quarantine"]["files"]))
    for top in data["quarantine"]["top_reasons"]:
        states.add_row("quarantine", top["reason"], str(top["files"]))
    console.print(states)
    if data["certificates_expiring"]:
        certs = Table(title="Certificates expiring within 30 days")
        for col in ("partner", "key name", "not after", "successor"):
            certs.add_column(col)
        for c in data["certificates_expiring"]:
            if "error" in c:
                certs.add_row(c["partner"], "-", "-", c["error"])
                continue
            left = "EXPIRED" if c["expired"] else f"{c['days_left']} days"
            after = f"{c['not_after'][:10]} ({left})"
            certs.add_row(c["partner"], c["key_name"], after, c["successor_key_name"] or "NONE")
        console.print(certs)
    if data["adapters"]:
        adapters = Table(title="Transports")
        for col in ("adapter", "state", "since", "last error"):
            adapters.add_column(col, overflow="fold")
        for a in data["adapters"]:
            state = {True: "up", False: "DOWN", None: "not tried"}[a["up"]]
            adapters.add_row(a["name"], state, a.get("since") or "-", a.get("last_error") or "")
        console.print(adapters)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="backlog and age per folder and state")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)
