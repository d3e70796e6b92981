"""`cebhub validate FILE…`: check CEB messages and DxpMsg envelopes against our schemas."""

from __future__ import annotations

import argparse
from pathlib import Path

from hub.schemas import SCHEMA_SET_ID, diagnose


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "validate",
        help="check files against our CEB import and DXP schemas",
        description=(
            "Validate CEB messages, or DxpMsg envelopes and the CEB message in their Data, "
            f"against the hub's own schemas ({SCHEMA_SET_ID}). Prints OK or every error with "
            "its path and what was expected; exits 1 if any file is invalid."
        ),
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="XML file to check")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    results = [_check(path) for path in args.files]
    return 0 if all(results) else 1


def _check(path: Path) -> bool:
    """Print the verdict on one file; True if it is valid."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror or exc}")
        return False
    diagnostics = diagnose(data)
    if not diagnostics:
        print(f"{path}: OK")
        return True
    print(f"{path}: {len(diagnostics)} error{'s' if len(diagnostics) > 1 else ''}")
    for diagnostic in diagnostics:
        print(f"  {diagnostic}")
    return False
