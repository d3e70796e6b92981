"""Instructions a message costs the hub, counted by valgrind: a figure that a noisy VM does not move.

On a shared VM the same `cebhub bench` run varies by ±30 % in rate and CPU time, which hides any
change worth less than that. valgrind's callgrind counts the instructions executed in user space
(Python, lxml, SQLite, OpenSSL; not the kernel's file work), and gives nearly the same count
for the same work however loaded the machine is. The hub runs in one thread-pair, as
`cebhub run --once` without helper processes (checks and file writes in the hub), over two
workspaces of the same mix, SMALL and LARGE messages: the difference divided by LARGE - SMALL
is the marginal cost of a message, with start-up (imports, schema compilation, first
statements) cancelled out. Usage, from the repository root, with valgrind installed:

    python benchmarks/instructions.py [SMALL] [LARGE]      # default 100 300; a few minutes
    python benchmarks/instructions.py --helpers [SMALL] [LARGE]
    python benchmarks/instructions.py --round-cost [MESSAGES]   # default 300

`--helpers` runs the hub as `cebhub run` does on two cores, with its checker and file-writer
processes (valgrind follows them), and gives the count of each process as well as the sum: the
measure for work moved between the hub's process and its helpers. The hub waits for its
checker before it starts, so every batch of half `batch_size` or more (SMALL >= 50) is checked
there in both runs; a smaller one is checked in the hub's process.

`--round-cost` runs MESSAGES in batches of 100 and of 20 (helpers included): the difference
over the rounds it adds is what a round costs beside its messages (commits, look-ups, the
delivery round), which a paced hub pays several times as often as one running flat out.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

RUN = "import sys; from hub.runner import Hub; from hub.workspace import Workspace; from pathlib import Path; " \
    "hub = Hub(Workspace(Path(sys.argv[1]))); from hub import gctune; gctune.settle(); " \
    "assert hub.checker.depth == 0 or hub.checker.wait_ready(900); hub.run_once()"  # fmt: skip


def workspace(
    root: Path, messages: int, helpers: bool = False, batch_size: int | None = None
) -> Path:
    """A bench workspace (helper processes or none) with `messages` files in its inbox."""
    from hub.bench.workload import generate, message_mix, prepare_workspace

    ws = prepare_workspace(
        root / "ws", batch_size=batch_size, check_processes=int(helpers), write_process=helpers
    )
    types, _ = message_mix()
    generate(ws, messages, types, seed=1)
    return ws.root


def instructions(ws: Path) -> list[int]:
    """Instructions of one `run_once` over `ws` under callgrind (start-up included), one count
    a process: the helpers' (as they ended), then the hub's."""
    with tempfile.TemporaryDirectory() as out:
        args = [
            "valgrind", "--tool=callgrind", "--trace-children=yes",
            f"--callgrind-out-file={out}/cg.%p", sys.executable, "-c", RUN, str(ws),
        ]  # fmt: skip
        # From the workspace's folder: `python -c` imports from the current directory first.
        done = subprocess.run(args, capture_output=True, text=True, cwd=ws)
        if done.returncode:
            raise RuntimeError(f"valgrind failed:\n{done.stderr[-3000:]}")
    found = [int(n) for n in re.findall(r"Collected : (\d+)", done.stderr)]
    if not found:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return found


def round_cost(messages: int) -> None:
    """What a round costs: `messages` in batches of 20 against batches of 100 (with the
    helpers), the difference divided by the rounds it adds; one count a process."""
    base = Path(os.environ.get("TMPDIR", "/var/tmp"))
    counts = {}
    with tempfile.TemporaryDirectory(dir=base, prefix="cebhub-instructions-") as tmp:
        for batch in (100, 20):
            ws = workspace(Path(tmp) / str(batch), messages, helpers=True, batch_size=batch)
            counts[batch] = instructions(ws)
            print(f"batches of {batch:3d}: {sum(counts[batch]):,} instructions", flush=True)
    rounds = -(-messages // 20) - -(-messages // 100)
    print(f"a round: {(sum(counts[20]) - sum(counts[100])) / rounds:,.0f} instructions")
    for name, i in (("hub", 2), ("checker", 0), ("file writer", 1)):
        print(f"  {name}: {(counts[20][i] - counts[100][i]) / rounds:,.0f}")


def main() -> None:
    args = sys.argv[1:]
    helpers = "--helpers" in args
    numbers = [int(a) for a in args if a not in ("--helpers", "--round-cost")]
    if "--round-cost" in args:
        round_cost(numbers[0] if numbers else 300)
        return
    small = numbers[0] if numbers else 100
    large = numbers[1] if len(numbers) > 1 else 300
    base = Path(os.environ.get("TMPDIR", "/var/tmp"))
    counts = {}
    with tempfile.TemporaryDirectory(dir=base, prefix="cebhub-instructions-") as tmp:
        for n in (small, large):
            counts[n] = instructions(workspace(Path(tmp) / str(n), n, helpers))
            print(f"{n:6d} messages: {sum(counts[n]):,} instructions", flush=True)
    per_message = (sum(counts[large]) - sum(counts[small])) / (large - small)
    print(f"per message: {per_message:,.0f} instructions")
    if helpers and len(counts[small]) == len(counts[large]) == 3:
        # valgrind reports each process as it ends: the checker, the file writer, the hub
        for name, i in (("hub", 2), ("checker", 0), ("file writer", 1)):
            each = (counts[large][i] - counts[small][i]) / (large - small)
            print(f"  {name}: {each:,.0f}")


if __name__ == "__main__":
    main()
