"""The hub pulling from and pushing to partners' SFTP servers (a real OpenSSH sshd), with faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

import adapters.sftp_source as sftp_source
from hub import codes, config
from hub.faults import ENV as CRASH_ENV
from hub.generator import DEMO_PARTIES, make_purchases, order_message, to_bytes
from hub.runner import Hub
from hub.store.db import dispose_all, engine_for
from hub.store.states import DeliveryState
from hub.store.tables import deliveries
from tests.helpers import cli, counts, files, statuses
from tests.helpers import status_json as status
from tests.sshd import SshdServer

CEBHUB = str(Path(sys.executable).parent / "cebhub")
PLATFORM_CODES = f"{DEMO_PARTIES.ebp_code},{DEMO_PARTIES.ebc_code}"
BIG_FILE_SIZE = 6 * 1024 * 1024  # past paramiko's 2 MiB window, under the 10 MiB message limit


def add_sftp_partner(ws, server: SshdServer, pid: str, *extra: object, known_hosts=None) -> None:
    remote = server.root / pid
    (remote / "outbox").mkdir(parents=True)
    (remote / "inbox").mkdir()
    args = ["partner", "add", pid, "--transport", "sftp", "--sftp-host", server.host]
    args += ["--sftp-port", server.port, "--sftp-user", server.username]
    args += ["--sftp-key", server.user_key, "--known-hosts", known_hosts or server.known_hosts]
    args += ["--remote-dir", remote / "outbox", "--remote-inbox", remote / "inbox"]
    args += ["--poll-seconds", "1", *extra]
    assert cli(ws, *args) == 0


def fast_retries(ws) -> None:
    doc = config.read_document(ws)
    doc["delivery"]["backoff_seconds"] = 0.01
    doc["delivery"]["backoff_cap_seconds"] = 0.02
    config.write_document(ws, doc)


@pytest.fixture
def sftp_ws(ws, keys, sshd):
    """The platform pulls from and receives receipts on `sshd`; customs and inspection are folders."""
    add_sftp_partner(
        ws, sshd, "platform", "--role", "platform", "--codes", PLATFORM_CODES,
        "--cert", keys["platform"].cert_path,
    )  # fmt: skip
    assert cli(ws, "partner", "add", "customs", "--role", "customs", "--codes", "CUSTOMS") == 0
    assert cli(ws, "partner", "add", "inspection", "--role", "inspection", "--codes", "CIQ") == 0
    fast_retries(ws)
    return ws


def remote(server: SshdServer, pid: str = "platform") -> Path:
    return server.root / pid


def put_orders(folder: Path, keys, n: int, *, seed: int = 1, prefix: str = "order") -> None:
    """Signed CEB311 files as a partner uploads them: temp name, then rename."""
    for i, p in enumerate(make_purchases(n, seed=seed)):
        data = to_bytes(order_message([p], DEMO_PARTIES, sign=keys["platform"].sign))
        tmp = folder / f"{prefix}-{i:04d}.xml.part"
        tmp.write_bytes(data)
        os.replace(tmp, folder / f"{prefix}-{i:04d}.xml")


def adapter(data: dict, name: str) -> dict:
    return next(a for a in data["adapters"] if a["name"] == name)


def delivery_rows(ws, partner: str) -> list:
    engine = engine_for(config.load(ws), ws)
    with engine.connect() as conn:
        return conn.execute(
            select(deliveries.c.state, deliveries.c.attempts, deliveries.c.last_error).where(
                deliveries.c.partner_id == partner
            )
        ).all()


# ---------------------------------------------------------------- acceptance: the pull


def test_thousand_files_pulled_processed_once_and_answered_on_the_partners_server(
    sftp_ws, keys, sshd
):
    outbox = remote(sshd) / "outbox"
    put_orders(outbox, keys, 1000)
    # Being uploaded: temp-named, hidden, and (below) one waiting for nothing: all left alone.
    (outbox / "late.xml.part").write_bytes(b"<partial")
    (outbox / ".uploading.xml").write_bytes(b"<partial")
    Hub(sftp_ws).run_once()

    assert counts(sftp_ws) == {"messages": 1000, "accepted": 1000, "orders": 1000, "receipts": 2000}
    processed = remote(sshd) / "outbox" / "processed"
    assert len(files(processed)) == 1000
    assert sorted(p.name for p in outbox.iterdir()) == [
        ".uploading.xml",
        "late.xml.part",
        "processed",
    ]
    # Receipts were pushed to the partner's own server, each once, none left half-written.
    inbox = remote(sshd) / "inbox"
    codes = statuses(inbox, "CEB312Message")
    assert sorted(set(codes)) == ["120", "2"] and len(codes) == 2000
    assert len(files(inbox)) == 1000 and not list(inbox.glob(".*"))  # 2 and 120 in each
    assert len(files(sftp_ws.outbox_of("customs"))) == 1000
    assert not files(sftp_ws.outbox_of("platform"))  # not a folder partner: nothing written here
    assert not list((sftp_ws.claims / "platform").iterdir())
    assert len(files(sftp_ws.archive / "platform", "*/*")) == 1000
    assert {r.state for r in delivery_rows(sftp_ws, "platform")} == {DeliveryState.DELIVERED}
    data = status(sftp_ws)
    assert adapter(data, "sftp-pull:platform")["up"] is True
    assert adapter(data, "sftp-push:platform")["up"] is True

    # A second run finds nothing new: no second effect, no second receipt.
    Hub(sftp_ws).run_once()
    assert counts(sftp_ws)["messages"] == 1000 and len(files(inbox)) == 1000


def test_the_pull_tells_how_many_listed_files_it_has_not_taken_yet(sftp_ws, keys, sshd):
    """The hub records a batch in the round that took it once a source has nothing more
    (`Hub._claim_all`): the SFTP pull says so from its listing, without listing again."""
    put_orders(remote(sshd) / "outbox", keys, 30)
    hub = Hub(sftp_ws)
    try:
        source = next(s for s in hub.sources if s.name == "sftp-pull:platform")
        assert len(source.claim(10)) == 10 and source.backlog() == 20
        assert len(source.claim(100)) == 20 and source.backlog() == 0
    finally:
        hub.close()


def test_done_file_partner_waits_for_the_done_file(ws, keys, sshd):
    add_sftp_partner(
        ws, sshd, "platform", "--role", "platform", "--codes", PLATFORM_CODES,
        "--cert", keys["platform"].cert_path, "--ready", "done-file",
    )  # fmt: skip
    outbox = remote(sshd) / "outbox"
    put_orders(outbox, keys, 2)
    (outbox / "order-0001.xml.done").write_text("")
    Hub(ws).run_once()
    assert counts(ws)["messages"] == 1
    assert sorted(p.name for p in outbox.iterdir()) == ["order-0000.xml", "processed"]
    (outbox / "order-0000.xml.done").write_text("")
    Hub(ws).run_once()
    assert counts(ws)["messages"] == 2
    assert sorted(p.name for p in (outbox / "processed").iterdir()) == [
        "order-0000.xml", "order-0000.xml.done", "order-0001.xml", "order-0001.xml.done",
    ]  # fmt: skip


def test_partner_add_sftp_writes_one_table_the_adapter_reads(ws, tmp_path):
    from adapters.sftp import AfterPickup, ReadyRule, settings_for_partner

    key, known = tmp_path / "id", tmp_path / "known_hosts"
    key.write_text("key")
    known.write_text("")
    base = ["partner", "add", "edi", "--role", "customs", "--codes", "CUSTOMS"]
    sftp = ["--transport", "sftp", "--sftp-host", "sftp.example", "--sftp-user", "hub"]
    assert cli(ws, *base, *sftp, "--sftp-key", key) != 0  # no --known-hosts: refused
    assert cli(ws, *base, *sftp, "--sftp-key", tmp_path / "nope", "--known-hosts", known) != 0
    assert cli(ws, *base, "--sftp-host", "sftp.example") != 0  # sftp options need sftp
    assert "edi" not in config.load(ws).partners
    more = [
        "--sftp-key",
        key,
        "--known-hosts",
        known,
        "--sftp-port",
        "2222",
        "--ready",
        "done-file",
    ]
    more += ["--remote-dir", "/out", "--remote-inbox", "/in", "--after-pickup", "delete"]
    assert cli(ws, *base, *sftp, *more, "--poll-seconds", "5") == 0
    partner = config.load(ws).partners["edi"]
    assert partner.sftp.poll_seconds == 5.0
    s = settings_for_partner(partner, ws)
    assert (s.host, s.port, s.username, s.key_file, s.known_hosts) == (
        "sftp.example", 2222, "hub", key, known,
    )  # fmt: skip
    assert (s.remote_dir, s.remote_inbox, s.processed_path) == ("/out", "/in", "/out/processed")
    assert (s.after_pickup, s.ready) == (AfterPickup.DELETE, ReadyRule.DONE_FILE)


# ---------------------------------------------------------------- faults


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_connection_dropped_mid_download_nothing_lost_nothing_twice(
    sftp_ws, keys, sshd, monkeypatch
):
    outbox = remote(sshd) / "outbox"
    put_orders(outbox, keys, 5)
    with open(outbox / "big.xml", "wb") as f:
        f.truncate(BIG_FILE_SIZE)
    os.utime(outbox / "big.xml", (1, 1))  # the oldest: downloaded first
    real_download = sftp_source.download
    dropped: list[int] = []

    def dropping(session, remote_file, local, progress=None):
        def drop_once(copied: int) -> None:
            if not dropped:
                dropped.append(copied)
                sshd.drop_connections()  # the server side of the session dies mid-file

        return real_download(session, remote_file, local, progress=drop_once)

    monkeypatch.setattr(sftp_source, "download", dropping)
    hub = Hub(sftp_ws)
    hub.run_once()
    assert dropped
    data = status(sftp_ws)
    pull = adapter(data, "sftp-pull:platform")
    assert pull["up"] is False and "connection lost" in pull["last_error"]
    assert counts(sftp_ws)["messages"] == 0  # nothing half-read was taken
    assert not list((sftp_ws.claims / "platform").iterdir())

    Hub(sftp_ws).run_once()  # the next run (or poll) takes everything again
    assert counts(sftp_ws)["messages"] == 6 and counts(sftp_ws)["accepted"] == 5
    assert len(files(remote(sshd) / "outbox" / "processed")) == 6
    # The junk file is quarantined once with its receipt; the orders each answered once.
    assert len(files(sftp_ws.quarantine / "platform", "sftp-*big.xml")) == 1
    assert sorted(statuses(remote(sshd) / "inbox", "CEB312Message")) == ["120"] * 5 + ["2"] * 5
    assert statuses(remote(sshd) / "inbox", "CEB900Message") == [codes.FORMAT_ERROR]
    assert adapter(status(sftp_ws), "sftp-pull:platform")["up"] is True


def test_server_stopped_then_restarted_deliveries_retry_and_pull_resumes(sftp_ws, keys, sshd):
    outbox = remote(sshd) / "outbox"
    put_orders(outbox, keys, 3)
    hub = Hub(sftp_ws)
    source = next(s for s in hub.sources if s.name == "sftp-pull:platform")
    hub.process_claims(source.claim(100), source)  # recorded; receipts not pushed yet
    sshd.stop()
    put_orders(outbox, keys, 2, seed=2, prefix="later")  # arrives while the server is down
    hub.run_once()  # must not hang or fail
    data = status(sftp_ws)
    assert adapter(data, "sftp-pull:platform")["up"] is False
    push = adapter(data, "sftp-push:platform")
    assert push["up"] is False and push["last_error"]
    assert data["delivery_backlog"]["by_partner"]["platform"] == {"retrying": 3}
    assert all(r.attempts >= 1 and r.last_error for r in delivery_rows(sftp_ws, "platform"))
    assert counts(sftp_ws)["messages"] == 3
    assert len(files(sftp_ws.outbox_of("customs"))) == 3  # the other partners were served

    sshd.start()  # same port, same host key
    Hub(sftp_ws).run_once()
    assert counts(sftp_ws) == {"messages": 5, "accepted": 5, "orders": 5, "receipts": 10}
    assert len(files(remote(sshd) / "inbox")) == 5
    assert {r.state for r in delivery_rows(sftp_ws, "platform")} == {DeliveryState.DELIVERED}
    assert len(files(outbox / "processed")) == 5
    data = status(sftp_ws)
    assert adapter(data, "sftp-pull:platform")["up"] is True
    assert adapter(data, "sftp-push:platform")["up"] is True
    assert data["delivery_backlog"]["retrying"] == 0


def test_wrong_host_key_is_refused_visible_and_retried_once_fixed(ws, keys, sshd, tmp_path):
    wrong = tmp_path / "known_hosts"
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, blob = other.with_suffix(".pub").read_text().split()[:2]
    wrong.write_text(f"[{sshd.host}]:{sshd.port} {kind} {blob}\n")
    add_sftp_partner(
        ws, sshd, "platform", "--role", "platform", "--codes", PLATFORM_CODES,
        "--cert", keys["platform"].cert_path, known_hosts=wrong,
    )  # fmt: skip
    outbox = remote(sshd) / "outbox"
    put_orders(outbox, keys, 2)
    Hub(ws).run_once()
    pull = adapter(status(ws), "sftp-pull:platform")
    assert pull["up"] is False and "CHANGED" in pull["last_error"]
    assert counts(ws)["messages"] == 0 and not files(outbox / "processed")
    assert wrong.read_text().split()[2] == blob  # never replaced by the presented key

    wrong.write_text(sshd.known_hosts.read_text())  # ops checked the key with the partner
    Hub(ws).run_once()
    assert counts(ws)["accepted"] == 2
    assert adapter(status(ws), "sftp-pull:platform")["up"] is True


def test_full_remote_disk_on_push_retried_until_there_is_room(ws, keys, sshd_factory):
    small = sshd_factory(max_file_size=64)  # every receipt is bigger: writes fail as on a full disk
    add_sftp_partner(
        ws, small, "platform", "--role", "platform", "--codes", PLATFORM_CODES,
        "--cert", keys["platform"].cert_path,
    )  # fmt: skip
    fast_retries(ws)
    put_orders(remote(small) / "outbox", keys, 2)
    Hub(ws).run_once()
    assert counts(ws)["accepted"] == 2  # the pull itself needs no disk on the server
    rows = delivery_rows(ws, "platform")
    assert {r.state for r in rows} == {DeliveryState.PENDING}
    assert all("disk full" in r.last_error for r in rows)
    data = status(ws)
    assert data["delivery_backlog"]["retrying"] == 2
    assert "disk full" in adapter(data, "sftp-push:platform")["last_error"]
    inbox = remote(small) / "inbox"
    assert list(inbox.iterdir()) == []  # no partial file, no temp file left

    small.stop()
    small.max_file_size = None  # room again
    small.start()
    Hub(ws).run_once()
    assert {r.state for r in delivery_rows(ws, "platform")} == {DeliveryState.DELIVERED}
    assert sorted(statuses(inbox, "CEB312Message")) == ["120", "120", "2", "2"]
    assert counts(ws)["messages"] == 2


def test_one_partner_down_never_blocks_another(ws, keys, sshd_factory):
    up, down = sshd_factory(), sshd_factory()
    add_sftp_partner(
        ws, up, "platform", "--role", "platform", "--codes", PLATFORM_CODES,
        "--cert", keys["platform"].cert_path,
    )  # fmt: skip
    add_sftp_partner(ws, down, "customs", "--role", "customs", "--codes", "CUSTOMS")
    assert cli(ws, "partner", "add", "inspection", "--role", "inspection", "--codes", "CIQ") == 0
    fast_retries(ws)
    down.stop()
    put_orders(remote(up) / "outbox", keys, 3)
    Hub(ws).run_once()
    assert counts(ws)["accepted"] == 3
    assert len(files(remote(up) / "inbox")) == 3  # receipts pushed to the platform
    assert len(files(ws.outbox_of("inspection"))) == 3
    customs = delivery_rows(ws, "customs")
    assert len(customs) == 3 and {r.state for r in customs} == {DeliveryState.PENDING}
    data = status(ws)
    assert adapter(data, "sftp-pull:customs")["up"] is False
    assert adapter(data, "sftp-pull:platform")["up"] is True
    down.start()
    deadline = time.monotonic() + 60
    while len(files(remote(down, "customs") / "inbox")) < 3:  # once its retry is due
        assert time.monotonic() < deadline, delivery_rows(ws, "customs")
        Hub(ws).run_once()
    assert {r.state for r in delivery_rows(ws, "customs")} == {DeliveryState.DELIVERED}


# ---------------------------------------------------------------- a kill, then a restart


def _cebhub(ws, *args, crash: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash:
        env[CRASH_ENV] = crash
    return subprocess.run(
        [CEBHUB, "-w", str(ws.root), *args], env=env, capture_output=True, timeout=120
    )


@pytest.mark.parametrize("point", ["after-claim", "after-commit"])
def test_hub_killed_between_download_and_remote_move_no_second_effect(sftp_ws, keys, sshd, point):
    outbox = remote(sshd) / "outbox"
    put_orders(outbox, keys, 4)
    killed = _cebhub(sftp_ws, "run", "--once", crash=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert len(files(outbox)) == 4  # downloaded, but never moved on the server
    assert len(files(sftp_ws.claims / "platform", "sftp-*")) == 4
    done = _cebhub(sftp_ws, "run", "--once")
    assert done.returncode == 0, done.stderr.decode()[-2000:]

    dispose_all()
    assert counts(sftp_ws) == {"messages": 4, "accepted": 4, "orders": 4, "receipts": 8}
    assert files(outbox) == [] and len(files(outbox / "processed")) == 4
    assert sorted(statuses(remote(sshd) / "inbox")) == ["120"] * 4 + ["2"] * 4
    assert not list((sftp_ws.claims / "platform").iterdir())
    assert len(files(sftp_ws.archive / "platform", "*/*")) == 4


def test_running_hub_polls_on_the_partners_interval_and_stops_cleanly(sftp_ws, keys, sshd):
    doc = config.read_document(sftp_ws)
    doc["console"]["enabled"] = False
    config.write_document(sftp_ws, doc)
    proc = subprocess.Popen(
        [CEBHUB, "-w", str(sftp_ws.root), "run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        outbox = remote(sshd) / "outbox"
        for seed in (1, 2):  # the second batch lands while the hub is idle: a later poll takes it
            put_orders(outbox, keys, 2, seed=seed, prefix=f"batch{seed}")
            deadline = time.monotonic() + 60
            while len(files(outbox / "processed")) < 2 * seed:
                assert time.monotonic() < deadline, proc.stderr.peek() if proc.stderr else ""
                time.sleep(0.1)
        deadline = time.monotonic() + 60
        while len(files(remote(sshd) / "inbox")) < 4:  # receipts pushed by the running hub
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
    dispose_all()
    assert counts(sftp_ws)["accepted"] == 4
