"""`cebhub crash-test`: kill a real hub again and again while it works, then check nothing was lost."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from hub.cli.common import fail, print_json


def _text(r: dict) -> str:
    points = ", ".join(f"{k} {v}" for k, v in sorted(r["kills_at_point"].items())) or "none"
    lines = [
        f"cebhub crash-test: seed {r['seed']}, {r['messages']} files "
        f"({r['purchases']} purchases{', with lists' if r['lists'] else ''})",
        f"  kills           {r['kills']} over {r['cycles']} runs "
        f"({r['kills_random']} at random times, the rest at crash points)",
        f"  at points       {points}",
        f"  points missed   {r['points_not_reached']} (killed at a random time instead)",
        f"  took            {r['seconds']} s",
        f"  invariants      {'all hold' if r['ok'] else 'BROKEN'}",
    ]
    lines += [f"  exit: {e}" for e in r["unexpected_exits"]]
    lines += [f"  violation: {v}" for v in r["violations"][:50]]
    if len(r["violations"]) > 50:
        lines.append(f"  … and {len(r['violations']) - 50} more")
    lines += [f"  note: {n}" for n in r["notes"]]
    return "\n".join(lines)


def cmd_crash_test(args: argparse.Namespace) -> int:
    from hub.devtools.crash import run_harness

    if args.messages < 1 or args.kills < 0:
        return fail("--messages must be at least 1 and --kills at least 0")
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cebhub-crash-"))
    root.mkdir(parents=True, exist_ok=True)
    progress = None if args.json else (lambda m: print(m, file=sys.stderr))
    try:
        report = run_harness(
            root, messages=args.messages, kills=args.kills, seed=args.seed, progress=progress
        )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    result = report.as_dict()
    if args.json:
        print_json(result)
    else:
        print(_text(result))
    return 0 if report.ok else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "crash-test",
        help="developer tool: SIGKILL `cebhub run` at random and at every crash point, then check",
    )
    p.add_argument("--messages", type=int, default=400, metavar="N", help="files (default 400)")
    p.add_argument("--kills", type=int, default=24, metavar="K", help="killed runs (default 24)")
    p.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default 1)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--keep", metavar="DIR", help="build the workspace in DIR and keep it")
    p.set_defaults(func=cmd_crash_test)
