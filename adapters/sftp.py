"""SFTP transport primitives: pinned-host-key sessions, safe pickup from and delivery to a server."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import posixpath
import stat
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any

import paramiko

from adapters.durable import fsync_path

log = logging.getLogger(__name__)

TEMP_SUFFIXES = (".tmp", ".part")  # a writer is still filling these (design §7)
DONE_SUFFIX = ".done"  # NAME.done beside NAME says NAME is complete
PART_SUFFIX = ".part"  # our own temp suffix, locally on download and remotely on upload
MAX_NAME_BYTES = 200  # NAME_MAX is 255: leaves room for ".NAME.part" and "NAME.done"
DEFAULT_CONNECT_TIMEOUT = 15.0  # seconds for TCP connect, SSH banner and authentication
DEFAULT_TIMEOUT = 60.0  # seconds one SFTP request may stall before the session is given up
READ_CHUNK = 32768  # paramiko's SFTP read size; larger reads are split by the server anyway
UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}  # control, format, surrogate, line breaks


class ReadyRule(StrEnum):
    """When a listed remote file may be picked up."""

    IMMEDIATE = "immediate"  # any plain file with a non-temp name
    DONE_FILE = "done-file"  # only once NAME.done exists beside NAME
    STABLE_SIZE = "stable-size"  # only once the size is the same at two polls in a row


class AfterPickup(StrEnum):
    """What finish() does with a remote file once the hub has committed it."""

    MOVE = "move"  # into processed_dir, where the partner can still see it
    DELETE = "delete"  # removed from the server


@dataclass(frozen=True, kw_only=True)
class SftpSettings:
    """One partner's SFTP server: where to connect, what to pull, where to push."""

    host: str
    port: int = 22
    username: str
    key_file: Path  # private key of our user on that server
    known_hosts: Path  # the only host keys trusted for this server
    remote_dir: str = "."  # inbound folder polled for pickup
    processed_dir: str = "processed"  # relative to remote_dir unless absolute
    after_pickup: AfterPickup = AfterPickup.MOVE
    ready: ReadyRule = ReadyRule.IMMEDIATE
    remote_inbox: str = "."  # the partner's inbox: folder files are pushed into
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        # Config hands us strings; turning them into enums here rejects typos at load time.
        object.__setattr__(self, "after_pickup", AfterPickup(self.after_pickup))
        object.__setattr__(self, "ready", ReadyRule(self.ready))
        object.__setattr__(self, "key_file", Path(self.key_file))
        object.__setattr__(self, "known_hosts", Path(self.known_hosts))

    @property
    def address(self) -> str:
        """user@host:port, for messages."""
        return f"{self.username}@{self.host}:{self.port}"

    @property
    def processed_path(self) -> str:
        return posixpath.join(self.remote_dir, self.processed_dir)


def settings_for_partner(partner: Any, ws: Any) -> SftpSettings:
    """The adapter's settings from a config Partner (its `sftp` table and `ready` rule).

    Key and known_hosts paths in the config are workspace-relative unless absolute.
    """
    cfg = partner.sftp
    if cfg is None:
        raise ValueError(
            f"partner {partner.id}: transport sftp needs an [partners.{partner.id}.sftp] table"
        )
    return SftpSettings(
        host=cfg.host,
        port=cfg.port,
        username=cfg.username,
        key_file=ws.resolve(cfg.key_file),
        known_hosts=ws.resolve(cfg.known_hosts),
        remote_dir=cfg.remote_dir,
        processed_dir=cfg.processed_dir,
        after_pickup=AfterPickup(cfg.after_pickup),
        ready=ReadyRule(partner.ready),
        remote_inbox=cfg.remote_inbox,
        connect_timeout=cfg.connect_timeout,
        timeout=cfg.timeout,
    )


class SftpError(Exception):
    """Base of every SFTP failure; `retryable` tells a delivery policy whether later may work."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class HostKeyError(SftpError):
    """The server's host key is unknown or not the pinned one; needs a person, never retried."""

    retryable = False

    def __init__(
        self, message: str, *, host: str, port: int, expected: str | None, presented: str | None
    ) -> None:
        super().__init__(message)
        self.host = host
        self.port = port
        self.expected = expected
        self.presented = presented


class SftpConnectionError(SftpError):
    """The server could not be reached, dropped the connection, or refused our key."""

    retryable = True  # an outage passes; a refused key is raised with retryable=False


class RemoteWriteError(SftpError):
    """The server refused a write: permission denied is permanent, a failed write (disk full) not."""

    retryable = True


@dataclass(frozen=True)
class RemoteFile:
    """A file listed in a remote folder; `name` has passed is_safe_name()."""

    name: str
    size: int
    mtime: int
    directory: str

    @property
    def path(self) -> str:
        return posixpath.join(self.directory, self.name)

    @property
    def done_path(self) -> str:
        return self.path + DONE_SUFFIX


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style fingerprint, as `ssh-keygen -l` prints it, so ops can compare."""
    return f"{key.get_name()} {key.fingerprint}"


class _PinnedKeyPolicy(paramiko.RejectPolicy):
    """Refuses a server that has no entry in our known_hosts, with a message ops can act on."""

    def __init__(self, settings: SftpSettings) -> None:
        self.settings = settings

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey):
        s = self.settings
        raise HostKeyError(
            f"host key of {s.host} port {s.port} is unknown: {s.known_hosts} has no entry for "
            f"{hostname}; the server presented {fingerprint(key)}. Connection refused; add the "
            f"key to known_hosts only after checking it with the partner.",
            host=s.host,
            port=s.port,
            expected=None,
            presented=fingerprint(key),
        )


class SftpSession:
    """One authenticated SFTP connection, with the server's host key pinned from known_hosts.

    Used by one thread at a time. After an SftpConnectionError the session is closed; open
    a new one to go on.
    """

    def __init__(self, settings: SftpSettings) -> None:
        self.settings = settings
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._dirs_seen: set[str] = set()  # folders known to exist, to mkdir them once

    def __enter__(self) -> SftpSession:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        """Connect and authenticate; raises HostKeyError or SftpConnectionError."""
        s = self.settings
        if self._sftp is not None:
            return
        if not s.key_file.is_file():
            raise SftpError(f"{s.address}: private key file {s.key_file} not found")
        client = paramiko.SSHClient()
        _load_pinned_keys(client, s)
        client.set_missing_host_key_policy(_PinnedKeyPolicy(s))
        try:
            client.connect(
                hostname=s.host,
                port=s.port,
                username=s.username,
                key_filename=str(s.key_file),
                look_for_keys=False,  # only the configured key, never ~/.ssh
                allow_agent=False,
                timeout=s.connect_timeout,
                banner_timeout=s.connect_timeout,
                auth_timeout=s.connect_timeout,
                channel_timeout=s.connect_timeout,
            )
            sftp = client.open_sftp()
        except Exception as exc:
            client.close()
            raise _connect_failure(s, exc) from exc
        # Without a timeout a server that stops answering would hang the poll loop forever.
        sftp.get_channel().settimeout(s.timeout)
        self._client, self._sftp = client, sftp

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._sftp = None
        self._dirs_seen.clear()

    @property
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            raise SftpConnectionError(f"{self.settings.address}: session is not open")
        return self._sftp

    def is_alive(self) -> bool:
        if self._client is None or self._sftp is None:
            return False
        transport = self._client.get_transport()
        channel = self._sftp.get_channel()
        # The channel can be closed a moment before the transport thread notices the EOF.
        return bool(transport and transport.is_active() and channel and not channel.closed)


def _load_pinned_keys(client: paramiko.SSHClient, s: SftpSettings) -> None:
    # get_host_keys().load() and not load_host_keys(): the file is never written back, and
    # load_system_host_keys() is never called, so only this file is trusted.
    try:
        client.get_host_keys().load(str(s.known_hosts))
    except OSError as exc:
        raise HostKeyError(
            f"cannot read known_hosts {s.known_hosts} for {s.host} port {s.port}: {exc}",
            host=s.host,
            port=s.port,
            expected=None,
            presented=None,
        ) from exc


def _connect_failure(s: SftpSettings, exc: Exception) -> SftpError:
    if isinstance(exc, SftpError):
        return exc
    if isinstance(exc, paramiko.BadHostKeyException):
        expected, presented = fingerprint(exc.expected_key), fingerprint(exc.key)
        return HostKeyError(
            f"host key of {s.host} port {s.port} has CHANGED: known_hosts {s.known_hosts} "
            f"expects {expected}, the server presented {presented}. Connection refused; "
            f"this may be an attack, or the partner replaced its key: check with the partner.",
            host=s.host,
            port=s.port,
            expected=expected,
            presented=presented,
        )
    if isinstance(exc, paramiko.AuthenticationException):
        return SftpConnectionError(
            f"{s.address}: server refused key {s.key_file}: {exc}", retryable=False
        )
    return SftpConnectionError(f"{s.address}: cannot connect: {exc or type(exc).__name__}")


def _is_server_refusal(exc: BaseException) -> bool:
    """True for an SFTP status error; paramiko raises those as bare OSError (errno if known)."""
    return isinstance(exc, OSError) and not isinstance(exc, TimeoutError | ConnectionError)


def _operation_failure(session: SftpSession, exc: Exception, doing: str) -> SftpError:
    if isinstance(exc, SftpConnectionError | HostKeyError):
        return exc
    where = session.settings.address
    broken = not (isinstance(exc, SftpError) or _is_server_refusal(exc))
    if broken or not session.is_alive():
        # A stalled or broken channel cannot be resynchronised: drop it so nobody reuses it.
        session.close()
        return SftpConnectionError(f"{where}: connection lost while {doing}: {exc!r}")
    if isinstance(exc, SftpError):
        return exc
    return SftpError(f"{where}: {doing} failed: {exc}", retryable=True)


def is_safe_name(name: str) -> bool:
    """True if `name` is one plain file name, safe as a local and a remote path component."""
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        return False
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return False
    return not any(unicodedata.category(ch) in UNSAFE_CATEGORIES for ch in name)


def is_temp_name(name: str) -> bool:
    """True for names a writer is still filling, or marker files: never picked up."""
    lowered = name.lower()
    return name.startswith(".") or lowered.endswith((*TEMP_SUFFIXES, DONE_SUFFIX))


def claim_path(claim_dir: str | os.PathLike, name: str) -> Path:
    """Local path for a remote file name inside claim_dir; refuses names that could escape it."""
    if not is_safe_name(name) or is_temp_name(name):
        raise ValueError(f"unsafe remote file name {name!r}")
    folder = Path(claim_dir)
    path = folder / name
    if path.parent != folder:  # belt and braces: is_safe_name already forbids separators
        raise ValueError(f"remote file name {name!r} escapes {folder}")
    return path


def list_ready(
    session: SftpSession, settings: SftpSettings, seen_sizes: dict[str, int]
) -> list[RemoteFile]:
    """Files in remote_dir ready for pickup, oldest first; one directory listing per call.

    `seen_sizes` is kept by the caller between polls (stable-size mode updates it in place).
    A file stays listed until finish() moves it away; the caller skips ones it has recorded.
    """
    entries = _list_dir(session, settings.remote_dir)
    present = {entry.filename for entry in entries}
    candidates = [entry for entry in entries if _is_candidate(entry)]
    if settings.ready is ReadyRule.DONE_FILE:
        candidates = [e for e in candidates if e.filename + DONE_SUFFIX in present]
    elif settings.ready is ReadyRule.STABLE_SIZE:
        candidates = _stable(candidates, seen_sizes)
    files = [
        RemoteFile(e.filename, e.st_size or 0, e.st_mtime or 0, settings.remote_dir)
        for e in candidates
    ]
    return sorted(files, key=lambda f: (f.mtime, f.name))


def _list_dir(session: SftpSession, remote_dir: str) -> list[paramiko.SFTPAttributes]:
    try:
        return session.sftp.listdir_attr(remote_dir)
    except UnicodeDecodeError as exc:
        # paramiko decodes names as strict UTF-8; one bad name makes the folder unreadable.
        raise SftpError(
            f"{session.settings.address}: a file name in {remote_dir} is not UTF-8 ({exc}); "
            f"it must be renamed or removed on the server before this folder can be polled"
        ) from exc
    except Exception as exc:
        raise _operation_failure(session, exc, f"listing {remote_dir}") from exc


def _is_candidate(entry: paramiko.SFTPAttributes) -> bool:
    name = entry.filename
    # Servers that send no mode get the benefit of the doubt; OpenSSH always sends it.
    if entry.st_mode is not None and not stat.S_ISREG(entry.st_mode):
        return False  # folders, symlinks (OpenSSH lists with lstat), devices
    if is_temp_name(name):
        return False
    if not is_safe_name(name):
        log.warning("ignoring remote file with unsafe name %r", name)
        return False
    return True


def _stable(
    candidates: list[paramiko.SFTPAttributes], seen_sizes: dict[str, int]
) -> list[paramiko.SFTPAttributes]:
    previous = dict(seen_sizes)
    seen_sizes.clear()  # forget names that are gone, so the dict does not grow without end
    seen_sizes.update({e.filename: e.st_size or 0 for e in candidates})
    return [e for e in candidates if previous.get(e.filename) == (e.st_size or 0)]


def download(
    session: SftpSession,
    remote_file: RemoteFile,
    local_path: str | os.PathLike,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Copy remote_file to local_path via local_path.part, fsync and atomic rename.

    On any failure nothing is left at local_path (nor the .part). `progress` gets the
    bytes copied so far after each chunk.
    """
    local = Path(local_path)
    part = local.with_name(local.name + PART_SUFFIX)
    try:
        _copy_to(session, remote_file, part, progress)
        os.replace(part, local)
        fsync_path(local.parent)
    except BaseException as exc:
        part.unlink(missing_ok=True)
        if isinstance(exc, Exception) and not isinstance(exc, ValueError):
            raise _operation_failure(session, exc, f"downloading {remote_file.path}") from exc
        raise


def _copy_to(
    session: SftpSession,
    remote_file: RemoteFile,
    part: Path,
    progress: Callable[[int], None] | None,
) -> None:
    if not is_safe_name(remote_file.name):
        raise ValueError(f"unsafe remote file name {remote_file.name!r}")
    with session.sftp.open(remote_file.path, "rb") as src, open(part, "wb") as dst:
        size = src.stat().st_size or 0
        if size:
            src.prefetch(size)  # pipelined reads: one round trip per file, not per chunk
        copied = 0
        while chunk := src.read(READ_CHUNK):
            dst.write(chunk)
            copied += len(chunk)
            if progress:
                progress(copied)
        if copied != size:
            raise SftpError(
                f"{session.settings.address}: {remote_file.path} gave {copied} of {size} bytes",
                retryable=True,
            )
        dst.flush()
        os.fsync(dst.fileno())


def finish(session: SftpSession, settings: SftpSettings, remote_file: RemoteFile) -> bool:
    """After the caller committed remote_file: move it (and NAME.done) to processed, or delete.

    Idempotent: returns False when the file was already finished, or when a different file
    of the same name has since arrived (that one is left for the next poll).
    """
    try:
        found = _remote_state(session.sftp, remote_file)
        if found is _Found.CHANGED:
            return False  # its NAME.done, if any, belongs to the new file: leave it too
        handled = found is _Found.SAME and _settle(session, settings, remote_file.path)
        # Also when the file is gone: a crash between the two moves leaves the marker behind.
        _settle(session, settings, remote_file.done_path)
        return handled
    except Exception as exc:
        raise _operation_failure(session, exc, f"finishing {remote_file.path}") from exc


class _Found(StrEnum):
    """What finish() finds at a picked-up file's remote path."""

    SAME = "same"  # the file that was picked up
    GONE = "gone"  # already moved or deleted: an earlier finish() got this far
    CHANGED = "changed"  # the partner has put a new file under the same name


def _remote_state(sftp: paramiko.SFTPClient, remote_file: RemoteFile) -> _Found:
    try:
        now = sftp.lstat(remote_file.path)
    except FileNotFoundError:
        return _Found.GONE
    if (now.st_size, now.st_mtime) == (remote_file.size, remote_file.mtime):
        return _Found.SAME
    log.warning("not finishing %s: it changed since it was picked up", remote_file.path)
    return _Found.CHANGED


def _settle(session: SftpSession, settings: SftpSettings, path: str) -> bool:
    """Move path into processed, or delete it; False if it was not there."""
    sftp = session.sftp
    if settings.after_pickup is AfterPickup.DELETE:
        try:
            sftp.remove(path)
        except FileNotFoundError:
            return False
        return True
    _ensure_dir(session, settings.processed_path)
    target = posixpath.join(settings.processed_path, posixpath.basename(path))
    return _rename_over(sftp, path, target)


def _ensure_dir(session: SftpSession, path: str) -> None:
    if path in session._dirs_seen:
        return
    sftp = session.sftp
    try:
        sftp.mkdir(path)
    except OSError as exc:
        # Most often it already exists; anything else shows up in the stat.
        if not _is_server_refusal(exc):
            raise
        if not stat.S_ISDIR(sftp.stat(path).st_mode or 0):
            raise SftpError(f"{session.settings.address}: {path} is not a folder") from exc
    session._dirs_seen.add(path)


def _rename_over(sftp: paramiko.SFTPClient, src: str, dst: str) -> bool:
    """Rename src to dst, replacing dst; False if src is not there."""
    try:
        sftp.posix_rename(src, dst)  # atomic replace (posix-rename@openssh.com)
        return True
    except FileNotFoundError:
        return False
    except PermissionError:
        raise
    except OSError as exc:
        if not _is_server_refusal(exc):
            raise
    # A server without posix-rename: plain SFTP rename refuses to replace, so clear the way.
    _remove_quietly(sftp, dst)
    try:
        sftp.rename(src, dst)
    except FileNotFoundError:
        return False
    return True


def _remove_quietly(sftp: paramiko.SFTPClient, path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        sftp.remove(path)


def temp_upload_name(name: str) -> str:
    """The name a file has on the server while it is being pushed; receivers ignore it."""
    return f".{name}{PART_SUFFIX}"


def upload(session: SftpSession, settings: SftpSettings, name: str, data: bytes) -> str:
    """Push data as remote_inbox/name: write .name.part, then rename over name. Returns the path.

    Re-sending the same name replaces the earlier file. On failure no partial `name` is
    visible and the temp file is removed when the connection still allows it.
    """
    if not is_safe_name(name) or is_temp_name(name):
        raise ValueError(f"unsafe file name for upload {name!r}")
    temp = posixpath.join(settings.remote_inbox, temp_upload_name(name))
    final = posixpath.join(settings.remote_inbox, name)
    sftp = session.sftp
    try:
        # confirm=True stats the result: a write the server cut short (disk full) is caught.
        sftp.putfo(io.BytesIO(data), temp, file_size=len(data), confirm=True)
        if not _rename_over(sftp, temp, final):
            raise RemoteWriteError(f"{settings.address}: {temp} vanished before its rename")
    except Exception as exc:
        error = _write_failure(session, exc, final)
        if session.is_alive():
            _cleanup_temp(sftp, temp)
        raise error from exc
    return final


def _write_failure(session: SftpSession, exc: Exception, final: str) -> SftpError:
    where = session.settings.address
    if isinstance(exc, SftpError):
        return exc
    if isinstance(exc, PermissionError):
        return RemoteWriteError(f"{where}: permission denied writing {final}", retryable=False)
    if isinstance(exc, FileNotFoundError):
        return RemoteWriteError(f"{where}: folder of {final} does not exist", retryable=False)
    if _is_server_refusal(exc) and session.is_alive():
        return RemoteWriteError(f"{where}: write of {final} failed (disk full?): {exc}")
    return _operation_failure(session, exc, f"uploading {final}")


def _cleanup_temp(sftp: paramiko.SFTPClient, temp: str) -> None:
    try:
        _remove_quietly(sftp, temp)
    except Exception:  # the original error matters more; a stale temp is hidden and overwritten
        log.warning("could not remove temp file %s", temp, exc_info=True)
