"""glibc's allocator told to give big buffers back, in the long-lived processes.

A copy holds buffers of up to ``batch.maxBytes`` (10 MiB by default): a search answer,
its documents, the bulk body built from them, several per worker at once. glibc
serves an allocation above its mmap threshold with its own mapping and unmaps it on
free, but each such buffer freed raises the threshold to its size (up to 32 MiB), after
which buffers that size come from the arena of the thread that asked, and freed they
stay in the process's RSS. With four copy threads, one arena each, that is what took
the operator past its memory target in the benchmark's memory case. A fixed threshold
(``mallopt(M_MMAP_THRESHOLD)``, which also turns the adjustment off) keeps RSS to what
is alive. No library does this; ``mallopt`` is glibc's documented interface, and
elsewhere (musl, other platforms) nothing changes.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("ferry.allocator")
M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
MMAP_THRESHOLD = 1024 * 1024


def release_big_buffers() -> bool:
    """Fix glibc's mmap threshold at 1 MiB; False where there is no glibc mallopt."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    if not done:
        log.warning("mallopt(M_MMAP_THRESHOLD) refused; big buffers may stay in RSS")
    return done
