"""SFTP adapter against a real OpenSSH sshd on loopback: pickup, delivery, host keys, faults."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.sftp import (
    HostKeyError,
    RemoteWriteError,
    SftpConnectionError,
    SftpError,
    SftpSession,
    SftpSettings,
    claim_path,
    download,
    finish,
    list_ready,
    upload,
)
from tests.sshd import SshdServer

# The `sshd` and `sshd_factory` fixtures come from the tests.sshd_fixture plugin (conftest).

LARGE_FILE_SIZE = 32 * 1024 * 1024  # far beyond paramiko's 2 MiB window: a drop hits mid-way


def settings_for(server: SshdServer, **overrides: object) -> SftpSettings:
    """Settings for `server`, pulling from root/in and pushing to root/out."""
    values: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "username": server.username,
        "key_file": server.user_key,
        "known_hosts": server.known_hosts,
        "remote_dir": str(server.root / "in"),
        "remote_inbox": str(server.root / "out"),
        "connect_timeout": 5.0,
        "timeout": 10.0,
    }
    values.update(overrides)
    return SftpSettings(**values)


@pytest.fixture
def inbound(sshd: SshdServer) -> Path:
    folder = sshd.root / "in"
    folder.mkdir()
    return folder


@pytest.fixture
def claim(tmp_path: Path) -> Path:
    folder = tmp_path / "claim"
    folder.mkdir()
    return folder


def pull_all(session: SftpSession, settings: SftpSettings, claim: Path) -> list[str]:
    """One poll as the hub will do it: list, download each into the claim, finish."""
    taken = []
    for remote in list_ready(session, settings, {}):
        download(session, remote, claim_path(claim, remote.name))
        finish(session, settings, remote)
        taken.append(remote.name)
    return taken


def sftp_requests(caplog: pytest.LogCaptureFixture, kind: str) -> int:
    return sum(1 for r in caplog.records if r.getMessage().startswith(f"[chan 0] {kind}("))


# Pull


def test_pulls_1000_files_with_one_listing_exactly_once(
    sshd: SshdServer,
    inbound: Path,
    claim: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for i in range(1000):
        (inbound / f"CEB311_{i:04d}.xml").write_bytes(b"<x>%d</x>" % i)
    settings = settings_for(sshd)
    with SftpSession(settings) as session:
        with caplog.at_level(logging.DEBUG, logger="paramiko.transport.sftp"):
            ready = list_ready(session, settings, {})
        # Cheap at scale: one directory listing, no per-file stat or open.
        assert sftp_requests(caplog, "listdir") == 1
        assert sftp_requests(caplog, "stat") + sftp_requests(caplog, "open") == 0
        assert len(ready) == 1000
        for remote in ready:
            download(session, remote, claim_path(claim, remote.name))
            finish(session, settings, remote)
        assert list_ready(session, settings, {}) == []
    assert sorted(p.name for p in claim.iterdir()) == sorted(r.name for r in ready)
    assert (claim / "CEB311_0042.xml").read_bytes() == b"<x>42</x>"
    assert len(list((inbound / "processed").iterdir())) == 1000
    assert [p.name for p in inbound.iterdir()] == ["processed"]


def test_temp_names_folders_and_links_are_not_taken(
    sshd: SshdServer,
    inbound: Path,
    claim: Path,
) -> None:
    for name in [".hidden.xml", "a.xml.tmp", "b.xml.part", "C.XML.PART", "orphan.xml.done"]:
        (inbound / name).write_text("partial")
    (inbound / "folder.xml").mkdir()
    (inbound / "link.xml").symlink_to("/etc/passwd")
    (inbound / "real.xml").write_text("<ok/>")
    settings = settings_for(sshd)
    with SftpSession(settings) as session:
        assert pull_all(session, settings, claim) == ["real.xml"]
    assert [p.name for p in claim.iterdir()] == ["real.xml"]
    assert (inbound / "b.xml.part").exists()


def test_done_file_mode_takes_only_files_with_their_done_file(
    sshd: SshdServer,
    inbound: Path,
    claim: Path,
) -> None:
    (inbound / "waiting.xml").write_text("<w/>")
    (inbound / "complete.xml").write_text("<c/>")
    (inbound / "complete.xml.done").write_text("")
    settings = settings_for(sshd, ready="done-file")
    with SftpSession(settings) as session:
        assert pull_all(session, settings, claim) == ["complete.xml"]
        (inbound / "waiting.xml.done").write_text("")
        assert pull_all(session, settings, claim) == ["waiting.xml"]
    processed = sorted(p.name for p in (inbound / "processed").iterdir())
    assert processed == ["complete.xml", "complete.xml.done", "waiting.xml", "waiting.xml.done"]
    assert list(inbound.iterdir()) == [inbound / "processed"]


def test_stable_size_mode_takes_a_file_on_the_second_unchanged_poll(
    sshd: SshdServer,
    inbound: Path,
) -> None:
    growing = inbound / "growing.xml"
    growing.write_text("<a>")
    settings = settings_for(sshd, ready="stable-size")
    seen: dict[str, int] = {}
    with SftpSession(settings) as session:
        assert list_ready(session, settings, seen) == []
        growing.write_text("<a>more</a>")  # still being written between the polls
        assert list_ready(session, settings, seen) == []
        [ready] = list_ready(session, settings, seen)
        assert (ready.name, ready.size) == ("growing.xml", len("<a>more</a>"))
        growing.unlink()
        assert list_ready(session, settings, seen) == []
    assert seen == {}


def test_finish_replaces_a_processed_namesake_and_is_idempotent(
    sshd: SshdServer,
    inbound: Path,
    claim: Path,
) -> None:
    (inbound / "processed").mkdir()
    (inbound / "processed" / "again.xml").write_text("<old/>")
    (inbound / "again.xml").write_text("<new/>")
    settings = settings_for(sshd)
    with SftpSession(settings) as session:
        [remote] = list_ready(session, settings, {})
        assert finish(session, settings, remote) is True
        assert finish(session, settings, remote) is False  # already finished: no error
    assert (inbound / "processed" / "again.xml").read_text() == "<new/>"
    assert not (inbound / "again.xml").exists()


def test_finish_deletes_when_configured(
    sshd: SshdServer,
    inbound: Path,
) -> None:
    (inbound / "gone.xml").write_text("<g/>")
    (inbound / "gone.xml.done").write_text("")
    settings = settings_for(sshd, after_pickup="delete", ready="done-file")
    with SftpSession(settings) as session:
        [remote] = list_ready(session, settings, {})
        finish(session, settings, remote)
        finish(session, settings, remote)
    assert list(inbound.iterdir()) == []


def test_finish_leaves_a_newer_file_of_the_same_name(
    sshd: SshdServer,
    inbound: Path,
) -> None:
    sent = inbound / "resent.xml"
    sent.write_text("<first/>")
    (inbound / "resent.xml.done").write_text("")
    settings = settings_for(sshd, ready="done-file")
    with SftpSession(settings) as session:
        [first] = list_ready(session, settings, {})
        sent.write_text("<second, longer/>")  # partner re-sent before we finished
        assert finish(session, settings, first) is False
        [second] = list_ready(session, settings, {})
    assert second.size == len("<second, longer/>")
    assert sent.read_text() == "<second, longer/>"
    assert (inbound / "resent.xml.done").exists()


def test_odd_remote_names_never_escape_the_claim_folder(
    sshd: SshdServer,
    inbound: Path,
    tmp_path: Path,
    claim: Path,
) -> None:
    odd = ["new\nline.xml", "back\\..\\slash.xml", "tab\tname.xml", "x" * 240 + ".xml"]
    for name in odd:
        (inbound / name).write_text("<odd/>")
    (inbound / "fine name.xml").write_text("<ok/>")
    settings = settings_for(sshd)
    with SftpSession(settings) as session:
        assert pull_all(session, settings, claim) == ["fine name.xml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["claim"]
    assert [p.name for p in claim.iterdir()] == ["fine name.xml"]
    # Names a hostile server could send in a listing (a real OpenSSH cannot store them).
    for name in ["../x.xml", "a/b.xml", "..", ".", "", "nul\0.xml", "/etc/passwd", *odd]:
        with pytest.raises(ValueError):
            claim_path(claim, name)


def test_a_name_that_is_not_utf8_is_reported_clearly(
    sshd: SshdServer,
    inbound: Path,
) -> None:
    with open(os.path.join(os.fsencode(inbound), b"bad\xff.xml"), "wb") as f:
        f.write(b"<x/>")
    settings = settings_for(sshd)
    with SftpSession(settings) as session, pytest.raises(SftpError, match="not UTF-8"):
        list_ready(session, settings, {})


# Host keys and authentication


def other_host_key_line(server: SshdServer, tmp_path: Path) -> str:
    key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    kind, blob = key.with_suffix(".pub").read_text().split()[:2]
    return f"[{server.host}]:{server.port} {kind} {blob}\n"


def test_a_changed_host_key_is_refused_and_nothing_is_downloaded(
    sshd: SshdServer,
    inbound: Path,
    claim: Path,
    tmp_path: Path,
) -> None:
    (inbound / "secret.xml").write_text("<s/>")
    known = tmp_path / "known_hosts"
    pinned = other_host_key_line(sshd, tmp_path)
    known.write_text(pinned)
    settings = settings_for(sshd, known_hosts=known)
    with pytest.raises(HostKeyError) as caught, SftpSession(settings) as session:
        pull_all(session, settings, claim)
    error = caught.value
    assert not error.retryable
    assert "CHANGED" in str(error) and str(sshd.port) in str(error)
    assert error.expected and error.presented and error.expected != error.presented
    assert error.expected.split()[1] in str(error) and error.presented.split()[1] in str(error)
    assert list(claim.iterdir()) == []
    assert known.read_text() == pinned  # never rewritten with the presented key
    assert (inbound / "secret.xml").exists()


def test_an_unknown_host_is_refused_and_never_added(
    sshd: SshdServer,
    tmp_path: Path,
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    # An entry without the port does not cover a server on another port, as with OpenSSH.
    port22 = tmp_path / "port22_known_hosts"
    port22.write_text(sshd.known_hosts.read_text().replace(f"[{sshd.host}]:{sshd.port}", sshd.host))
    for path in (known, port22):
        with pytest.raises(HostKeyError, match="unknown") as caught:
            SftpSession(settings_for(sshd, known_hosts=path)).open()
        assert not caught.value.retryable and caught.value.presented
    assert known.read_text() == ""


def test_a_hashed_known_hosts_entry_is_accepted(
    sshd: SshdServer,
    inbound: Path,
) -> None:
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(sshd.known_hosts)], check=True)
    assert sshd.known_hosts.read_text().startswith("|1|")
    settings = settings_for(sshd)
    with SftpSession(settings) as session:
        assert list_ready(session, settings, {}) == []


def test_a_refused_user_key_is_a_permanent_connection_error(
    sshd: SshdServer,
    tmp_path: Path,
) -> None:
    stranger = tmp_path / "stranger_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    with pytest.raises(SftpConnectionError) as caught:
        SftpSession(settings_for(sshd, key_file=stranger)).open()
    assert not caught.value.retryable


# Faults


# paramiko's prefetch thread may still be sending read requests when the connection dies;
# it ends with an EOFError of its own, which is expected here and harmless.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dropped_connection_mid_download_leaves_no_local_file(
    sshd: SshdServer,
    inbound: Path,
    claim: Path,
) -> None:
    with open(inbound / "big.xml", "wb") as f:
        f.truncate(LARGE_FILE_SIZE)
    settings = settings_for(sshd)
    progress: list[int] = []

    def drop_once(copied: int) -> None:
        if not progress:
            sshd.drop_connections()  # the server side of the session dies now
        progress.append(copied)

    with SftpSession(settings) as session:
        [remote] = list_ready(session, settings, {})
        with pytest.raises(SftpConnectionError) as caught:
            download(session, remote, claim_path(claim, remote.name), progress=drop_once)
        assert caught.value.retryable
        assert not session.is_alive()
    assert 0 < progress[-1] < LARGE_FILE_SIZE
    assert list(claim.iterdir()) == []
    assert (inbound / "big.xml").exists()  # not finished: the next poll takes it again


def test_a_server_outage_fails_retryably_then_recovers(
    sshd: SshdServer,
    inbound: Path,
    claim: Path,
) -> None:
    (inbound / "before.xml").write_text("<b/>")
    settings = settings_for(sshd)
    session = SftpSession(settings)
    session.open()
    sshd.stop()
    with pytest.raises(SftpConnectionError) as during_session:
        list_ready(session, settings, {})
    assert during_session.value.retryable
    started = time.monotonic()
    while time.monotonic() - started < 2:  # a short outage stands for a long one
        with pytest.raises(SftpConnectionError) as refused:
            SftpSession(settings).open()
        assert refused.value.retryable
        time.sleep(0.5)
    sshd.start()
    with SftpSession(settings) as session:
        assert pull_all(session, settings, claim) == ["before.xml"]


# Push


@pytest.fixture
def outbox(sshd: SshdServer) -> Path:
    folder = sshd.root / "out"
    folder.mkdir()
    return folder


def test_upload_shows_only_the_final_name_and_replaces_on_resend(
    sshd: SshdServer,
    outbox: Path,
) -> None:
    settings = settings_for(sshd)
    with SftpSession(settings) as session:
        path = upload(session, settings, "CEB312_abc.xml", b"<first/>")
        assert path == str(outbox / "CEB312_abc.xml")
        assert [p.name for p in outbox.iterdir()] == ["CEB312_abc.xml"]
        upload(session, settings, "CEB312_abc.xml", b"<second/>")
    assert [p.name for p in outbox.iterdir()] == ["CEB312_abc.xml"]
    assert (outbox / "CEB312_abc.xml").read_bytes() == b"<second/>"


def test_upload_into_a_folder_without_write_permission_fails_permanently(
    sshd: SshdServer,
    outbox: Path,
) -> None:
    # As root, chmod does not stop us: the session logs in as an unprivileged user instead
    # (ourselves when not root, else the dedicated user the sshd helper creates).
    outbox.chmod(0o555)
    settings = settings_for(sshd, username=sshd.unprivileged_username)
    with SftpSession(settings) as session:
        with pytest.raises(RemoteWriteError, match="permission denied") as caught:
            upload(session, settings, "CEB312_abc.xml", b"<r/>")
        assert not caught.value.retryable
    assert list(outbox.iterdir()) == []


def test_upload_onto_a_full_disk_fails_retryably_and_leaves_nothing(
    sshd_factory: Callable[..., SshdServer],
) -> None:
    # The server's file size limit (RLIMIT_FSIZE) makes its writes fail as on a full disk.
    small = sshd_factory(max_file_size=1024 * 1024)
    outbox = small.root / "out"
    outbox.mkdir()
    settings = settings_for(small)
    with SftpSession(settings) as session:
        with pytest.raises(RemoteWriteError) as caught:
            upload(session, settings, "CEB312_big.xml", b"x" * (2 * 1024 * 1024))
        assert caught.value.retryable
        assert list(outbox.iterdir()) == []
        upload(session, settings, "CEB312_small.xml", b"<fits/>")  # the session still works
    assert [p.name for p in outbox.iterdir()] == ["CEB312_small.xml"]


def test_upload_refuses_unsafe_names(
    sshd: SshdServer,
    outbox: Path,
) -> None:
    settings = settings_for(sshd)
    with SftpSession(settings) as session:
        for name in ["../escape.xml", "a/b.xml", ".hidden.xml", "x.xml.part", "nl\n.xml"]:
            with pytest.raises(ValueError):
                upload(session, settings, name, b"<x/>")
    assert list(outbox.iterdir()) == []
    assert sorted(p.name for p in sshd.root.iterdir()) == ["out"]
