"""General file helpers any floor may import: atomic writes (no partial files on disk-full or kill)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from satasim_atsn.errors import SatasimError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to a temp file beside ``path``, fsync, and rename it into place (no partial files).

    An OS error (unwritable place, full disk) becomes a one-line SatasimError naming the path.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        raise SatasimError.at(str(path), None, f"cannot be written ({error.strerror or error})",
                              "choose a writable location") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(error, OSError):
            raise SatasimError.at(str(path), None, f"cannot be written ({error.strerror or error})",
                                  "choose a writable location") from None
        raise


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable: fsync the directory that holds the new name (where the OS allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write UTF-8 text (results, reports, CSVs)."""
    atomic_write_bytes(path, text.encode("utf-8"))
