"""`cebhub bench`: generate, drop and process signed messages; report throughput and the floor."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hub.cli.common import fail, print_json


def _text(r: dict) -> str:
    lat, floor = r["latency_ms"], r["floor"]
    stages = ", ".join(f"{k} {v:.0f}" for k, v in floor["micros_per_message"].items())
    m = r["machine"]
    lines = [
        f"cebhub bench: {r['messages']} messages ({', '.join(r['mix'])}), "
        f"{r['database']}, {r['workers']} worker(s), batch {r['batch_size']}, "
        f"{r['check_processes']} checker process(es), "
        f"{'a' if r['write_process'] else 'no'} file-writer process"
        + (f", dropped at {r['rate']:g}/s into `cebhub run`" if r.get("rate") else ""),
        f"  answered        {r['answered']} of {r['messages']}  states {r['states']}",
        f"  end to end      {r['messages_per_second']:.0f} msg/s  "
        f"({r['hub_seconds']:.2f} s drop to last receipt)",
        f"  latency         p50 {lat['p50']:.0f} ms  p95 {lat['p95']:.0f} ms  p99 {lat['p99']:.0f} ms",
        f"  peak RSS        {r['peak_rss_mb']:.0f} MB",
        f"  hub CPU         {r['cpu_us_per_message']} µs/message (all its processes)",
        f"  floor           {floor['messages_per_second']:.0f} msg/s  (µs/message: {stages})",
        f"  hub / floor     {r['ratio']}",
        f"  machine         {m['nproc']} × {m['cpu']}, {m['memory_gb']} GB, Python {m['python']}, "
        f"SQLite {m['sqlite']}, lxml {m['lxml']}",
        f"  file create     {m.get('file_create_us', 0):.0f} µs in the outbox's filesystem "
        "(every receipt and copy is a file)",
    ]
    if r["workspace"]:
        lines.append(f"  workspace kept  {r['workspace']}")
    lines += [f"  note: {n}" for n in r["notes"]]
    return "\n".join(lines)


def cmd_bench(args: argparse.Namespace) -> int:
    from hub.bench import BenchOptions, run_bench

    if args.messages < 1 or args.workers < 1:
        return fail("--messages and --workers must be at least 1")
    if args.batch_size is not None and not 1 <= args.batch_size <= 5000:
        return fail("--batch-size must be from 1 to 5000")
    if args.rate is not None and args.rate <= 0:
        return fail("--rate must be above 0")
    if args.rate is not None and (args.workers > 1 or args.profile):
        return fail("--rate runs one `cebhub run` process: no --workers, no --profile")
    options = BenchOptions(
        messages=args.messages,
        workers=args.workers,
        database_url=args.database_url,
        profile=Path(args.profile) if args.profile else None,
        keep=Path(args.keep) if args.keep else None,
        rate=args.rate,
        batch_size=args.batch_size,
        check_processes=0 if args.no_helpers else args.check_processes,
        write_process=False if args.no_helpers else None,
    )
    try:
        result = run_bench(options, notes=[])
    except ValueError as exc:
        return fail(str(exc))
    if args.json:
        print_json(result)
    else:
        print(_text(result))
    if result["unanswered"]:
        print(f"cebhub: {result['unanswered']} messages got no receipt", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="measure throughput, latency and memory against the cost floor"
    )
    p.add_argument("--messages", type=int, default=2000, metavar="N", help="default 2000")
    p.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="N `cebhub run --once` processes (PostgreSQL only; default: 1, in this process)",
    )  # fmt: skip
    p.add_argument(
        "--database-url", metavar="URL",
        help="PostgreSQL URL; each run uses a new schema, dropped afterwards (default: SQLite)",
    )  # fmt: skip
    p.add_argument(
        "--rate", type=float, metavar="R",
        help="drop the files at R a second while a real `cebhub run` (console off) processes "
        "them, for the latency at that rate (default: drop all, then run the hub once)",
    )  # fmt: skip
    p.add_argument(
        "--batch-size", type=int, metavar="N",
        help="messages per transaction ([hub] batch_size; default: the hub's, 100)",
    )  # fmt: skip
    p.add_argument(
        "--check-processes", type=int, choices=range(0, 17), metavar="N",
        help="checker processes ([hub] check_processes; default: the hub's, 1 on 2+ cores)",
    )  # fmt: skip
    p.add_argument(
        "--no-helpers", action="store_true",
        help="no checker and no file-writer process: the hub's own process does everything",
    )  # fmt: skip
    p.add_argument("--profile", metavar="FILE", help="write a cProfile (pstats) of the hub part")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--keep", metavar="DIR", help="build the workspace in DIR and keep it")
    p.set_defaults(func=cmd_bench)
