"""Named crash points for the crash-consistency tests: SIGKILL the process at a step boundary."""

from __future__ import annotations

import os
import signal

ENV = "CEBHUB_CRASH_AT"  # e.g. "after-claim" or "after-commit:3" (the third time it is reached)

_target: tuple[str, int] | None = None
_seen: dict[str, int] = {}


def _load() -> tuple[str, int] | None:
    value = os.environ.get(ENV, "")
    if not value:
        return None
    name, _, nth = value.partition(":")
    return name, int(nth or 1)


_target = _load()


def crash_point(name: str) -> None:
    """Die here, as a power cut or OOM kill would, if the environment asks for it."""
    if _target is None or _target[0] != name:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] >= _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
