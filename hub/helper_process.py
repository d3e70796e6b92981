"""A helper process of the hub: its own interpreter, one request at a time over a pair of pipes."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, BinaryIO

from hub import gctune

READY = "ready"
RETRY_SECONDS = 60.0  # a helper that failed to start is tried again after this long
# Each pipe's buffer (Linux's default is 64 KiB). A checked batch's answer carries its files'
# bytes, ~0.5 MB for 100 messages: through 64 KiB the two processes took turns, a wake-up
# and a read for each 64 KiB, while the hub's main thread waited. 1 MiB is what a process
# may ask for without privileges (/proc/sys/fs/pipe-max-size).
PIPE_BYTES = 1 << 20
_LENGTH = struct.Struct("<Q")

log = logging.getLogger(__name__)


class HelperProcess:
    """A child `python` that runs `run(<module>.<setup>)`: set up once, then answer requests.

    Not a fork of the hub (which has threads) nor a re-import of its `__main__`; it gets this
    process's import path. It ends when its input is closed, so it never outlives the hub.
    """

    def __init__(self, module: str, setup: str, init: Any) -> None:
        self._entry = f"from {module} import {setup} as s; from {__name__} import run; run(s)"
        self._init = init
        self._child: subprocess.Popen | None = None
        self._ready = False
        self._retry_at = 0.0  # after a failed start: not before this (time.monotonic())

    @property
    def started(self) -> bool:
        return self._child is not None

    def start(self) -> None:
        if self._child is not None:
            return
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._child = subprocess.Popen(
            [sys.executable, "-c", self._entry],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        for stream in (self._child.stdin, self._child.stdout):
            widen_pipe(stream)
        with contextlib.suppress(OSError):  # gone already: `ready` finds out and says so
            self.send(self._init)

    def ready(self, timeout: float = 0) -> bool:
        """Started (now, if it was not) and set up; waits up to `timeout` seconds.

        A helper that fails to start is not a failure of the hub, which then does the work
        itself: it is logged, and not started again for `RETRY_SECONDS`.
        """
        if self._child is None and time.monotonic() < self._retry_at:
            return False
        if self._ready:
            return True
        try:
            self.start()
            assert self._child is not None and self._child.stdout is not None
            answered = bool(select.select([self._child.stdout], [], [], timeout)[0])
            self._ready = answered and self.receive() == READY
        except Exception as exc:  # it died while starting, or answered nonsense
            log.warning("helper process %s did not start: %r", self._entry, exc)
            self.close()
            self._retry_at = time.monotonic() + RETRY_SECONDS
        return self._ready

    def send(self, obj: Any) -> None:
        assert self._child is not None and self._child.stdin is not None
        write_frame(self._child.stdin, obj)

    def receive(self) -> Any:
        assert self._child is not None and self._child.stdout is not None
        return read_frame(self._child.stdout)

    def call(self, obj: Any) -> Any:
        self.send(obj)
        return self.receive()

    def close(self) -> None:
        child, self._child, self._ready = self._child, None, False
        if child is None:
            return
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                # The process ends at the end of its input. One that died already leaves
                # the unsent rest of a request in the buffer, which closing tries to write.
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    def kill(self) -> None:
        """End the process at once (tests: a helper that dies mid-request)."""
        if self._child is not None:
            self._child.kill()


def widen_pipe(stream: BinaryIO, size: int = PIPE_BYTES) -> None:
    """Ask for a larger buffer for the pipe of `stream`; where it is refused, keep the old one."""
    with contextlib.suppress(OSError, AttributeError, ValueError):  # not Linux, or over the limit
        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, size)


def write_frame(stream: BinaryIO, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: BinaryIO) -> Any:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError("the helper process closed its output")
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the helper process closed its output mid-answer")
    return pickle.loads(data)


def run(setup: Callable[[Any], Callable[[Any], Any]]) -> None:
    """In the helper: `setup(init)` gives the request handler; requests until end of input.

    SIGINT and SIGTERM are the hub's to handle (a terminal's Ctrl-C and systemd's stop reach
    the whole group): the helper ends when the hub closes its input, or dies with it.
    """
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print of a library must not land in the answers
    sys.stdout = sys.stderr
    requests = sys.stdin.buffer
    handle = setup(read_frame(requests))
    gctune.settle(freeze=True)  # this process exists to serve the hub, set up for good now
    write_frame(answers, READY)
    while True:
        try:
            request = read_frame(requests)
        except EOFError:  # the hub closed our input: it is done with us
            return
        write_frame(answers, handle(request))
