"""Files written with no name (Linux's O_TMPFILE) and linked to their name once durable.

A temp name renamed into place costs a folder two entries a file (one made and removed, one
made) and three look-ups; an unnamed file costs one entry, made when it is linked. One that is
never linked (a failed round, a crash) leaves nothing behind: the filesystem frees it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Callable

from adapters.libc import libc_function

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
O_TMPFILE = getattr(os, "O_TMPFILE", 0)

Linker = Callable[[int, str], None]


_LINKAT = libc_function(
    "linkat", [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
)


def _link_by_descriptor(fd: int, path: str) -> None:
    """linkat(fd, "", path, AT_EMPTY_PATH): needs CAP_DAC_READ_SEARCH on most kernels."""
    if _LINKAT is None:
        raise OSError("no linkat in this C library")
    if _LINKAT(fd, b"", AT_FDCWD, os.fsencode(path), AT_EMPTY_PATH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)


def _link_by_proc(fd: int, path: str) -> None:
    """The unprivileged way: link the descriptor's /proc entry, following it."""
    os.link(f"/proc/self/fd/{fd}", path, follow_symlinks=True)


LINKERS: tuple[Linker, ...] = (_link_by_descriptor, _link_by_proc)
_found: dict[int, Linker | None] = {}  # filesystem (st_dev) -> the way that works there
_folders: dict[str, Linker | None] = {}  # folder -> its filesystem's way (no stat a file)


def open_unnamed(folder: str) -> int:
    """A new file in `folder` with no name yet, open for writing (mode 0o666 less the umask)."""
    return os.open(folder, O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666)


def write_unnamed(folder: str, body: bytes) -> int:
    """An unnamed file in `folder` holding `body`; its open descriptor, for `link`."""
    fd = open_unnamed(folder)
    try:
        view = memoryview(body)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        raise
    return fd


def linker_for(folder: str, spare_name: str) -> Linker | None:
    """How this process can name an unnamed file in `folder`, or None (no O_TMPFILE there,
    or no permission to link one): found once per filesystem by linking a probe to
    `spare_name`, a name in `folder` that this process owns, and removing it again."""
    if folder in _folders:
        return _folders[folder]
    dev = os.stat(folder).st_dev
    if dev in _found:
        _folders[folder] = _found[dev]
        return _found[dev]
    found = None
    if O_TMPFILE:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(spare_name)  # a dead namesake's leftover: the name is this process's
        for link in LINKERS:
            try:
                fd = open_unnamed(folder)
            except OSError:
                break  # the filesystem has no unnamed files
            try:
                link(fd, spare_name)
            except OSError:
                continue
            finally:
                os.close(fd)
            os.unlink(spare_name)
            found = link
            break
    _found[dev] = _folders[folder] = found
    return found


def forget() -> None:
    """Find the ways again: a folder refused an unnamed file (moved, remounted elsewhere)."""
    _folders.clear()
    _found.clear()


def link(linker: Linker, fd: int, final: str, spare_name: str) -> None:
    """Give the unnamed file `fd` the name `final`, replacing a file already there (a row
    delivered again) through `spare_name`, as a rename would."""
    try:
        linker(fd, final)
    except FileExistsError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(spare_name)
        linker(fd, spare_name)
        os.replace(spare_name, final)
