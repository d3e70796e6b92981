"""inotify (watchdog) on the inbox folders: wakes the hub as soon as a file lands."""

from __future__ import annotations

import logging
import os
import select
import threading
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger(__name__)

READ_BUFFER = 64 * 1024  # one read takes many queued events at once
STOP_CHECK_SECONDS = 0.5
# After a wake the events of the next few ms are left to queue up and read together: a hub
# that is busy does not wait for a wake, and one that is idle got this one at once. At 700
# files a second one read a file cost ~15 % of a core; now at most one read per interval.
COALESCE_SECONDS = 0.005


class _Wake(FileSystemEventHandler):
    def __init__(self, wakeup: threading.Event) -> None:
        self.wakeup = wakeup

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("created", "moved", "closed"):
            self.wakeup.set()


class _InotifyWaker(threading.Thread):
    """Reads the inbox's inotify queue in bulk and only sets `wakeup`: no event is parsed.

    The hub only needs to know that something arrived (it claims by listing the folders), so
    the events are read many at a time and dropped. watchdog's observer turned every event into
    Python objects (grouped moves, a delayed queue): ~250 µs of interpreter time per inbox file,
    taken from the thread that processes the messages. Watched: the inbox itself (a partner
    folder appearing) and each partner folder (a file renamed in or written and closed).
    """

    def __init__(self, inbox: Path, wakeup: threading.Event) -> None:
        from watchdog.observers import inotify_c

        super().__init__(name="inbox-watch", daemon=True)
        self.inbox = inbox
        self.wakeup = wakeup
        self._inotify = inotify_c
        consts = inotify_c.InotifyConstants
        self._file_mask = consts.IN_MOVED_TO | consts.IN_CLOSE_WRITE | consts.IN_CREATE
        self._fd = inotify_c.inotify_init()
        if self._fd < 0:
            raise OSError(f"inotify_init failed: {os.strerror(abs(self._fd))}")
        self._stopping = threading.Event()
        self._watch_folders()

    def _watch_folders(self) -> None:
        """Watch the inbox and every partner folder: new ones, and ones removed and made again.

        Adding a watch that exists returns the same one, so every folder is added each time
        (a few µs each; the same name can come back with the same inode, so there is no
        cheaper way to tell a remade folder from the old one without parsing events).
        """
        folders = [str(self.inbox)]
        folders += [e.path for e in os.scandir(self.inbox) if e.is_dir(follow_symlinks=True)]
        for folder in folders:
            wd = self._inotify.inotify_add_watch(self._fd, folder.encode(), self._file_mask)
            if wd < 0:
                raise OSError(f"inotify_add_watch {folder} failed")

    def run(self) -> None:
        while not self._stopping.is_set():
            ready, _, _ = select.select([self._fd], [], [], STOP_CHECK_SECONDS)
            if not ready:
                continue
            os.read(self._fd, READ_BUFFER)
            try:
                self._watch_folders()  # a partner folder may have just appeared
            except OSError as exc:  # the periodic rescan still finds its files
                log.warning("inbox watch: %s", exc)
            self.wakeup.set()  # after the new folder is watched: nothing is missed
            self._stopping.wait(COALESCE_SECONDS)

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=5)
        os.close(self._fd)


class InboxWatcher:
    """Sets `wakeup` on every new file under the inbox; the periodic rescan covers the rest."""

    def __init__(self, inbox: Path, wakeup: threading.Event) -> None:
        self.inbox = inbox
        self.wakeup = wakeup
        self.observer = None
        self.waker: _InotifyWaker | None = None

    def start(self) -> None:
        self.inbox.mkdir(parents=True, exist_ok=True)
        try:
            self.waker = _InotifyWaker(self.inbox, self.wakeup)
            self.waker.start()
            return
        except (ImportError, AttributeError, OSError) as exc:  # not Linux, or no watches left
            self.waker = None
            log.info("inotify waker unavailable (%s); using watchdog's observer", exc)
        try:
            observer = Observer()
            observer.schedule(_Wake(self.wakeup), str(self.inbox), recursive=True)
            observer.start()
            self.observer = observer
        except OSError as exc:  # e.g. out of inotify watches: polling still works
            log.warning("inbox watch unavailable, polling only: %s", exc)

    def stop(self) -> None:
        if self.waker is not None:
            self.waker.stop()
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
