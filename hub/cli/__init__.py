"""The `cebhub` command line: one module per command group, each with a `register`."""

from __future__ import annotations

import argparse
import importlib
import sys

from hub import __version__
from hub.errors import ConfigError

# Each module has `register(subparsers)`; its commands set `func(args) -> int`.
COMMAND_MODULES = (
    "hub.cli.workspace_cmd",
    "hub.cli.partner_cmd",
    "hub.cli.run_cmd",
    "hub.cli.status_cmd",
    "hub.cli.delivery_cmd",
    "hub.cli.keys_cmd",
    "hub.cli.validate_cmd",
    "hub.cli.bench_cmd",
    "hub.cli.user_cmd",
    "hub.cli.clearance_cmd",
    "hub.cli.devtools_cmd",
    "hub.cli.demo_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cebhub",
        description="The single window for cross-border e-commerce import clearance.",
    )
    parser.add_argument("--version", action="version", version=f"cebhub {__version__}")
    parser.add_argument(
        "-w",
        "--workspace",
        metavar="DIR",
        help="workspace directory (default: $CEBHUB_HOME, else the current directory)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"cebhub: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
