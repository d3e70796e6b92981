"""The file writer's CPU a file: outbox rounds written unnamed and linked, or by temp names.

Round 11 writes each outbox file with O_TMPFILE and links it once the round is durable
(`adapters.unnamed`), where it used to write a temp name and rename it. This writes the same
rounds both ways into fresh folders under DIR and prints user and system µs a file. Run it on
a filesystem with no deletions in the last five minutes: ext4 skips recently freed inodes,
which costs more than either way's folder work (docs/performance.md, round 11). Usage:

    python benchmarks/outbox_files.py DIR [--files 30000] [--round 500]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from adapters import durable


def write(folder: Path, files: int, per_round: int, unnamed: bool) -> tuple[float, float]:
    """(user, system) µs a file for `files` 3 KB files in rounds of `per_round`, two folders."""
    real = durable._linker
    if not unnamed:
        durable._linker = lambda _folder, _tmp: None
    try:
        folders = [folder / "a", folder / "b"]
        for f in folders:
            f.mkdir(parents=True)
        body = b"x" * 3000
        start = os.times()
        for r in range(files // per_round):
            batch = []
            for i in range(per_round):
                d = folders[i % 2]
                batch.append((f"{d}/.f{r}_{i}.xml.h-1.tmp", f"{d}/f{r}_{i}.xml", body))
            durable.write_round(batch)
        end = os.times()
    finally:
        durable._linker = real
    done = files // per_round * per_round
    return (end.user - start.user) / done * 1e6, (end.system - start.system) / done * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--files", type=int, default=30_000)
    parser.add_argument("--round", type=int, default=500)
    args = parser.parse_args()
    for name, unnamed in (("temp names", False), ("unnamed", True)):
        user, system = write(args.dir / name.replace(" ", "-"), args.files, args.round, unnamed)
        print(f"{name:>10}: user {user:6.1f} µs, system {system:6.1f} µs a file")


if __name__ == "__main__":
    main()
