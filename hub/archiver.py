"""Archiving recorded folder claims in a thread of their own, off the hub's main thread."""

from __future__ import annotations

import queue
import threading
from typing import Any

# One rename a message, ~40-50 µs of system time on this project's machines, which the main
# thread (the hub's critical path on two cores) spent waiting on the kernel. A claim is handed
# over only once the transaction that recorded it has committed; one whose rename fails comes
# back through `failed` to the runner's retries; one still queued when the process dies stays
# in claims/, where the next start finds it recorded and archives it.

_STOP = object()


class Archiver:
    """Renames recorded claims into the archive in a background thread."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._failed: queue.SimpleQueue = queue.SimpleQueue()
        self._held_lock = threading.Condition()
        self._held: set[str] = set()  # claim names handed over and not yet done
        self._thread = threading.Thread(target=self._run, name="archiver", daemon=True)
        self._thread.start()

    def put(self, source: Any, claim: Any, disposition: Any) -> None:
        """Archive `claim` of `source` (its transaction has committed)."""
        with self._held_lock:
            self._held.add(claim.name)
        self._queue.put((source, claim, disposition))

    def held(self) -> set[str]:
        """The claims handed over and not yet archived (or handed back as failed)."""
        with self._held_lock:
            return set(self._held)

    def failed(self) -> list[tuple[Any, Any, Any]]:
        """(source, claim, disposition) of each archive that failed since the last call."""
        out = []
        while True:
            try:
                out.append(self._failed.get_nowait())
            except queue.Empty:
                return out

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every claim handed over is done; False if `timeout` ran out first."""
        with self._held_lock:
            return self._held_lock.wait_for(lambda: not self._held, timeout)

    def stop(self) -> None:
        """Archive what was handed over, then end the thread."""
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        while True:
            work = self._queue.get()
            if work is _STOP:
                return
            source, claim, _ = work
            try:
                source.archive(claim)
            except Exception:  # the runner tries again and logs it, as for its own archives
                self._failed.put(work)
            with self._held_lock:
                self._held.discard(claim.name)
                if not self._held:
                    self._held_lock.notify_all()
