"""Making written files durable: one syncfs per filesystem for a batch, or an fsync per file."""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from adapters import unnamed
from adapters.libc import libc_function

FSYNC_THREADS = 8  # concurrent fsyncs share journal commits; more threads stop helping
MAX_UNNAMED = 1024  # unnamed files open at once in a round; the rest go by temp names
_fsync_pool: ThreadPoolExecutor | None = None


def fsync_path(path: str | Path) -> None:
    """Make a file's contents, or a folder's entries, durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# syncfs writes back every dirty file of one filesystem and commits its journal with one
# cache flush: for a round of hundreds of small files it costs what one fsync does (measured
# ~10 µs a file against ~90-160 µs for overlapped per-file fsyncs on this project's disk).
# Since Linux 5.8 it reports write-back errors, as fsync does. None: per-file fsync.
SYNCFS: Callable[[int], int] | None = libc_function("syncfs", [ctypes.c_int])


def sync_filesystem_of(folder: str | Path) -> None:
    """Write back everything dirty on the filesystem that holds `folder`, or raise OSError."""
    assert SYNCFS is not None
    fd = os.open(folder, os.O_RDONLY)
    try:
        if SYNCFS(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs failed: {os.strerror(err)}", str(folder))
    finally:
        os.close(fd)


def make_durable(files: Sequence[str | Path]) -> None:
    """The contents of every file, durable; raises the first OSError."""
    if not files:
        return
    if SYNCFS is not None:
        for folder in one_per_filesystem({os.path.dirname(f) for f in files}):
            sync_filesystem_of(folder)
        return
    if len(files) == 1:
        fsync_path(files[0])
        return
    global _fsync_pool
    if _fsync_pool is None:
        _fsync_pool = ThreadPoolExecutor(FSYNC_THREADS, thread_name_prefix="fsync")
    for future in [_fsync_pool.submit(fsync_path, p) for p in files]:
        future.result()


def make_entries_durable(folders: Iterable[str | Path]) -> None:
    """The names just created or renamed in each folder, durable."""
    folders = set(folders)
    if SYNCFS is not None:
        for folder in one_per_filesystem(folders):
            sync_filesystem_of(folder)
        return
    for folder in folders:
        fsync_path(folder)


def one_per_filesystem(folders: Iterable[str | Path]) -> list[str | Path]:
    """One folder for each filesystem (device) among `folders`."""
    seen: dict[int, str | Path] = {}
    for folder in folders:
        seen.setdefault(os.stat(folder).st_dev, folder)
    return list(seen.values())


def write_round(files: Sequence[tuple[str, str, bytes]]) -> dict[int, str]:
    """Write (temp, final, body) files durably: every file, one sync, the names, one sync.

    Where the filesystem allows (Linux, with syncfs), a file is written with no name and linked
    to its final name (`adapters.unnamed`): one folder entry instead of a temp name renamed.
    Elsewhere it is written under its temp name and renamed. Returns what failed, by index: a
    folder that refuses one file is skipped for the rest of the round. If the contents cannot
    be made durable, every file of the round is dropped and the OSError raised: nothing of the
    round is known to be on disk.
    """
    failed: dict[int, str] = {}
    broken: dict[str, str] = {}  # folder -> why it refused a file
    written: list[int] = []
    unnamed_fds: dict[int, tuple[int, unnamed.Linker]] = {}  # index -> descriptor, linker
    try:
        for i, (tmp, _final, body) in enumerate(files):
            folder = os.path.dirname(tmp)
            if folder in broken:
                failed[i] = broken[folder]
                continue
            try:
                linker = _linker(folder, tmp) if len(unnamed_fds) < MAX_UNNAMED else None
                if linker is not None:
                    try:
                        unnamed_fds[i] = (unnamed.write_unnamed(folder, body), linker)
                        written.append(i)
                        continue
                    except OSError:  # the folder changed under us: by its temp name, then
                        unnamed.forget()
                with open(tmp, "wb") as f:
                    f.write(body)
            except OSError as exc:
                failed[i] = broken[folder] = str(exc)
                continue
            written.append(i)
        try:
            make_durable([files[i][0] for i in written])
        except OSError:
            for i in written:
                if i not in unnamed_fds:
                    with contextlib.suppress(OSError):
                        os.unlink(files[i][0])
            raise
        folders = set()
        for i in written:
            tmp, final, _ = files[i]
            try:
                if i in unnamed_fds:
                    fd, linker = unnamed_fds[i]
                    unnamed.link(linker, fd, final, tmp)
                else:
                    os.replace(tmp, final)
            except OSError as exc:
                failed[i] = str(exc)
                continue
            folders.add(os.path.dirname(final))
    finally:
        for fd, _ in unnamed_fds.values():
            os.close(fd)  # an unnamed file that was not linked is gone with its descriptor
    make_entries_durable(folders)
    return failed


def _linker(folder: str, tmp: str) -> unnamed.Linker | None:
    """How to link an unnamed file in `folder`; None: write it under its temp name. Only with
    syncfs: the per-file fsyncs of the fallback go by the temp names."""
    if SYNCFS is None or not unnamed.O_TMPFILE:
        return None
    return unnamed.linker_for(folder, tmp)


def setup_writer(_init: object) -> Callable[[Sequence[tuple[str, str, bytes]]], object]:
    """The file-writer process (hub.helper_process): a round's failures, or its OSError."""

    def write(files: Sequence[tuple[str, str, bytes]]) -> dict[int, str] | OSError:
        try:
            return write_round(files)
        except OSError as exc:
            return exc

    return write
