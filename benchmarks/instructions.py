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
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

RUN = "import sys; from hub.runner import Hub; from hub.workspace import Workspace; from pathlib import Path; " \
    "Hub(Workspace(Path(sys.argv[1]))).run_once()"  # fmt: skip


def workspace(root: Path, messages: int) -> Path:
    """A bench workspace (no helper processes) with `messages` files in its inbox."""
    from hub.bench.workload import generate, message_mix, prepare_workspace

    ws = prepare_workspace(root / "ws", check_processes=0, write_process=False)
    types, _ = message_mix()
    generate(ws, messages, types, seed=1)
    return ws.root


def instructions(ws: Path) -> int:
    """Instructions of one `run_once` over `ws` under callgrind (start-up included)."""
    with tempfile.TemporaryDirectory() as out:
        args = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.out",
            sys.executable, "-c", RUN, str(ws),
        ]  # fmt: skip
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"valgrind failed:\n{done.stderr[-3000:]}")
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    small = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    large = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    base = Path(os.environ.get("TMPDIR", "/var/tmp"))
    counts = {}
    with tempfile.TemporaryDirectory(dir=base, prefix="cebhub-instructions-") as tmp:
        for n in (small, large):
            counts[n] = instructions(workspace(Path(tmp) / str(n), n))
            print(f"{n:6d} messages: {counts[n]:,} instructions", flush=True)
    per_message = (counts[large] - counts[small]) / (large - small)
    print(f"per message: {per_message:,.0f} instructions")


if __name__ == "__main__":
    main()
