"""The `satasim` command line: one click group; each area contributes its commands.

Commands live beside the code they drive (``hw/commands.py``, ``train/commands.py``,
``traces/commands.py``, ``study/commands.py``) so that this file stays a thin index.
A :class:`~satasim_atsn.errors.SatasimError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import importlib
import sys

import click

from satasim_atsn import __version__
from satasim_atsn.errors import SatasimError

# module path -> attribute holding a list of click commands/groups
COMMAND_MODULES = (
    "satasim_atsn.hw.commands",
    "satasim_atsn.traces.commands",
    "satasim_atsn.train.commands",
    "satasim_atsn.study.commands",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="satasim")
def cli() -> None:
    """Cycle-accurate simulator of spiking-neural-network accelerators (ATSN, DTSNN, conventional)."""


def _register_commands() -> None:
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        for command in module.COMMANDS:
            cli.add_command(command)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user errors into one line and exit code 2."""
    try:
        cli.main(args=argv, prog_name="satasim", standalone_mode=False)
    except SatasimError as error:
        click.echo(f"satasim: error: {error}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("satasim: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(2 if error.exit_code == 1 or error.exit_code == 2 else error.exit_code)
    except KeyboardInterrupt:
        click.echo("satasim: interrupted", err=True)
        sys.exit(130)
    sys.exit(0)
