"""Retry delays: exponential, capped, with full jitter."""

from __future__ import annotations

import random

_rng = random.SystemRandom()


def retry_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after the `attempt`-th failure (1-based): uniform in [base, min(cap, base·2^(n-1))]."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return (rng or _rng).uniform(min(base, ceiling), ceiling)
