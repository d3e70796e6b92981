"""The outbox makes a round's files durable with one syncfs, or per-file fsyncs where there is none."""

from __future__ import annotations

import os
import sys

import pytest

from adapters import durable, unnamed
from adapters.directory import DirectoryOutbox
from hub.workspace import Workspace


def _deliver_round(ws: Workspace, count: int) -> list[str]:
    outbox = DirectoryOutbox(ws)
    names = []
    for i in range(count):
        name = f"CEB312Message_{i:04d}.xml"
        outbox.deliver("ebp" if i % 2 else "customs", name, f"<m n='{i}'/>".encode())
        names.append(name)
    # Before the flush a partner sees only temp names, which its pickup ignores.
    assert all(p.name.startswith(".") for p in ws.outbox.rglob("*") if p.is_file())
    outbox.flush()
    return names


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs is Linux's")
def test_linux_uses_one_syncfs_per_filesystem_per_step(ws, monkeypatch):
    assert durable.SYNCFS is not None
    calls = []
    real = durable.SYNCFS
    monkeypatch.setattr(durable, "SYNCFS", lambda fd: calls.append(fd) or real(fd))
    names = _deliver_round(ws, 40)
    assert len(calls) == 2  # the contents, then the new names: not 40 + 2 fsyncs
    found = sorted(p.name for p in ws.outbox.rglob("*.xml"))
    assert found == sorted(names)
    assert (ws.outbox / "customs" / names[0]).read_bytes() == b"<m n='0'/>"


def test_without_syncfs_every_file_and_folder_is_fsynced(ws, monkeypatch):
    monkeypatch.setattr(durable, "SYNCFS", None)
    synced = []
    real = durable.fsync_path
    monkeypatch.setattr(durable, "fsync_path", lambda p: synced.append(p) or real(p))
    names = _deliver_round(ws, 10)
    assert len(synced) == 10 + 2  # each temp file, then each of the two folders
    assert sorted(p.name for p in ws.outbox.rglob("*.xml")) == sorted(names)
    assert not [p for p in ws.outbox.rglob(".*.tmp")]


def test_a_failed_syncfs_is_an_error_and_no_name_appears(ws, monkeypatch):
    def failing(fd: int) -> int:
        durable.ctypes.set_errno(5)  # EIO, as write-back failure reports it
        return -1

    monkeypatch.setattr(durable, "SYNCFS", failing)
    outbox = DirectoryOutbox(ws)
    outbox.deliver("customs", "CEB312Message_x.xml", b"<m/>")
    with pytest.raises(OSError, match="syncfs failed"):
        outbox.flush()
    assert not list(ws.outbox.rglob("*.xml"))  # never renamed into place: it will be retried


def test_one_folder_is_kept_per_filesystem(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    assert durable.one_per_filesystem([a, b, a]) == [a]
    if os.path.isdir("/proc/self") and os.stat("/proc").st_dev != os.stat(tmp_path).st_dev:
        assert len(durable.one_per_filesystem([a, durable.Path("/proc")])) == 2


def _writer_outbox(ws: Workspace) -> DirectoryOutbox:
    outbox = DirectoryOutbox(ws, writer_process=True)
    outbox.writer_min_files = 1
    assert outbox.writer is not None and outbox.writer.ready(timeout=60)
    return outbox


def test_a_large_round_is_written_by_the_file_writer_process(ws, monkeypatch):
    outbox = _writer_outbox(ws)
    here = []
    monkeypatch.setattr("adapters.directory.write_round", lambda files: here.append(files))
    try:
        for i in range(30):
            outbox.deliver("customs", f"CEB311Message_{i:03d}.xml", f"<m n='{i}'/>".encode())
        assert outbox.flush() == {}
    finally:
        outbox.close()
    assert here == []  # not one file written by the hub's own process
    found = sorted(p.name for p in (ws.outbox / "customs").iterdir())
    assert found == [f"CEB311Message_{i:03d}.xml" for i in range(30)]  # no temp file left
    assert (ws.outbox / "customs" / "CEB311Message_007.xml").read_bytes() == b"<m n='7'/>"


@pytest.mark.parametrize("in_process", [True, False])
def test_a_folder_gone_mid_round_fails_only_its_own_files(ws, in_process):
    outbox = DirectoryOutbox(ws) if in_process else _writer_outbox(ws)
    try:
        outbox.deliver("customs", "CEB311Message_a.xml", b"<a/>")
        outbox.deliver("platform", "CEB312Message_b.xml", b"<b/>")
        outbox.deliver("customs", "CEB311Message_c.xml", b"<c/>")
        (ws.outbox / "customs").rmdir()  # ops moved the folder away between rows and flush
        refused = outbox.flush()
        assert set(refused) == {
            ("customs", "CEB311Message_a.xml"),
            ("customs", "CEB311Message_c.xml"),
        }
        assert [p.name for p in (ws.outbox / "platform").iterdir()] == ["CEB312Message_b.xml"]
        outbox.deliver("customs", "CEB311Message_a.xml", b"<a/>")  # the retry makes it again
        assert outbox.flush() == {}
        assert (ws.outbox / "customs" / "CEB311Message_a.xml").read_bytes() == b"<a/>"
    finally:
        outbox.close()


def test_a_file_writer_that_dies_fails_the_round_which_is_retried_by_a_new_one(ws):
    outbox = _writer_outbox(ws)
    try:
        outbox.deliver("customs", "CEB311Message_a.xml", b"<a/>")
        outbox.writer.kill()
        with pytest.raises(OSError, match="file-writer process failed"):
            outbox.flush()
        outbox.discard()  # as the delivery round does after a failed flush
        assert not list(ws.outbox.rglob("*.xml")) and not list(ws.outbox.rglob(".*.tmp"))
        outbox.deliver("customs", "CEB311Message_a.xml", b"<a/>")
        assert outbox.writer.ready(timeout=60)  # a new process
        assert outbox.flush() == {}
        assert (ws.outbox / "customs" / "CEB311Message_a.xml").read_bytes() == b"<a/>"
    finally:
        outbox.close()


def _fresh_probe(monkeypatch) -> None:
    monkeypatch.setattr(unnamed, "_found", {})  # each test finds the filesystem's way anew
    monkeypatch.setattr(unnamed, "_folders", {})


def _entries_at_sync(monkeypatch) -> list[list[str]]:
    """The outbox folders' entries at the moment the round's contents are made durable."""
    seen = []
    real = durable.make_durable

    def recording(paths):
        folders = sorted({os.path.dirname(p) for p in paths})
        seen.append(sorted(n for f in folders for n in os.listdir(f)))
        return real(paths)

    monkeypatch.setattr(durable, "make_durable", recording)
    return seen


@pytest.mark.skipif(not unnamed.O_TMPFILE, reason="O_TMPFILE is Linux's")
def test_files_are_written_unnamed_and_linked_where_the_filesystem_allows(ws, monkeypatch):
    _fresh_probe(monkeypatch)
    (ws.outbox / "customs").mkdir(parents=True)
    linker = unnamed.linker_for(str(ws.outbox / "customs"), str(ws.outbox / "customs" / ".p"))
    assert list((ws.outbox / "customs").iterdir()) == []  # the probe left nothing
    seen = _entries_at_sync(monkeypatch)
    names = _deliver_round(ws, 6)
    if linker is not None:
        assert seen == [[]]  # no temp name: the files had no name until they were durable
    else:  # no permission to link here (no root, no /proc link): temp names, renamed
        assert len(seen[0]) == 6 and all(n.endswith(".tmp") for n in seen[0])
    assert sorted(p.name for p in ws.outbox.rglob("*") if p.is_file()) == sorted(names)
    assert (ws.outbox / "customs" / names[0]).read_bytes() == b"<m n='0'/>"
    mode = (ws.outbox / "customs" / names[0]).stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # as a file opened by name


def test_a_file_written_again_replaces_the_one_there(ws, monkeypatch):
    _fresh_probe(monkeypatch)
    outbox = DirectoryOutbox(ws)
    outbox.deliver("customs", "CEB311Message_a.xml", b"<first/>")
    assert outbox.flush() == {}
    outbox.deliver("customs", "CEB311Message_a.xml", b"<again/>")  # a row delivered twice
    assert outbox.flush() == {}
    assert [p.name for p in (ws.outbox / "customs").iterdir()] == ["CEB311Message_a.xml"]
    assert (ws.outbox / "customs" / "CEB311Message_a.xml").read_bytes() == b"<again/>"


def test_where_no_unnamed_file_can_be_linked_temp_names_are_renamed(ws, monkeypatch):
    _fresh_probe(monkeypatch)

    def refused(fd: int, path: str) -> None:
        raise PermissionError(1, "Operation not permitted", path)

    monkeypatch.setattr(unnamed, "LINKERS", (refused, refused))
    seen = _entries_at_sync(monkeypatch)
    names = _deliver_round(ws, 4)
    assert unnamed._found and set(unnamed._found.values()) == {None}
    assert [len(s) for s in seen] == [4] and all(n.endswith(".tmp") for n in seen[0])
    assert sorted(p.name for p in ws.outbox.rglob("*") if p.is_file()) == sorted(names)


def test_a_failed_sync_drops_unnamed_and_named_files_alike(ws, monkeypatch):
    _fresh_probe(monkeypatch)
    monkeypatch.setattr(durable, "MAX_UNNAMED", 2)  # the rest of the round goes by temp names

    def failing(paths):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(durable, "make_durable", failing)
    outbox = DirectoryOutbox(ws)
    for i in range(5):
        outbox.deliver("customs", f"CEB311Message_{i}.xml", b"<m/>")
    with pytest.raises(OSError, match="Input/output"):
        outbox.flush()
    outbox.discard()
    assert list((ws.outbox / "customs").iterdir()) == []


@pytest.mark.skipif(not unnamed.O_TMPFILE, reason="O_TMPFILE is Linux's")
def test_a_folder_that_refuses_an_unnamed_file_gets_it_by_its_temp_name(ws, monkeypatch):
    _fresh_probe(monkeypatch)
    real = unnamed.write_unnamed

    def refusing(folder: str, body: bytes) -> int:
        if folder.endswith("/customs"):  # remounted on a filesystem without O_TMPFILE
            raise OSError(95, "Operation not supported", folder)
        return real(folder, body)

    monkeypatch.setattr(unnamed, "write_unnamed", refusing)
    names = _deliver_round(ws, 4)
    assert sorted(p.name for p in ws.outbox.rglob("*") if p.is_file()) == sorted(names)
    assert (ws.outbox / "customs" / names[0]).read_bytes() == b"<m n='0'/>"
    assert str(ws.outbox / "customs") not in unnamed._folders  # found again next round
