"""Process-wide settings: where numba caches the kernels' machine code, and (for the ``satasim`` command) a C
allocator that keeps freed memory for reuse.

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
import functools
import os
import stat
import sys
import tempfile
from pathlib import Path

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


KERNEL_PACKAGES = ("hw", "snn", "traces", "train")  # the subpackages whose kernels.py files numba caches


def _can_write(directory: str | os.PathLike) -> bool:
    """Whether a file can be made in ``directory`` (created if missing): numba's own test of a cache location."""
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError:
        return False
    return True


def _user_id() -> int | None:
    """This process's user id (None where the platform has none)."""
    getuid = getattr(os, "getuid", None)
    return getuid() if getuid else None


def _private_directory(directory: Path) -> bool:
    """Make ``directory`` (0700) or accept it if this user owns it and nobody else may write it: a cache that
    another user could fill would run their code."""
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        info = directory.lstat()
    except OSError:
        return False
    owned = _user_id() is None or info.st_uid == _user_id()
    return stat.S_ISDIR(info.st_mode) and owned and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) \
        and _can_write(directory)


@functools.cache
def kernel_cache() -> bool:
    """Whether the ``@njit`` kernels may cache their machine code on disk (``cache=`` of every decorator).

    numba caches under ``NUMBA_CACHE_DIR`` if set, else next to the source (``__pycache__``), else in the user's
    cache directory, and raises at import when none is writable: a read-only install run with a read-only HOME
    could not start. Then a private directory in the temp directory is used (and put in ``NUMBA_CACHE_DIR`` for worker
    processes); when not even that exists, the kernels are compiled in every process instead (slower start, same
    results).
    """
    from numba.core import config
    from numba.misc.appdirs import user_cache_dir

    if config.CACHE_DIR and _can_write(config.CACHE_DIR):
        return True
    package = Path(__file__).resolve().parent
    if all(_can_write(package / name / "__pycache__") for name in KERNEL_PACKAGES):
        return True
    if _can_write(user_cache_dir(appname="numba", appauthor=False)):
        return True
    fallback = _private_temp_directory("numba-cache")
    if fallback is None:
        return False
    config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"] = str(fallback)
    return True


def _private_temp_directory(purpose: str) -> Path | None:
    """``<temp>/satasim-<purpose>-<uid>``, made private (:func:`_private_directory`), or None if impossible."""
    user = _user_id()
    try:
        directory = Path(tempfile.gettempdir()) / f"satasim-{purpose}-{'user' if user is None else user}"
    except OSError:  # no usable temporary directory
        return None
    return directory if _private_directory(directory) else None


def matplotlib_config() -> None:
    """Give matplotlib a writable configuration directory before it is imported, where its own is not.

    With a read-only HOME (or XDG directories), matplotlib makes a new temporary directory in every process and
    logs two warning lines, even under ``--quiet``; it then rebuilds its font cache each time. A private temp
    directory (``MPLCONFIGDIR``, passed to worker processes) keeps the cache and the terminal quiet; where not
    even that can be made, a one-line SatasimError says what to set. Only on Linux and BSD, whose XDG rule is
    followed here; elsewhere matplotlib is left to itself.

    The backend is Agg whatever ``MPLBACKEND`` says: satasim only writes image files, and a backend name
    matplotlib does not know (``MPLBACKEND=nonsense``) failed its import in a traceback."""
    os.environ["MPLBACKEND"] = "Agg"
    given = os.environ.get("MPLCONFIGDIR")
    if given:
        if _can_write(given):
            return
    elif sys.platform.startswith(("linux", "freebsd")):
        try:
            home = Path.home()
        except RuntimeError:  # no home directory
            home = None
        bases = [os.environ.get("XDG_CONFIG_HOME") or (home and home / ".config"),
                 os.environ.get("XDG_CACHE_HOME") or (home and home / ".cache")]
        if all(base and _can_write(Path(base) / "matplotlib") for base in bases):
            return
    else:
        return
    fallback = _private_temp_directory("matplotlib")
    if fallback is None:  # matplotlib's own fallback, a temp directory, would end in an OSError traceback
        from satasim_atsn.errors import SatasimError

        raise SatasimError.at(None, "MPLCONFIGDIR", "matplotlib needs a writable directory for its settings and "
                              "font cache, and neither HOME, the XDG directories nor the temp directory is writable",
                              "set MPLCONFIGDIR (or TMPDIR) to a writable directory")
    os.environ["MPLCONFIGDIR"] = str(fallback)


__all__ = ["keep_freed_memory", "kernel_cache", "matplotlib_config", "OPT_OUT_VARIABLE"]
