"""The `satasim` console script: imports the command line under a Ctrl-C guard.

The commands' modules (numpy, numba, matplotlib) take a few tenths of a second to import; a Ctrl-C in that time
would otherwise end in a Python traceback instead of the CLI's one line and exit code 130."""

from __future__ import annotations

import sys


def main() -> None:
    """Import and run satasim_atsn.cli.main; an interrupt before the CLI's own handler is reached ends in one line."""
    try:
        from satasim_atsn.cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:
        sys.stderr.write("satasim: interrupted\n")
        sys.exit(130)
