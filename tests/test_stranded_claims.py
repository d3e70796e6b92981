"""A claim the running hub lost hold of (a failure between claiming and recording) is recorded
by that same hub a little later, not only at its next start."""

from __future__ import annotations

import os
import time

from sqlalchemy import func, select

from adapters.directory import _host_tag
from hub import config, runner
from hub.runner import Hub
from hub.store.tables import messages
from tests.clearance_support import db
from tests.helpers import drop_orders, files, in_service, statuses, wait_until

DEADLINE = 60.0


def _read_fails_once(monkeypatch) -> None:
    """A bug in reading a batch: the round raises after its files were claimed."""
    real, failed = Hub.read, []

    def read(self, claim, source=None):
        if not failed:
            failed.append(claim)
            raise RuntimeError("a bug while reading a batch")
        return real(self, claim, source)

    monkeypatch.setattr(Hub, "read", read)


def _recorded(ws) -> int:
    with db(ws).connect() as conn:
        return conn.execute(select(func.count()).select_from(messages)).scalar()


def test_the_hub_records_its_own_claims_that_a_failed_round_left_behind(hub_ws, keys, monkeypatch):
    drop_orders(hub_ws, keys, 2)
    _read_fails_once(monkeypatch)
    hub = Hub(hub_ws)
    try:
        try:
            hub._claim_all()
        except RuntimeError:
            pass
        else:
            raise AssertionError("the round did not fail")
        stuck = files(hub_ws.claims / "platform")
        assert len(stuck) == 2 and _recorded(hub_ws) == 0
        # Another live process's claim and a claim just taken are not this pass's to finish.
        other = (
            hub_ws.claims
            / "platform"
            / (
                f"{time.time_ns() - 10**12:x}-0badcafe-{os.getppid()}-{_host_tag(os.uname()[1])}"
                "--theirs.xml"
            )
        )
        other.write_bytes(b"<theirs/>")
        assert hub.finish_stranded() == 0  # the two are younger than the retry interval

        monkeypatch.setattr(runner, "UNFINISHED_RETRY_SECONDS", 0.0)
        assert hub.finish_stranded() == 2
        assert hub.finish_stranded() == 0
        hub.deliver()
    finally:
        hub.close()
    assert files(hub_ws.claims / "platform") == [other]
    assert len(files(hub_ws.archive, "*/*/*.xml")) == 2 and _recorded(hub_ws) == 2
    # each answered once, as any order is (2: received, 120: stored)
    assert sorted(statuses(hub_ws.outbox_of("platform"))) == ["120", "120", "2", "2"]


def test_in_service_a_claim_left_by_a_failed_round_is_recorded_without_a_restart(
    hub_ws, keys, monkeypatch
):
    doc = config.read_document(hub_ws)
    doc["console"]["enabled"] = False
    config.write_document(hub_ws, doc)
    monkeypatch.setattr(runner, "UNFINISHED_RETRY_SECONDS", 0.5)  # the job's interval too
    _read_fails_once(monkeypatch)
    drop_orders(hub_ws, keys, 1)
    with in_service(Hub(hub_ws)):
        wait_until(
            lambda: (
                files(hub_ws.archive, "*/*/*.xml") and len(files(hub_ws.outbox_of("platform"))) >= 1
            ),
            "the stranded claim was never recorded and answered",
        )
    assert not files(hub_ws.claims / "platform") and _recorded(hub_ws) == 1
    assert sorted(statuses(hub_ws.outbox_of("platform"))) == ["120", "2"]


def test_a_claim_whose_finishing_was_given_up_is_left_for_the_next_start(hub_ws, keys, monkeypatch):
    """A recorded file the quarantine keeps refusing is tried `UNFINISHED_TRIES` times, then
    left to the next start as the log says: the stranded-claims pass does not start it over."""
    monkeypatch.setattr(runner, "UNFINISHED_TRIES", 2)
    (hub_ws.inbox_of("platform") / "junk.xml").write_bytes(b"\x00 not xml")
    blocker = hub_ws.quarantine / "platform"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")  # the quarantine folder cannot be made
    hub = Hub(hub_ws)
    try:
        hub.process_claims(hub.inbox.claim(10))
        assert hub.retry_unfinished() == 0  # the second failure: given up
        monkeypatch.setattr(runner, "UNFINISHED_RETRY_SECONDS", 0.0)
        assert hub.finish_stranded() == 0
        hub.deliver()
    finally:
        hub.close()
    [held] = files(hub_ws.claims / "platform")
    assert held.name.endswith("junk.xml") and _recorded(hub_ws) == 1
    assert statuses(hub_ws.outbox_of("platform")) == ["-0001"]  # answered once
