"""Background delivery: one thread writes the due files while the hub processes the next batch."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hub.delivery.worker import BATCH

log = logging.getLogger(__name__)


class Deliverer:
    """Runs delivery rounds in its own thread whenever it is kicked.

    Creating, writing and syncing files happens outside the interpreter lock, so on a
    machine with two cores the files of one batch are written while the next batch is
    parsed, verified and stored. Only this thread uses the sinks once it is started. A kick
    after a commit asks for one more pass; `drain` waits until a pass that began after the
    kick is over, which is how `run --once` knows that nothing due is left.
    """

    def __init__(self, deliver: Callable[[], int], on_delivered: Callable[[], None]) -> None:
        self._deliver = deliver  # one delivery round: the number of rows it attempted
        self._on_delivered = on_delivered  # e.g. wake the main loop so the sweep runs
        self._cond = threading.Condition()
        self._asked = 0  # kicks so far
        self._served = 0  # kicks that a finished pass has answered
        self._attempted = 0  # rows attempted since the last drain
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="deliverer", daemon=True)

    def start(self) -> Deliverer:
        self._thread.start()
        return self

    def kick(self) -> int:
        """Ask for a pass (new rows may be due); returns the ticket `drain` can wait for."""
        with self._cond:
            self._asked += 1
            self._cond.notify_all()
            return self._asked

    def drain(self) -> int:
        """Kick, wait until that pass is over, and return the rows attempted since last time."""
        ticket = self.kick()
        with self._cond:
            self._cond.wait_for(lambda: self._served >= ticket or not self._thread.is_alive())
            attempted, self._attempted = self._attempted, 0
            return attempted

    def stop(self) -> None:
        """Finish the pass in progress, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or self._served < self._asked)
                if self._stopping:
                    return
                ticket = self._asked
            attempted = self._pass()
            with self._cond:
                self._served = ticket
                self._attempted += attempted
                self._cond.notify_all()
            if attempted:
                self._on_delivered()

    def _pass(self) -> int:
        """Rounds until one finds less than a full batch due; a failure waits for a kick."""
        total = 0
        try:
            while True:
                attempted = self._deliver()
                total += attempted
                if attempted < BATCH:
                    return total
        except Exception:  # the next kick tries again; the rows are still pending
            log.exception("delivery round failed")
            return total
