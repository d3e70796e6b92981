"""SFTP pull as a Source: poll a partner's server, download into a claim, finish after the commit."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from adapters.base import AdapterStatus
from adapters.directory import display_name, safe_name
from adapters.sftp import (
    PART_SUFFIX,
    RemoteFile,
    SftpError,
    SftpSession,
    SftpSettings,
    download,
    finish,
    list_ready,
)
from hub.clock import utcnow
from hub.workspace import Workspace

log = logging.getLogger(__name__)

CLAIM_PREFIX = "sftp-"
MAX_BACKOFF_SECONDS = 300.0  # a server that stays down is tried at least this often

Recorded = Callable[[list[str]], set[str]]  # claim names -> those the store already holds


def claim_name(partner_id: str, remote: RemoteFile) -> str:
    """Deterministic for one remote file (path, size, mtime): a restart gets the same name.

    A new file put under the same name has another size or mtime, so it is a new claim.
    """
    key = f"{partner_id}\0{remote.path}\0{remote.size}\0{remote.mtime}".encode(
        "utf-8", "surrogateescape"
    )
    digest = hashlib.sha256(key).hexdigest()[:24]
    return f"{CLAIM_PREFIX}{digest}--{safe_name(remote.name)}"


@dataclass(frozen=True)
class SftpClaim:
    """A remote file downloaded into claims/<partner>/ and not yet archived or quarantined."""

    partner_id: str
    path: Path
    original_name: str
    size: int
    received_at: datetime
    remote: RemoteFile | None = None  # None after a restart: the next poll finishes it

    @property
    def name(self) -> str:
        return self.path.name


class SftpSource:
    """Pulls one partner's files over SFTP; the remote file is moved only after the commit."""

    def __init__(
        self,
        ws: Workspace,
        partner_id: str,
        settings: SftpSettings,
        *,
        poll_seconds: float,
        recorded: Recorded,
        max_bytes: int | None = None,
    ) -> None:
        self.ws = ws
        self.partner_id = partner_id
        self.settings = settings
        self.poll_seconds = poll_seconds
        self.recorded = recorded
        self.max_bytes = max_bytes  # larger files are claimed unread; the pipeline refuses them
        self.name = f"sftp-pull:{partner_id}"
        self.folder = ws.claims / partner_id
        self.folder.mkdir(parents=True, exist_ok=True)
        self._session: SftpSession | None = None
        self._queue: deque[tuple[RemoteFile, str]] = deque()
        self._seen_sizes: dict[str, int] = {}  # stable-size rule, kept between polls
        self._poll_requested = True  # the first round polls
        self._retry_at = 0.0  # monotonic time before which a failed server is left alone
        self._failures = 0
        self._status = AdapterStatus(self.name, partner_id, "sftp", "in")

    # ------------------------------------------------------------ polling

    def request_poll(self) -> None:
        """The scheduler's poll job: the next claim() lists the server again."""
        self._poll_requested = True

    def backlog(self) -> int:
        """Files the last listing found and no claim has taken yet: none when the hub keeps up."""
        return len(self._queue)

    def claim(self, limit: int) -> list[SftpClaim]:
        """Download up to `limit` ready files; an outage is recorded and backed off, not raised."""
        claims: list[SftpClaim] = []
        try:
            if not self._queue and self._poll_requested and time.monotonic() >= self._retry_at:
                self._poll_requested = False
                self._poll()
            while self._queue and len(claims) < limit:
                remote, name = self._queue[0]
                try:
                    claims.append(self._download(remote, name))
                except SftpError as exc:
                    if self._session is None or not self._session.is_alive():
                        raise  # the server is gone: the whole source backs off
                    # One unreadable file (vanished, no permission) must not hold up the rest;
                    # it is listed, and tried, again at the next poll.
                    log.warning("partner %s: skipping %s: %s", self.partner_id, remote.path, exc)
                self._queue.popleft()
        except SftpError as exc:
            self._failed(exc)
        return claims

    def _poll(self) -> None:
        session = self._open()
        ready = list_ready(session, self.settings, self._seen_sizes)
        names = {claim_name(self.partner_id, f): f for f in ready}
        done = self.recorded(list(names)) if names else set()
        for name, remote in names.items():
            if name in done:
                # Recorded before a crash, or its finish failed: finish it now, nothing else.
                finish(session, self.settings, remote)
            elif not (self.folder / name).exists():  # a claim on disk is recover()'s
                self._queue.append((remote, name))
        self._ok()

    def _download(self, remote: RemoteFile, name: str) -> SftpClaim:
        local = self.folder / name
        if self.max_bytes is not None and remote.size > self.max_bytes:
            local.touch()  # never fetch what will be refused; the claim carries the size
        else:
            download(self._open(), remote, local)
        return SftpClaim(
            self.partner_id, local, display_name(remote.name), remote.size, utcnow(), remote
        )

    def _open(self) -> SftpSession:
        session = self._session
        if session is not None and session.is_alive():
            return session
        if session is not None:
            session.close()
        self._session = None
        session = SftpSession(self.settings)
        session.open()
        self._session = session
        return session

    def _ok(self) -> None:
        self._failures = 0
        self._retry_at = 0.0
        self._status.update(True, None)

    def _failed(self, exc: SftpError) -> None:
        self._failures += 1
        wait = min(MAX_BACKOFF_SECONDS, self.poll_seconds * 2 ** (self._failures - 1))
        self._retry_at = time.monotonic() + wait
        self._poll_requested = True  # try again once the backoff has passed
        self._queue.clear()  # listed again on the next poll; nothing was taken from them
        if self._session is not None and not self._session.is_alive():
            self._session.close()
            self._session = None
        log.warning("partner %s: %s (next try in %.0fs)", self.partner_id, exc, wait)
        self._status.update(False, str(exc))

    # ------------------------------------------------------------ after the commit

    def read(self, claim: SftpClaim) -> bytes:
        return claim.path.read_bytes()

    def archive(self, claim: SftpClaim) -> None:
        folder = self.ws.archive / self.partner_id / utcnow().strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        os.replace(claim.path, folder / claim.name)
        self._finish(claim)

    def quarantine(self, claim: SftpClaim, reason: str) -> None:
        folder = self.ws.quarantine / self.partner_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / (claim.name + ".reason.txt")).write_text(
            f"file: {claim.original_name}\npartner: {claim.partner_id}\n"
            f"server: {self.settings.address} {claim.remote.path if claim.remote else ''}\n"
            f"received: {claim.received_at.isoformat()}\nreason: {reason}\n",
            encoding="utf-8",
        )
        os.replace(claim.path, folder / claim.name)
        self._finish(claim)

    def _finish(self, claim: SftpClaim) -> None:
        """Move the remote file away; if that fails the next poll does it (it is recorded)."""
        if claim.remote is None or time.monotonic() < self._retry_at:
            return  # the server is down and backed off: one failure per round is enough
        try:
            finish(self._open(), self.settings, claim.remote)
        except SftpError as exc:
            self._failed(exc)

    def recover(self) -> list[SftpClaim]:
        """Downloads a killed predecessor left; the next poll finishes their remote files."""
        found = []
        for path in sorted(self.folder.iterdir()) if self.folder.is_dir() else []:
            if path.name.endswith(PART_SUFFIX):
                path.unlink(missing_ok=True)  # an interrupted download: the file is still there
                continue
            if path.is_file() and path.name.startswith(CLAIM_PREFIX):
                original = path.name.partition("--")[2] or path.name
                st = path.stat()
                found.append(SftpClaim(self.partner_id, path, original, st.st_size, utcnow()))
        return found

    def status(self) -> list[AdapterStatus]:
        return [self._status]

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


def sources_for(
    ws: Workspace,
    partners: Iterable,
    recorded: Recorded,
    max_bytes: int | None = None,
) -> list[SftpSource]:
    """An SftpSource per SFTP partner (config Partner objects)."""
    from adapters.sftp import settings_for_partner

    return [
        SftpSource(
            ws,
            p.id,
            settings_for_partner(p, ws),
            poll_seconds=p.sftp.poll_seconds,
            recorded=recorded,
            max_bytes=max_bytes,
        )
        for p in partners
        if p.transport == "sftp" and p.sftp is not None
    ]
