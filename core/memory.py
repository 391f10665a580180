"""Handing freed memory back to the operating system between the windows of a long analysis.

glibc's allocator keeps the pages of freed blocks for reuse. The fit and the refiner allocate
and free tens of megabytes of differently sized buffers per window (torch, numpy, scipy), and
over thousands of frames the pages kept grow the process without bound: the fit of a 5 664-frame
clip went from 354 to 451 MB over its 23 windows with no data held beyond a window.
``malloc_trim(0)`` after each of their windows and at the end of every stage (core/stages.py)
returns those pages (the same fit stays at 334-336 MB) for 2-3 ms a call. Where the C library has
no ``malloc_trim`` (macOS, Windows, musl) this does nothing: their allocators return memory on
their own terms.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache


@cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None where the C library lacks it."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Return the allocator's free pages to the operating system; whether it could (False where
    the C library has no ``malloc_trim`` or nothing was returned)."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
