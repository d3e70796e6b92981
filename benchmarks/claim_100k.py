"""Claiming N queued inbox files with DirectoryInbox in batches of 100 (the hub's default)."""

from __future__ import annotations

import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from adapters.directory import DirectoryInbox
from hub.workspace import Workspace


def main(n: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="claim-bench-"))
    try:
        ws = Workspace(root)
        inbox = DirectoryInbox(ws, [("p", "immediate")])
        folder = ws.inbox_of("p")
        t = time.perf_counter()
        for i in range(n):
            (folder / f"CEB311Message_{i:08d}.xml").write_bytes(b"<x/>")
        print(f"made {n} files in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        first, claimed = None, 0
        while batch := inbox.claim(100):
            if first is None:
                first = time.perf_counter() - t  # includes the one scan of the folder
            claimed += len(batch)
        took = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"claimed {claimed} in {took:.2f} s: {took / max(1, claimed) * 1e6:.0f} µs/file; "
            f"first batch (with the scan) {(first or 0) * 1000:.0f} ms; peak RSS {rss:.0f} MB"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
