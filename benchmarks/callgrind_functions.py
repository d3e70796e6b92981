"""Where a message's instructions go, by C function and by library, in each of the hub's processes.

`instructions.py --helpers` gives one count a process; this gives the marginal count of each
function: the hub (with its checker and file writer, as `cebhub run` has them) runs under
callgrind over SMALL and LARGE messages, and each function's difference divided by LARGE -
SMALL is its share of a message, start-up cancelled out. Python code shows as the
interpreter's functions; what it finds is waste below Python: round 10 found an
AttributeError built and dropped for each attribute of an SQLAlchemy Row and for each None,
blob and state sqlite3 bound, and the garbage collector walking the whole heap. Usage, from
the repository root, with valgrind and its callgrind_annotate installed:

    python benchmarks/callgrind_functions.py [SMALL] [LARGE] [--top N] [--keep DIR]

Keep SMALL at 100 or more: in a smaller run the hub may check part of a batch in its own
process, and the checker's difference is then meaningless.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from instructions import RUN, workspace

PROCESSES = (("hub", "hub.runner"), ("checker", "hub.checker"), ("file writer", "durable"))
_LINE = re.compile(r"\s*([\d,]+) \([\s\d.]+%\)\s+(.*)$")


def profiles(messages: int, out: Path) -> dict[str, Path]:
    """callgrind's output of each process of one run over `messages`, by process name."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir="/var/tmp") as root:
        ws = workspace(Path(root), messages, helpers=True)
        args = [
            "valgrind", "--tool=callgrind", "--trace-children=yes",
            f"--callgrind-out-file={out}/cg.%p", sys.executable, "-c", RUN, str(ws),
        ]  # fmt: skip
        done = subprocess.run(
            args, capture_output=True, text=True, cwd=ws
        )  # ws: see instructions.py
        if done.returncode:
            raise RuntimeError(f"valgrind failed:\n{done.stderr[-3000:]}")
    found = {}
    for path in out.glob("cg.*"):
        command = next((line for line in path.open() if line.startswith("cmd:")), "")
        for name, marker in PROCESSES:
            if marker in command:
                found[name] = path
    return found


def by_function(path: Path, by_library: bool) -> collections.Counter:
    """Instructions of each function (or library) in one callgrind output, itself only."""
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    counts: collections.Counter = collections.Counter()
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        name = m.group(2)
        library = re.search(r"\[([^\]]*)\]\s*$", name)
        library_name = library.group(1).rsplit("/", 1)[-1] if library else "?"
        function = re.sub(r"^.*?:", "", name.split(" [")[0])
        counts[library_name if by_library else f"{function} [{library_name}]"] += int(
            m.group(1).replace(",", "")
        )
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("small", nargs="?", type=int, default=100)
    parser.add_argument("large", nargs="?", type=int, default=300)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--keep", type=Path, help="keep callgrind's outputs here")
    args = parser.parse_args()
    keep = args.keep or Path(tempfile.mkdtemp(prefix="callgrind-", dir="/var/tmp"))
    small = profiles(args.small, keep / str(args.small))
    large = profiles(args.large, keep / str(args.large))
    span = args.large - args.small
    for name, _ in PROCESSES:
        if name not in small or name not in large:
            continue
        for by_library in (True, False):
            a, b = by_function(small[name], by_library), by_function(large[name], by_library)
            each = {k: (b[k] - a[k]) / span for k in a.keys() | b.keys()}
            total = sum(each.values())
            what = "library" if by_library else "function"
            print(f"\n{name}: {total:,.0f} instructions a message, by {what}")
            top = sorted(each.items(), key=lambda kv: -kv[1])[: 10 if by_library else args.top]
            for key, value in top:
                print(f"{value:12,.0f} {value / total * 100:5.1f} %  {key}")
    print(f"\ncallgrind's outputs: {keep}")


if __name__ == "__main__":
    main()
