"""Recorded folder claims are archived by a thread of their own while the hub runs; a rename
that fails there comes back to the runner's retries, and none is left behind at the end."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from adapters.directory import DirectoryInbox
from hub.archiver import Archiver
from hub.runner import Hub
from tests.helpers import drop_orders, files, statuses


@dataclass(frozen=True)
class _Claim:
    name: str


class _Source:
    """Archives by name; refuses the names in `refuse`; each archive waits for `gate`."""

    def __init__(self, refuse: set[str]) -> None:
        self.refuse = refuse
        self.archived: list[str] = []
        self.threads: set[str] = set()
        self.gate = threading.Event()

    def archive(self, claim: _Claim) -> None:
        self.gate.wait(10)
        self.threads.add(threading.current_thread().name)
        if claim.name in self.refuse:
            raise OSError(13, "Permission denied", claim.name)
        self.archived.append(claim.name)


def test_the_archiver_renames_in_its_thread_and_hands_back_what_failed():
    source = _Source(refuse={"b"})
    archiver = Archiver()
    try:
        for name in "abc":
            archiver.put(source, _Claim(name), "disposition")
        assert archiver.held() == {"a", "b", "c"}  # handed over, not done: still held
        assert not archiver.wait(timeout=0.05)
        source.gate.set()
        assert archiver.wait(timeout=10)
        assert archiver.held() == set()
        assert source.archived == ["a", "c"] and source.threads == {"archiver"}
        [(failed_source, claim, disposition)] = archiver.failed()
        assert (failed_source, claim, disposition) == (source, _Claim("b"), "disposition")
        assert archiver.failed() == []  # handed back once
        archiver.put(source, _Claim("d"), "disposition")
    finally:
        archiver.stop()  # archives what is queued before it ends
    assert source.archived == ["a", "c", "d"]


def test_a_run_archives_every_file_even_when_the_thread_s_rename_fails(hub_ws, keys, monkeypatch):
    names = drop_orders(hub_ws, keys, 6)
    real, refused = DirectoryInbox.archive, []

    def archive(self, claim):
        if threading.current_thread().name == "archiver" and not refused:
            refused.append(claim.name)  # the first in the thread fails; the runner retries it
            raise OSError(28, "No space left on device", str(claim.path))
        return real(self, claim)

    monkeypatch.setattr(DirectoryInbox, "archive", archive)
    Hub(hub_ws).run_once()

    assert refused, "no archive ran in the archiver thread"
    assert files(hub_ws.claims / "platform") == []  # nothing left claimed
    archived = sorted(p.name.partition("--")[2] for p in hub_ws.archive.rglob("*.xml"))
    assert archived == sorted(names)
    assert statuses(hub_ws.outbox_of("platform")).count("120") == 6  # each answered once
