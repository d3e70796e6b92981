"""inotify (watchdog) on the inbox folders: wakes the hub as soon as a file lands."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger(__name__)


class _Wake(FileSystemEventHandler):
    def __init__(self, wakeup: threading.Event) -> None:
        self.wakeup = wakeup

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("created", "moved", "closed"):
            self.wakeup.set()


class InboxWatcher:
    """Sets `wakeup` on every new file under the inbox; the periodic rescan covers the rest."""

    def __init__(self, inbox: Path, wakeup: threading.Event) -> None:
        self.inbox = inbox
        self.wakeup = wakeup
        self.observer = None

    def start(self) -> None:
        self.inbox.mkdir(parents=True, exist_ok=True)
        try:
            observer = Observer()
            observer.schedule(_Wake(self.wakeup), str(self.inbox), recursive=True)
            observer.start()
            self.observer = observer
        except OSError as exc:  # e.g. out of inotify watches: polling still works
            log.warning("inbox watch unavailable, polling only: %s", exc)

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
