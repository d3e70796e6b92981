"""The CPU of each part of an in-process bench run: the hub's main thread, its other threads,
the checker and the file writer, read from /proc while the hub works.

The bench's own figure (`cpu_us_per_message`) is the sum; this splits it, which says whose work
a change moved or saved. The window is the time the checker's CPU rises, so generating the
messages and measuring the floor are left out. It runs `cebhub bench --json` with the code of
CODE_DIR (a worktree of another commit, or the repository itself), from that folder, since
`python -c` imports from the current folder first. Usage:

    python benchmarks/process_cpu.py CODE_DIR OUT_PREFIX [bench options, e.g. --messages 10000]

It writes OUT_PREFIX.json (the bench's figures) and prints one line. The CPU in the window
is divided by all the messages, and the window misses the first and last sample (0.2 s
each): use it for runs of 10,000 messages or more, where that is a few per cent.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
BENCH = "import sys; from hub.cli import main; sys.exit(main(sys.argv[1:]))"


def _ticks(stat: Path) -> int | None:
    try:
        fields = stat.read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid:
            found.append(int(stat.parent.name))
    return found


def _kind(pid: int, bench: int) -> str:
    if pid == bench:
        return "bench"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "other"
    if b"hub.checker" in command:
        return "checker"
    return "file writer" if b"durable" in command else "other"


def sample(bench: subprocess.Popen) -> list[tuple[float, str, bool, int, int]]:
    """(time, kind, is the process's main thread, thread id, ticks) every 0.2 s until it ends."""
    rows = []
    kinds: dict[int, str] = {}
    for turn in itertools.count():
        if bench.poll() is not None:
            break
        now = time.time()
        if turn % 10 == 0 or "checker" not in kinds.values():  # reading /proc costs CPU too
            kinds = {pid: _kind(pid, bench.pid) for pid in [bench.pid, *_children(bench.pid)]}
        for pid, kind in kinds.items():
            for task in Path(f"/proc/{pid}/task").glob("*") if kind != "other" else []:
                ticks = _ticks(task / "stat")
                if ticks is not None:
                    rows.append((now, kind, task.name == str(pid), int(task.name), ticks))
        time.sleep(0.2)
    return rows


def split(rows: list[tuple[float, str, bool, int, int]]) -> tuple[float, Counter]:
    """The window's length and each part's CPU seconds in it."""
    by_checker: dict[int, list[tuple[float, int]]] = {}
    for t, kind, _, tid, ticks in rows:
        if kind == "checker":
            by_checker.setdefault(tid, []).append((t, ticks))
    rising = [
        t
        for seen in by_checker.values()
        for (t, c), (_, before) in zip(seen[1:], seen[:-1], strict=True)
        if c > before
    ]
    if not rising:
        raise SystemExit("the checker process never worked: nothing to split")
    start, end = min(rising), max(rising)
    first: dict[int, int] = {}
    last: dict[int, tuple[str, int]] = {}
    for t, kind, is_main, tid, ticks in rows:
        part = "main thread" if kind == "bench" and is_main else kind
        part = "hub's other threads" if part == "bench" else part
        if start <= t:
            first.setdefault(tid, ticks)
        if t <= end:
            last[tid] = (part, ticks)
    seconds: Counter = Counter()
    for tid, (part, ticks) in last.items():
        if tid in first:
            seconds[part] += (ticks - first[tid]) / TICKS
    return end - start, seconds


def main() -> None:
    code, out, *options = sys.argv[1:]
    code_dir = Path(code).resolve()
    env = {**os.environ, "PYTHONPATH": str(code_dir)}
    with open(f"{out}.json", "w") as figures:
        bench = subprocess.Popen(
            [sys.executable, "-c", BENCH, "bench", "--json", *options],
            cwd=code_dir, env=env, stdout=figures,
        )  # fmt: skip
        rows = sample(bench)
    if bench.returncode:
        raise SystemExit(f"the bench failed ({bench.returncode})")
    window, seconds = split(rows)
    result = json.loads(Path(f"{out}.json").read_text())
    n = result["answered"]
    parts = ", ".join(
        f"{part} {s:.2f} s ({s / n * 1e6:.0f} µs/msg)" for part, s in sorted(seconds.items())
    )
    print(
        f"{out}: {result['messages_per_second']} msg/s, all processes "
        f"{result['cpu_us_per_message']} µs/msg, floor {result['floor']['messages_per_second']} "
        f"msg/s; in the {window:.1f} s the checker worked: {parts}"
    )


if __name__ == "__main__":
    main()
