"""Making a round of small files durable: per-file fsyncs (8 threads) against one syncfs.

Creates ROUND 3 KB files in a new folder, makes them durable one way or the other, renames
them and syncs the folder; prints µs per file for create, sync and rename. Linux only (syncfs).
Usage: python benchmarks/sync_cost.py [PARENT_FOLDER]
"""

import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from adapters.durable import SYNCFS, fsync_path, sync_filesystem_of

ROUND = 425  # files: one delivery round of 100 messages


def one_round(parent: str, mode: str, pool: ThreadPoolExecutor) -> tuple[float, float, float]:
    folder = tempfile.mkdtemp(dir=parent)
    body = os.urandom(1500).hex().encode()
    try:
        t0 = time.perf_counter()
        paths = []
        for i in range(ROUND):
            path = os.path.join(folder, f".f{i}.tmp")
            with open(path, "wb") as f:
                f.write(body)
            paths.append(path)
        t1 = time.perf_counter()
        if mode == "fsync":
            list(pool.map(fsync_path, paths))
        else:
            sync_filesystem_of(folder)
        t2 = time.perf_counter()
        for path in paths:
            os.replace(path, path.replace("/.f", "/f"))
        fsync_path(folder)
        t3 = time.perf_counter()
        return tuple((b - a) / ROUND * 1e6 for a, b in ((t0, t1), (t1, t2), (t2, t3)))
    finally:
        shutil.rmtree(folder)


def main() -> None:
    if SYNCFS is None:
        sys.exit("no syncfs here")
    parent = sys.argv[1] if len(sys.argv) > 1 else tempfile.gettempdir()
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            for mode in ("fsync", "syncfs"):
                create, sync, rename = one_round(parent, mode, pool)
                print(
                    f"{mode:7s} create {create:5.0f}  sync {sync:5.0f}  rename {rename:4.0f} µs/file"
                )


if __name__ == "__main__":
    main()
