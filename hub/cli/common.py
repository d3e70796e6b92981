"""Helpers the command modules share: the workspace, its settings, printing."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hub import config
from hub.config import Settings
from hub.workspace import Workspace


def workspace(args: argparse.Namespace) -> Workspace:
    return Workspace.locate(getattr(args, "workspace", None))


def settings(ws: Workspace) -> Settings:
    return config.load(ws)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


def setup_logging(verbose: bool = False, fmt: str | None = None) -> None:
    """JSON lines (default when stderr is not a terminal) or text; see hub.logsetup."""
    from hub import logsetup

    logsetup.setup(verbose, fmt)


def fail(message: str) -> int:
    print(f"cebhub: {message}", file=sys.stderr)
    return 1
