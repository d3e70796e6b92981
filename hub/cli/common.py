"""Helpers the command modules share: the workspace, its settings, printing."""

from __future__ import annotations

import argparse
import json
import logging
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


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


def fail(message: str) -> int:
    print(f"cebhub: {message}", file=sys.stderr)
    return 1
