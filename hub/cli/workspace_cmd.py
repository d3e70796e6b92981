"""`cebhub init`: a new workspace with its folders, configuration, hub key and database."""

from __future__ import annotations

import argparse

from hub import config
from hub.signing import ensure_hub_key
from hub.store.db import engine_for
from hub.workspace import Workspace

FOLDERS = ("config", "inbox", "outbox", "archive", "quarantine", "claims", "keys")


def init_workspace(ws: Workspace) -> bool:
    """Make what is missing; never overwrites an existing configuration. True if new."""
    for name in FOLDERS:
        (ws.root / name).mkdir(parents=True, exist_ok=True)
    created = not ws.config_file.exists()
    if created:
        config.write_document(ws, config.default_document())
    ensure_hub_key(ws)
    engine_for(config.load(ws), ws)  # creates and migrates the database
    return created


def cmd_init(args: argparse.Namespace) -> int:
    ws = Workspace.locate(args.dir or args.workspace)
    created = init_workspace(ws)
    state = "initialised" if created else "already initialised (configuration kept)"
    print(f"workspace {ws.root} {state}")
    print(f"  configuration: {ws.config_file}")
    print(f"  hub certificate: {ws.keys / 'hub.cert.pem'}  (give it to partners)")
    print("  next: cebhub partner add ID --role R --codes C --cert PEM")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="make a new workspace (folders, hub.toml, hub key, database)")
    p.add_argument("dir", nargs="?", help="workspace directory (default: -w, $CEBHUB_HOME or .)")
    p.set_defaults(func=cmd_init)
