"""Wall time per hub stage during an in-process bench run (main thread and deliverer thread).

Wraps the stages with timers, then runs `cebhub bench`'s in-process path. Stages overlap (the
deliverer thread writes files while the main thread processes), so the rows do not add up to
the run. Usage: python benchmarks/stage_times.py [MESSAGES] [BATCH_SIZE]
"""

import collections
import functools
import sys
import time

import adapters.directory as directory
from hub import pipeline, runner
from hub.bench.run import BenchOptions, run_bench

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
    runner.Hub.process_claims = timed("process (check + transaction)", runner.Hub.process_claims)
    runner.Hub.deliver = timed("deliver (deliverer thread)", runner.Hub.deliver)
    pipeline.check = timed("  check", pipeline.check)
    runner.sweep = timed("sweep (clearance)", runner.sweep)
    directory.DirectoryOutbox.deliver = timed("  outbox write", directory.DirectoryOutbox.deliver)
    directory.DirectoryOutbox.flush = timed(
        "  outbox syncfs + rename", directory.DirectoryOutbox.flush
    )
    result = run_bench(BenchOptions(messages=n, batch_size=batch), [])
    print(
        f"{result['messages_per_second']} msg/s, hub {result['hub_seconds']} s, "
        f"file create {result['machine']['file_create_us']} µs"
    )
    for label, seconds in spent.most_common():
        print(f"{label:32s} {seconds:7.3f} s {seconds / n * 1e6:7.0f} µs/message")


if __name__ == "__main__":
    main()
