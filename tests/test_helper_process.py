"""Helper processes: set up once, answer in turn, ignore the group's stop signals, end with the hub."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

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


def test_a_helper_that_died_fails_the_request_and_closes_without_an_error():
    """A request to a dead helper fails as a write to a closed pipe; closing it then must not
    raise again for the unsent request (the caller wraps the first error in its own)."""
    helper = HelperProcess("adapters.durable", "setup_writer", None)
    assert helper.ready(timeout=60)
    helper.kill()
    helper._child.wait(timeout=60)
    try:
        helper.call([])  # small: it waits in the buffer when the write fails
    except (OSError, EOFError):
        pass
    else:
        raise AssertionError("a dead helper answered")
    helper.close()
    assert not helper.started


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


def echo_setup(_init):
    """A helper that answers each request with `request` bytes of its own."""
    return lambda size: os.urandom(size)


def test_a_helpers_pipes_hold_a_whole_batch_answer_and_a_large_answer_arrives_whole():
    import fcntl

    from hub.helper_process import PIPE_BYTES

    helper = HelperProcess(__name__, "echo_setup", None)
    try:
        assert helper.ready(timeout=60)
        limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
        allowed = limit >= PIPE_BYTES or os.geteuid() == 0  # root may go past the limit
        for stream in (helper._child.stdin, helper._child.stdout):
            size = fcntl.fcntl(stream.fileno(), fcntl.F_GETPIPE_SZ)
            assert size == (PIPE_BYTES if allowed else 65536)
        # An answer larger than the pipe (3 MB) comes in one piece, and so does the next.
        assert len(helper.call(3_000_000)) == 3_000_000
        assert len(helper.call(600_000)) == 600_000
    finally:
        helper.close()
