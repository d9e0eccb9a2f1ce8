"""The `satasim` console script: imports the command line under a Ctrl-C guard.

The commands' modules (numpy, numba, matplotlib) take a few tenths of a second to import; a Ctrl-C in that time
would otherwise end in a Python traceback instead of the CLI's one line and exit code 130. Under a tight
address-space limit (`ulimit -v`) the same import can fail to map numba's compiler library; that too is one line."""

from __future__ import annotations

import errno
import signal
import sys
import threading
from collections.abc import Callable


def _load_cli() -> Callable[[], None]:
    """satasim_atsn.cli.main (importing it registers every command, and with them numpy, numba and matplotlib)."""
    from satasim_atsn.cli import main as cli_main

    return cli_main


def _out_of_address_space(error: BaseException) -> bool:
    """Whether an error while loading the tool is the process's memory limit: a MemoryError, or a shared library
    (llvmlite's, numpy's) the loader could not map, here or in the errors it was raised from (llvmlite re-raises
    the loader's error as "could not find/load shared object")."""
    seen: BaseException | None = error
    for _ in range(8):  # the chain of __cause__ / __context__, a few links at most
        if seen is None:
            return False
        text = str(seen).lower()
        if isinstance(seen, MemoryError) or isinstance(seen, OSError) and (
                seen.errno == errno.ENOMEM or "failed to map segment" in text or "cannot allocate memory" in text):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _TerminatedWhileLoading(KeyboardInterrupt):
    """SIGTERM before the command line's own handler is set (cli.main turns it into one line and 143 after)."""


def _terminated(signum: int, frame: object) -> None:
    raise _TerminatedWhileLoading


def main() -> None:
    """Import and run satasim_atsn.cli.main; an interrupt or SIGTERM before the CLI's own handler is reached ends
    in one line (SIGTERM's default action ended the process without a word)."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    try:
        try:
            cli_main = _load_cli()
        except (OSError, MemoryError) as error:
            if not _out_of_address_space(error):
                raise
            sys.stderr.write("satasim: error: out of memory while loading the tool's libraries (numba's compiler, "
                             "numpy): the process's address-space limit is too small; raise it (ulimit -v), e.g. to "
                             "2 GB or unlimited\n")
            sys.exit(2)
        finally:
            if previous is not None:  # cli.main sets its own
                signal.signal(signal.SIGTERM, previous)
        cli_main()
    except _TerminatedWhileLoading:
        sys.stderr.write("satasim: terminated\n")
        sys.exit(128 + signal.SIGTERM)
    except KeyboardInterrupt:
        sys.stderr.write("satasim: interrupted\n")
        sys.exit(130)
