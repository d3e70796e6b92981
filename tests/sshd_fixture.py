"""Pytest plugin: the `sshd` and `sshd_factory` fixtures, a real OpenSSH server per test."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from tests.sshd import INSTALL_HINT, SshdServer, running_sshd, sshd_installed


@pytest.fixture
def sshd_factory() -> Iterator[Callable[..., SshdServer]]:
    """Starts servers on demand (e.g. max_file_size=...); all are stopped after the test."""
    if not sshd_installed():
        pytest.fail(INSTALL_HINT, pytrace=False)  # CI installs it: a skip would hide a gap
    with contextlib.ExitStack() as stack:

        def make(**options: object) -> SshdServer:
            return stack.enter_context(running_sshd(**options))

        yield make


@pytest.fixture
def sshd(sshd_factory: Callable[..., SshdServer]) -> SshdServer:
    """A running sshd; fails (never skips) when openssh-server is not installed."""
    return sshd_factory()
