"""The garbage collector set for a process that runs the hub or one of its helpers."""

from __future__ import annotations

import gc

# Collections of the youngest generation start after this many more container allocations
# than releases (Python's default: 700). A message makes thousands of short-lived dicts,
# tuples and lists, which reference counting frees at once; a young collection walks those
# alive at that moment, and every 10th and 100th walks the older generations as well, the
# whole heap of modules, schemas and compiled statements included.
YOUNG_THRESHOLD = 20_000


def settle(*, freeze: bool = False) -> None:
    """Collect the young less often; with `freeze`, also set aside everything alive now (what
    start-up built lives as long as the process) so that no collection walks it again.

    `freeze` is for a process that exists only to run a helper: objects alive now are never
    collected afterwards, so a process that builds and drops hubs (tests) must not use it.
    """
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    if freeze:
        gc.collect()
        gc.freeze()
