"""`cebhub demo`: demo partners, users and a day of signed traffic, processed."""

from __future__ import annotations

import argparse

from hub.cli.common import fail, workspace


def cmd_demo(args: argparse.Namespace) -> int:
    from hub.demo import run_demo

    ws = workspace(args)
    if not ws.is_initialised():
        return fail(f"{ws.root} is not a workspace; run `cebhub init` first")
    if args.purchases < 20:
        return fail("--purchases: at least 20, so that every case has its purchase")
    report = run_demo(
        ws, args.purchases, args.seed, password=args.password, progress=not args.quiet
    )
    print(f"demo: {report.purchases} purchases in {report.files} files (seed {report.seed})")
    if report.partners_added:
        print(f"  partners added: {', '.join(report.partners_added)} (keys in keys/demo/)")
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(report.kinds.items()))
    print(f"  cases: {kinds}")
    states = ", ".join(f"{k} {n}" for k, n in report.lists_by_state.items())
    print(f"  lists now: {states}")
    if report.users_added:
        print(f"  console users {', '.join(report.users_added)}, password: {report.password}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="demo partners, users and a day of signed traffic")
    p.add_argument("--purchases", type=int, default=200, help="purchases to make (default 200)")
    p.add_argument("--seed", type=int, help="the same seed gives the same purchases")
    p.add_argument("--password", help="password of the demo console users (default: random)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)
