"""Wall time per hub stage during an in-process bench run, and the CPU time of the hub's threads.

Wraps the stages with timers, then runs `cebhub bench`'s in-process path. Stages overlap (the
deliverer thread writes files while the main thread processes; the checker and file-writer
processes work beside both), so the rows do not add up to the run. Usage:
python benchmarks/stage_times.py [MESSAGES] [BATCH_SIZE]
"""

import collections
import functools
import os
import sys
import time
from pathlib import Path

import adapters.directory as directory
from hub import pipeline, runner
from hub.bench.run import BenchOptions, run_bench
from hub.delivery.background import Deliverer

spent: collections.Counter = collections.Counter()


def timed(label, func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - start

    return wrapper


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else None
    runner.Hub._start = timed("read + check here or hand over", runner.Hub._start)
    runner.Hub._finish = timed("collect + record + archive", runner.Hub._finish)
    pipeline.check = timed("  checks in the hub's process", pipeline.check)
    pipeline.Processor.record = timed("  record (the transaction)", pipeline.Processor.record)
    runner.sweep = timed("sweep (clearance)", runner.sweep)
    runner.Hub.deliver = timed("deliver (deliverer thread)", runner.Hub.deliver)
    directory.DirectoryOutbox.flush = timed("  outbox write round", directory.DirectoryOutbox.flush)
    cpu: dict[str, float] = {}
    run_once = runner.Hub.run_once
    deliver_pass = Deliverer._pass

    def main_thread(self) -> None:
        start = time.thread_time()
        try:
            run_once(self)
        finally:
            cpu["main thread"] = time.thread_time() - start

    def deliverer_thread(self) -> int:
        start = time.thread_time()
        try:
            return deliver_pass(self)
        finally:
            cpu["deliverer thread"] = cpu.get("deliverer thread", 0) + time.thread_time() - start

    runner.Hub.run_once = main_thread
    Deliverer._pass = deliverer_thread
    keep = os.environ.get("STAGE_TIMES_KEEP")  # a new folder: no deletion after the run
    options = BenchOptions(messages=n, batch_size=batch, keep=Path(keep) if keep else None)
    result = run_bench(options, [])
    print(
        f"{result['messages_per_second']} msg/s, hub {result['hub_seconds']} s, "
        f"file create {result['machine']['file_create_us']} µs"
    )
    for label, seconds in spent.most_common():
        print(f"{label:32s} {seconds:7.3f} s {seconds / n * 1e6:7.0f} µs/message")
    for label, seconds in cpu.items():
        print(f"CPU of the {label:21s} {seconds:7.3f} s {seconds / n * 1e6:7.0f} µs/message")


if __name__ == "__main__":
    main()
