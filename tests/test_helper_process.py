"""Helper processes: set up once, answer in turn, ignore the group's stop signals, end with the hub."""

from __future__ import annotations

import logging
import os
import signal
import time

from hub.helper_process import HelperProcess


def test_a_helper_answers_in_turn_outlives_a_group_stop_signal_and_ends_when_closed():
    helper = HelperProcess("adapters.durable", "setup_writer", None)
    assert helper.ready(timeout=60)
    pid = helper._child.pid
    assert helper.call([]) == {}  # an empty round: nothing failed
    for sig in (signal.SIGTERM, signal.SIGINT):  # what systemd or a terminal sends the group
        os.kill(pid, sig)
    time.sleep(0.2)
    assert helper._child.poll() is None
    assert helper.call([]) == {}  # still answering
    helper.close()
    assert not helper.started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass  # ended and reaped by close()
    else:
        raise AssertionError(f"helper {pid} still runs after close()")


def test_a_helper_that_cannot_start_is_logged_and_not_tried_again_at_once(caplog):
    helper = HelperProcess("hub.no_such_module", "setup", None)
    with caplog.at_level(logging.WARNING, logger="hub.helper_process"):
        assert helper.ready(timeout=60) is False  # no exception: the hub does the work itself
    assert "did not start" in caplog.text and not helper.started
    assert helper.ready(timeout=60) is False and not helper.started  # not respawned at once


def test_a_hub_whose_file_writer_cannot_start_writes_the_files_itself(hub_ws, keys, monkeypatch):
    from adapters.directory import DirectoryOutbox

    outbox = DirectoryOutbox(hub_ws, writer_process=True)
    outbox.writer = HelperProcess("hub.no_such_module", "setup", None)
    outbox.writer_min_files = 1
    outbox.deliver("customs", "CEB311Message_a.xml", b"<a/>")
    assert outbox.flush() == {}
    assert (hub_ws.outbox / "customs" / "CEB311Message_a.xml").read_bytes() == b"<a/>"


def gc_probe(_init):
    """A helper's request handler that tells how its garbage collector is set."""
    import gc

    return lambda _request: (gc.get_threshold()[0], gc.get_freeze_count())


def test_a_helper_freezes_what_it_set_up_and_collects_the_young_less_often():
    from hub.gctune import YOUNG_THRESHOLD

    helper = HelperProcess(__name__, "gc_probe", None)
    try:
        assert helper.ready(timeout=60)
        threshold, frozen = helper.call("how")
    finally:
        helper.close()
    assert threshold == YOUNG_THRESHOLD
    assert frozen > 10_000  # its modules and set-up, walked by no collection again
