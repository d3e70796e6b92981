"""C library functions the os module lacks (syncfs, linkat), or None where there are none."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from typing import Any


def libc_function(name: str, argtypes: list[Any]) -> Callable[..., int] | None:
    """libc's `name` returning an int and setting errno, or None where libc has none."""
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    try:
        fn = ctypes.CDLL(library, use_errno=True)[name]
    except (OSError, AttributeError):
        return None
    fn.argtypes = argtypes
    fn.restype = ctypes.c_int
    return fn
