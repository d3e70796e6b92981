"""The inbox watcher wakes the hub when a file lands, in a partner folder old or new."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from adapters.watch import InboxWatcher

WAIT = 10  # seconds; a wake-up takes milliseconds


@pytest.fixture
def watching(tmp_path):
    inbox = tmp_path / "inbox"
    (inbox / "platform").mkdir(parents=True)
    wakeup = threading.Event()
    watcher = InboxWatcher(inbox, wakeup)
    watcher.start()
    yield inbox, wakeup, watcher
    watcher.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
def test_linux_uses_the_bulk_inotify_waker(watching):
    _, _, watcher = watching
    assert watcher.waker is not None and watcher.observer is None


def test_a_file_renamed_in_or_written_wakes_the_hub(watching, tmp_path):
    inbox, wakeup, _ = watching
    staged = tmp_path / "order.xml"
    staged.write_bytes(b"<x/>")
    os.rename(staged, inbox / "platform" / "order.xml")  # how partners should drop files
    assert wakeup.wait(WAIT)
    wakeup.clear()
    (inbox / "platform" / "written.xml").write_bytes(b"<y/>")  # written in place
    assert wakeup.wait(WAIT)


def test_a_partner_folder_made_later_is_watched_too(watching):
    inbox, wakeup, _ = watching
    (inbox / "agent").mkdir()
    assert wakeup.wait(WAIT)  # the folder itself
    wakeup.clear()
    (inbox / "agent" / "list.xml").write_bytes(b"<z/>")
    assert wakeup.wait(WAIT)


def test_a_partner_folder_removed_and_made_again_is_watched_again(watching):
    inbox, wakeup, _ = watching
    (inbox / "platform").rmdir()
    (inbox / "platform").mkdir()
    assert wakeup.wait(WAIT)
    wakeup.clear()
    (inbox / "platform" / "again.xml").write_bytes(b"<x/>")
    assert wakeup.wait(WAIT)


def test_stop_ends_the_thread(tmp_path):
    inbox = tmp_path / "inbox"
    watcher = InboxWatcher(inbox, threading.Event())
    watcher.start()
    watcher.stop()
    if watcher.waker is not None:
        assert not watcher.waker.is_alive()
