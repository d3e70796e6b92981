"""Watched folders: claim files from inbox/<partner>/, archive or quarantine them, write outboxes."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import socket
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from adapters.durable import write_round
from hub.clock import utcnow
from hub.helper_process import HelperProcess
from hub.workspace import Workspace

TEMP_SUFFIXES = (".tmp", ".part", ".partial", ".filepart", ".done", ".crdownload")
DONE_SUFFIX = ".done"
STABLE_AGE_SECONDS = 1.0  # stable-size mode: unchanged for this long across two scans
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
MAX_SAFE_NAME = 120  # long names are cut when they become part of a claim name
WRITER_MIN_FILES = 64  # a smaller round is written in the hub's own process
log = logging.getLogger(__name__)
_Staged = tuple[str, str, str, str, bytes]  # partner id, file name, temp path, final path, body


def display_name(name: str) -> str:
    """A partner's file name as text we can store and show (bad bytes replaced)."""
    raw = name.encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "replace").replace("\n", "\\n").replace("\r", "\\r")[:255]


def safe_name(name: str) -> str:
    """A file name from outside reduced to characters that can never form a path."""
    cleaned = SAFE_NAME.sub("_", display_name(name)).strip("._") or "file"
    return cleaned[-MAX_SAFE_NAME:]


def _stat(entry: os.DirEntry) -> os.stat_result | None:
    """The file's status (None if it went meanwhile): its mtime orders a partner's files, its
    ctime (set by the rename or write that put it there) says when it landed in the inbox."""
    try:
        return entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None


def is_temporary(name: str) -> bool:
    return name.startswith(".") or name.lower().endswith(TEMP_SUFFIXES)


@dataclass(frozen=True)
class Claim:
    """A file taken out of an inbox and not yet archived or quarantined."""

    partner_id: str
    path: Path
    original_name: str
    size: int
    received_at: datetime

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Reservation:
    """A ready file chosen for a claim, and the claim's path, before the rename that takes it."""

    partner_id: str
    src: str  # in inbox/<partner>/
    dst: str  # in claims/<partner>/: the claim, once taken
    original_name: str
    done_marker: str | None  # done-file mode: the marker to remove once the file is taken
    received_at: datetime

    @property
    def name(self) -> str:
        return os.path.basename(self.dst)

    def claim(self, size: int) -> Claim:
        return Claim(self.partner_id, Path(self.dst), self.original_name, size, self.received_at)


def take_file(r: Reservation) -> int | None:
    """Take a reserved file: the atomic rename into claims/. Its size, or None when another
    worker took it or the partner withdrew it. A file this process took already (a checker
    process that died after the rename) counts as taken."""
    try:
        os.rename(r.src, r.dst)
    except FileNotFoundError:
        try:
            return os.stat(r.dst).st_size
        except FileNotFoundError:
            return None
    except OSError as exc:  # a file the hub may not move, say: it stays where it is
        log.error("claiming %s failed: %s", r.src, exc)
        return None
    if r.done_marker is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(r.done_marker)
    return os.stat(r.dst).st_size


class DirectoryInbox:
    """Claims ready files of the partners whose transport is a folder."""

    def __init__(self, ws: Workspace, partners: Iterable[tuple[str, str]]) -> None:
        """`partners` are (partner id, ready mode) pairs."""
        self.ws = ws
        self.ready = dict(partners)
        self._queue: deque[tuple[str, str]] = deque()
        self._reserved: set[tuple[str, str]] = set()  # reserved, not yet taken (a checker has them)
        self._deferred: set[tuple[str, str]] = set()  # landed during the last scan (`_scan`)
        self._sizes: dict[tuple[str, str], tuple[int, float]] = {}
        self._folders: dict[tuple[str, str], str] = {}  # (partner, day) -> its archive folder
        self._partner_paths: dict[str, tuple[str, str]] = {}
        for partner_id in self.ready:
            ws.inbox_of(partner_id).mkdir(parents=True, exist_ok=True)
            (ws.claims / partner_id).mkdir(parents=True, exist_ok=True)

    def recover(self) -> list[Claim]:
        """Claims a dead process took but did not finish, oldest first.

        A claim names its owner (see `claim_owner`): claims of a live process of this host
        are its work in progress and are left alone, as are other hosts' claims, since only
        their host can tell whether their owner is alive (run `cebhub run` there to finish
        them). Claims without an owner (older versions) are taken.
        """
        found = []
        if not self.ws.claims.is_dir():
            return found
        for pdir in sorted(p for p in self.ws.claims.iterdir() if p.is_dir()):
            for path in sorted(pdir.iterdir()):
                if path.is_file() and orphaned(path.name):
                    original = path.name.partition("--")[2] or path.name
                    st = path.stat()
                    found.append(Claim(pdir.name, path, original, st.st_size, utcnow()))
        return found

    def stranded(self, in_flight: set[str], older_than: float) -> list[Claim]:
        """This process's own claims that it no longer holds, claimed over `older_than`
        seconds ago, oldest first: what a failure between claiming and recording (a bug)
        left behind, which `recover` would only take at the next start."""
        found = []
        if not self.ws.claims.is_dir():
            return found
        me = (os.getpid(), _host_tag(socket.gethostname()))
        before = time.time_ns() - int(older_than * 1e9)
        for partner_id in self.ready:
            folder = self.ws.claims / partner_id
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                name = path.name
                if name in in_flight or claim_owner(name) != me or _claimed_at(name) > before:
                    continue
                with contextlib.suppress(FileNotFoundError):  # finished meanwhile
                    size = path.stat().st_size
                    original = name.partition("--")[2] or name
                    found.append(Claim(partner_id, path, original, size, utcnow()))
        return found

    def _scan(self, started: int | None = None) -> None:
        """Queue every ready file: each partner's oldest first, the partners taking turns.

        A partner with a backlog of thousands of files then does not hold up another's
        one file, and a partner's files are recorded in the order it dropped them (a
        cancellation after the list it cancels).

        The partners' folders are read one after another, and files keep landing meanwhile:
        a file that landed after the scan `started` (its ctime, nanoseconds) waits for the
        next one, once, so that every partner's queue ends at the same moment. Else the
        folders read last ran ahead of the first by what landed while those were read: with
        files dropped at 25,000 a second, an agent's lists were queued a few hundred files
        before the orders, payments and waybills dropped before them, and each waited for
        its documents and was reviewed twice (docs/performance.md, round 17).
        """
        started = time.time_ns() if started is None else started
        per_partner = []
        deferred: set[tuple[str, str]] = set()
        for partner_id, mode in self.ready.items():
            folder = self.ws.inbox_of(partner_id)
            try:
                entries = list(os.scandir(folder))
            except FileNotFoundError:
                folder.mkdir(parents=True, exist_ok=True)
                continue
            names = {e.name for e in entries}
            ready = []
            for entry in entries:
                if is_temporary(entry.name) or not entry.is_file(follow_symlinks=False):
                    continue
                key = (partner_id, entry.name)
                if key in self._reserved:  # being taken by a checker
                    continue
                if mode == "done-file" and entry.name + DONE_SUFFIX not in names:
                    continue
                if mode == "stable-size" and not self._stable(partner_id, entry):
                    continue
                st = _stat(entry)
                if st is None:
                    continue
                # Once only: a clock set back must not hold a file until it catches up.
                if st.st_ctime_ns > started and key not in self._deferred:
                    deferred.add(key)
                    continue
                ready.append((st.st_mtime_ns, entry.name))
            if ready:
                ready.sort()
                per_partner.append([(partner_id, name) for _, name in ready])
        self._deferred = deferred
        for turn in itertools.zip_longest(*per_partner):
            self._queue.extend(f for f in turn if f is not None)

    def _stable(self, partner_id: str, entry: os.DirEntry) -> bool:
        st = entry.stat(follow_symlinks=False)
        key = (partner_id, entry.name)
        before = self._sizes.get(key)
        self._sizes[key] = (st.st_size, st.st_mtime)
        return (
            before is not None
            and before == (st.st_size, st.st_mtime)
            and time.time() - st.st_mtime >= STABLE_AGE_SECONDS
        )

    def claim(self, limit: int) -> list[Claim]:
        """Atomically rename up to `limit` ready files into the claim area."""
        claims = self.take(self.reserve(limit))
        while len(claims) < limit and self._queue:  # some were gone: more, without a rescan
            claims += self.take(self.reserve(limit - len(claims)))
        return claims

    def reserve(self, limit: int) -> list[Reservation]:
        """Up to `limit` ready files, each with the claim name it is to take, not yet taken:
        `take` here, or `take_file` in the checker process, renames them."""
        if not self._queue:
            self._scan()
            if not self._queue and self._deferred:  # all landed during it: they wait no more
                self._scan()
        reserved = []
        owner = _owner()
        while self._queue and len(reserved) < limit:
            partner_id, name = self._queue.popleft()
            self._sizes.pop((partner_id, name), None)
            self._reserved.add((partner_id, name))
            token = f"{time.time_ns():x}-{next(_serials) & 0xFFFFFFFF:08x}-{owner}"
            inbox, claims = self._paths_of(partner_id)
            src = f"{inbox}/{name}"
            done = src + DONE_SUFFIX if self.ready.get(partner_id) == "done-file" else None
            dst = f"{claims}/{token}--{safe_name(name)}"
            reserved.append(Reservation(partner_id, src, dst, display_name(name), done, utcnow()))
        return reserved

    def _paths_of(self, partner_id: str) -> tuple[str, str]:
        """A partner's inbox and claims folders as strings (a reservation a message)."""
        paths = self._partner_paths.get(partner_id)
        if paths is None:
            paths = (str(self.ws.inbox_of(partner_id)), str(self.ws.claims / partner_id))
            self._partner_paths[partner_id] = paths
        return paths

    def take(self, reserved: Iterable[Reservation]) -> list[Claim]:
        """Claim reserved files here; those another worker took (or a partner withdrew) are
        left out."""
        claims = []
        try:
            for r in reserved:
                size = take_file(r)
                if size is not None:
                    claims.append(r.claim(size))
        finally:  # one that failed is found by a later scan, or by the stranded-claims pass
            self.settle(reserved)
        return claims

    def settle(self, reserved: Iterable[Reservation]) -> None:
        """Reserved files taken (or gone): a scan may list their names again."""
        for r in reserved:
            self._reserved.discard((r.partner_id, os.path.basename(r.src)))

    def backlog(self) -> int:
        """Ready files the last scan found and no batch has taken yet (no new scan)."""
        return len(self._queue)

    def pending(self) -> bool:
        """Whether a scan would find ready files (cheap enough for `run --once`)."""
        if not self._queue:
            self._scan()
        return bool(self._queue or self._deferred)

    def archive(self, claim: Claim) -> str:
        # No fsync: if the rename is lost in a crash, the claim is found again and the
        # store, which recorded it, says it is done. Plain strings: one archive a message.
        key = (claim.partner_id, utcnow().strftime("%Y-%m-%d"))
        folder = self._folders.get(key)
        if folder is None:
            path = self.ws.archive / claim.partner_id / key[1]
            path.mkdir(parents=True, exist_ok=True)
            folder = self._folders[key] = str(path)
        src = os.fspath(claim.path)
        dst = f"{folder}/{os.path.basename(src)}"
        try:
            os.replace(src, dst)
        except FileNotFoundError:
            if not os.path.exists(src) and os.path.exists(dst):
                return dst  # two workers recovered the same dead claim: the other archived it
            self._folders.pop(key, None)
            raise
        return dst

    def quarantine(self, claim: Claim, reason: str) -> Path:
        folder = self.ws.quarantine / claim.partner_id
        folder.mkdir(parents=True, exist_ok=True)
        dst = folder / claim.name
        note = folder / (claim.name + ".reason.txt")
        note.write_text(
            f"file: {claim.original_name}\npartner: {claim.partner_id}\n"
            f"received: {claim.received_at.isoformat()}\nreason: {reason}\n",
            encoding="utf-8",
        )
        try:
            os.replace(claim.path, dst)
        except FileNotFoundError:
            if not dst.exists():
                raise
            # two workers recovered the same dead claim: the other quarantined it
        return dst


class DirectoryOutbox:
    """Writes delivery files into outbox/<partner>/: temp names first, then one durable batch.

    `deliver` only stages a file; `flush` writes the round (`durable.write_round`): every temp
    file, one syncfs per filesystem (or overlapped per-file fsyncs where there is none), the
    renames into place, and the new names made durable the same way. A partner never sees a
    name whose contents are not on disk. A round of many files is written by the file-writer
    process, when there is one, so that the hub's own interpreter spends no time on it.
    """

    def __init__(self, ws: Workspace, writer_process: bool = False) -> None:
        self.ws = ws
        self._folders: dict[str, str] = {}  # partner id -> its outbox folder, known to exist
        self._staged: list[_Staged] = []
        self._tag = ("", 0)  # (".<host>-<pid>.tmp", pid): a fork gets its own
        self.writer = (
            HelperProcess("adapters.durable", "setup_writer", None) if writer_process else None
        )
        self.writer_min_files = WRITER_MIN_FILES

    def _temp_suffix(self) -> str:
        # Host and pid keep two workers that deliver the same row from sharing one temp file,
        # and tell a restart which temp files a dead process left behind.
        pid = os.getpid()
        if self._tag[1] != pid:
            self._tag = (f".{socket.gethostname()}-{pid}.tmp", pid)
        return self._tag[0]

    def deliver(self, partner_id: str, file_name: str, body: bytes) -> None:
        # Plain strings: at thousands of files a second, Path arithmetic showed in profiles.
        folder = self._folders.get(partner_id)
        if folder is None:
            path = self.ws.outbox_of(partner_id)
            path.mkdir(parents=True, exist_ok=True)
            folder = self._folders[partner_id] = str(path)
        tmp = f"{folder}/.{file_name}{self._temp_suffix()}"
        self._staged.append((partner_id, file_name, tmp, f"{folder}/{file_name}", body))

    def flush(self) -> dict[tuple[str, str], str]:
        """Write the staged files; returns the ones that failed, by (partner id, file name)."""
        if not self._staged:
            return {}
        files = [(tmp, final, body) for _, _, tmp, final, body in self._staged]
        failed = self._write(files)  # on OSError the round stays staged for `discard`
        staged, self._staged = self._staged, []
        for i in failed:
            self._folders.pop(staged[i][0], None)  # removed under us? made again next time
        return {(staged[i][0], staged[i][1]): error for i, error in failed.items()}

    def _write(self, files: list[tuple[str, str, bytes]]) -> dict[int, str]:
        writer = self.writer
        if writer is None or len(files) < self.writer_min_files or not writer.ready():
            return write_round(files)
        try:
            result = writer.call(files)
        except Exception as exc:  # the process died: the round is retried, a new one started
            writer.close()
            raise OSError(f"the file-writer process failed: {exc!r}") from exc
        if isinstance(result, OSError):
            raise result
        return result

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def remove_stale_temps(self) -> int:
        """Delete temp files that a killed process of this host left in the outboxes."""
        removed = 0
        prefix = f"{socket.gethostname()}-"
        for tmp in self.ws.outbox.glob("*/.*.tmp"):
            owner = tmp.name[: -len(".tmp")].rpartition(".")[2]
            if not owner.startswith(prefix):
                continue  # another host's worker: only it can tell whether it is alive
            pid = owner[len(prefix) :]
            if pid.isdigit() and not _alive(int(pid)):
                tmp.unlink(missing_ok=True)
                removed += 1
        return removed

    def discard(self) -> None:
        """Forget the round's temp files after a failed flush (the rows will be retried)."""
        for _, _, tmp, _, _ in self._staged:
            Path(tmp).unlink(missing_ok=True)
        self._staged.clear()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _host_tag(host: str) -> str:
    """A host name with no "-" (legal host names have no "_", so this is one to one)."""
    return SAFE_NAME.sub("_", host.replace("-", "_"))[:63]


# The second part of a claim name: a serial of this process, so that two claims it takes in
# the same nanosecond differ (the pid and host tell processes apart). It was 4 random bytes
# from the OS: a system call a file, each a chance for another thread to take the
# interpreter lock from the hub's main thread (2 % of its time in a profile, round 10).
_serials = itertools.count()
_owners: dict[int, str] = {}  # pid -> its owner part


def _owner() -> str:
    """The owner part of a claim name, `<time>-<serial>-<pid>-<host>--<original>`.

    Kept per pid: `cebhub run --workers N` may fork after this module is loaded.
    """
    pid = os.getpid()
    owner = _owners.get(pid)
    if owner is None:
        owner = _owners[pid] = f"{pid}-{_host_tag(socket.gethostname())}"
    return owner


def claim_owner(name: str) -> tuple[int, str] | None:
    """(pid, host tag) of the process that took a claim; None for a claim without an owner."""
    parts = name.partition("--")[0].split("-")
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    return int(parts[2]), parts[3]


def _claimed_at(name: str) -> int:
    """When a claim was taken (nanoseconds, from its name)."""
    try:
        return int(name.partition("-")[0], 16)
    except ValueError:
        return 0


def orphaned(name: str) -> bool:
    """Whether a claim may be finished by this process: its owner is gone (or unknown)."""
    owner = claim_owner(name)
    if owner is None:
        return True
    pid, host = owner
    if host != _host_tag(socket.gethostname()):
        return False  # only that host can tell whether its worker is alive
    return not _alive(pid)
