"""What a message costs the hub in system calls, bytes written and CPU, over a copied workspace.

`cebhub bench` deletes its workspace, and on this VM's ext4 a file created within minutes of
many deletions costs several times more: runs taken that way measure the filesystem's state.
This runs `run --once` (with the checker and file-writer processes, as `cebhub run` has them)
over a copy of a template workspace made once, so no run deletes anything, and prints per
message: the rate, the CPU (user and system) of the hub's process and of its helpers, and the
hub process's write and read calls and bytes written (/proc/self/io; SQLite's log and
database writes are nearly all of them). The counts do not move with the machine's load as
the times do. Usage, from the repository root, or from a worktree with PYTHONPATH set to it:

    python benchmarks/run_io.py --template /var/tmp/keep/tmpl --messages 10000   # once
    cp -a /var/tmp/keep/tmpl /var/tmp/keep/run-1
    python benchmarks/run_io.py /var/tmp/keep/run-1
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path


def _io() -> dict[str, int]:
    lines = Path("/proc/self/io").read_text().splitlines()
    return {k: int(v) for k, v in (line.split(": ") for line in lines)}


def run(root: Path) -> str:
    from hub import gctune
    from hub.runner import Hub
    from hub.workspace import Workspace

    ws = root / "ws"
    hub = Hub(Workspace(ws))
    gctune.settle()
    assert hub.checker.depth == 0 or hub.checker.wait_ready(900)
    n = sum(1 for _ in (ws / "inbox").rglob("*.xml"))
    io0, self0 = _io(), resource.getrusage(resource.RUSAGE_SELF)
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    hub.run_once()
    seconds = time.monotonic() - t0
    hub.close()  # the helpers end: their CPU is counted as the children's
    io1, self1 = _io(), resource.getrusage(resource.RUSAGE_SELF)
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)

    def us(a: float, b: float) -> float:
        return (b - a) / n * 1e6

    return (
        f"{n} messages, {n / seconds:.0f} msg/s; µs a message: hub user "
        f"{us(self0.ru_utime, self1.ru_utime):.0f} system {us(self0.ru_stime, self1.ru_stime):.0f}, "
        f"helpers user {us(children0.ru_utime, children1.ru_utime):.0f} "
        f"system {us(children0.ru_stime, children1.ru_stime):.0f}; a message: "
        f"{(io1['syscw'] - io0['syscw']) / n:.1f} writes, {(io1['syscr'] - io0['syscr']) / n:.1f} "
        f"reads, {(io1['write_bytes'] - io0['write_bytes']) / n / 1024:.1f} KiB written"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, nargs="?", help="a copy of the template")
    parser.add_argument("--template", type=Path, help="make a template here and stop")
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    if args.template is not None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from instructions import workspace

        args.template.mkdir(parents=True)
        print(workspace(args.template, args.messages, helpers=True))
        return
    if args.root is None:
        parser.error("give a copy of the template, or --template")
    print(run(args.root))


if __name__ == "__main__":
    main()
