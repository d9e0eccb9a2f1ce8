"""Process-wide settings of the ``satasim`` command: the C allocator keeps freed memory for reuse.

Why: the forward, the engine and the trainer allocate and free arrays of tens of MB per layer and
timestep (a VGG16-topology batch of 256 images holds 142 MB of int64 membranes). glibc serves every
allocation above its mmap threshold with fresh pages and returns them on free, so each step pays one
page fault per 4 KiB again; on a virtual machine that is 2-3 us each, and it was more than half of
the CIFAR-10 forward's time (docs/kernels.md, "Allocator"). Keeping freed memory in the heap
(``mallopt(M_MMAP_MAX, 0)``, ``mallopt(M_TRIM_THRESHOLD, 2 GiB)``) lets the next step reuse the same
pages. No result depends on it; the peak memory stays the same within a few MB.

Only the CLI entry point calls :func:`keep_freed_memory`; a library user's process is left alone.
``SATASIM_SYSTEM_MALLOC=1`` turns it off. On a C library without glibc's ``mallopt`` it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys

OPT_OUT_VARIABLE = "SATASIM_SYSTEM_MALLOC"
M_TRIM_THRESHOLD = -1  # glibc malloc.h
M_MMAP_MAX = -4  # glibc malloc.h
TRIM_THRESHOLD_bytes = 2**31 - 1  # the largest value mallopt's int takes: freed memory up to 2 GiB stays


def keep_freed_memory() -> bool:
    """Ask glibc to serve large arrays from its heap and keep freed memory; True if it agreed.

    False (nothing changed) when ``SATASIM_SYSTEM_MALLOC`` is set to anything but ``0`` or empty, off
    Linux, or when the C library has no ``mallopt`` or refuses a setting (musl's stub returns 0).
    """
    if os.environ.get(OPT_OUT_VARIABLE, "") not in ("", "0"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(M_MMAP_MAX, 0) != 1:
        return False
    return mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_bytes) == 1


__all__ = ["keep_freed_memory", "OPT_OUT_VARIABLE"]
