"""Helper processes: set up once, answer in turn, ignore the group's stop signals, end with the hub."""

from __future__ import annotations

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
