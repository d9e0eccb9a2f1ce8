"""The `satasim` command line: one click group; each area contributes its commands.

Commands live beside the code they drive (``hw/commands.py``, ``train/commands.py``,
``traces/commands.py``, ``study/commands.py``) so that this file stays a thin index.
A :class:`~satasim_atsn.errors.SatasimError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import errno
import importlib
import os
import signal
import sys
import threading
from typing import IO, Any

import click

from satasim_atsn import __version__
from satasim_atsn.errors import SatasimError, shorten_digits
from satasim_atsn.fileio import standard_stream
from satasim_atsn.runtime import keep_freed_memory
from satasim_atsn.threads import apply_thread_policy

# DESIGN section 9: numba's OpenMP and OpenBLAS worker threads must not busy-wait against each other (on
# 2 cores a spinning thread takes the core the other library needs). Set before any command module
# imports numpy, so that OpenBLAS and OpenMP read them when they start; a user's own setting wins.
apply_thread_policy()

# module path -> attribute holding a list of click commands/groups
COMMAND_MODULES = (
    "satasim_atsn.hw.commands",
    "satasim_atsn.traces.commands",
    "satasim_atsn.train.commands",
    "satasim_atsn.study.commands",
)


class UserError(click.ClickException):
    """A SatasimError or a bad option, shown as one line on stderr with exit code 2."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        """One line: ``satasim: error: <message>``."""
        click.echo(f"satasim: error: {shorten_digits(' '.join(self.format_message().split()))}", err=True)


class Stopped(Exception):  # noqa: N818 - a stop, not an error
    """Ctrl-C or SIGTERM inside a command, carried past click (which would print an empty line before its
    Abort); :func:`main` prints one line for it."""


class AsksForHelp(click.UsageError):
    """A group called without a command (`satasim`, `satasim workload`): its help on stderr and exit code 2, with
    any click setup.cfg admits (click 8.1 printed the help on stdout and exited 0; click >= 8.2 raises
    NoArgsIsHelpError)."""


def _asks_for_help(error: click.UsageError) -> bool:
    """A group called without a command (AsksForHelp, or click's NoArgsIsHelpError): its help is the answer."""
    kind = getattr(click.exceptions, "NoArgsIsHelpError", AsksForHelp)
    return isinstance(error, (AsksForHelp, kind)) and error.ctx is not None


class SatasimGroup(click.Group):
    """The command group; a user error inside any command ends as :class:`UserError`, so that
    ``cli.main`` in click's standalone mode (and click's CliRunner) behaves like :func:`main`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """The group alone (`satasim`) raises AsksForHelp, whatever click's version; otherwise click's parsing."""
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            raise AsksForHelp("no command given", ctx=ctx)
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                               list[str]]:
        """The command of ``args[0]``; a subgroup alone (`satasim workload`) raises AsksForHelp, as the group does."""
        name, command, rest = super().resolve_command(ctx, args)
        if (isinstance(command, click.Group) and not rest and command.no_args_is_help
                and not ctx.resilient_parsing):
            raise AsksForHelp("no command given", ctx=click.Context(command, info_name=name, parent=ctx))
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand, turning SatasimError and click usage errors into one-line errors."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (Terminated)
            raise Stopped() from stop
        except SatasimError as error:
            raise UserError(str(error)) from None
        except click.UsageError as error:
            if _asks_for_help(error):
                raise
            command = error.ctx.command_path if error.ctx is not None else "satasim"
            raise UserError(f"{command}: {error.format_message().rstrip('.')}; see '{command} --help'") from None


@click.group(cls=SatasimGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="satasim")
def cli() -> None:
    """Cycle-accurate simulator of spiking-neural-network accelerators (ATSN, DTSNN, conventional)."""


def _register_commands() -> None:
    """Add every area's commands to the group (once)."""
    if cli.commands:
        return
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        for command in module.COMMANDS:
            cli.add_command(command)


def _working_directory_exists() -> bool:
    try:
        os.getcwd()
    except FileNotFoundError:
        return False
    return True


def _environment_problem() -> str | None:
    """What in the process's environment would make the command modules' imports fail in a traceback: a deleted
    working directory (numpy's import fails on Python 3.13) or a NUMBA_NUM_THREADS numba refuses (0) or warns
    about (text). main() says it in one line; the module then registers nothing."""
    if not _working_directory_exists():
        return "the current directory no longer exists; cd into an existing one"
    threads = os.environ.get("NUMBA_NUM_THREADS")
    if threads is not None and not (threads.strip().isdigit() and int(threads) >= 1):
        return f"NUMBA_NUM_THREADS: is {threads!r}, not a positive number of threads; unset it or give one (e.g. 2)"
    layer = os.environ.get("NUMBA_THREADING_LAYER")
    if layer is not None and layer.strip().lower() not in THREADING_LAYERS:
        return (f"NUMBA_THREADING_LAYER: is {layer!r}, not one of numba's threading layers "
                f"({', '.join(THREADING_LAYERS)}); unset it")
    if layer is not None and layer.strip().lower() == "tbb":
        import importlib.util

        if importlib.util.find_spec("tbb") is None:
            return "NUMBA_THREADING_LAYER: is 'tbb', which is not installed; unset it, or pip install tbb"
    return None


#: numba's NUMBA_THREADING_LAYER values (its docs: "the threading layers")
THREADING_LAYERS = ("default", "safe", "forksafe", "threadsafe", "tbb", "omp", "workqueue")


if _environment_problem() is None:
    _register_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user errors into one line and exit code 2.

    It first lets the allocator keep freed memory (satasim_atsn.runtime): the forward, the engine and
    the trainer then reuse their pages step after step instead of faulting them in again."""
    keep_freed_memory()
    problem = _environment_problem()
    if problem is not None:  # every relative path, or the first numba import, would fail later in a traceback
        click.echo(f"satasim: error: {problem}", err=True)
        sys.exit(2)
    _register_commands()
    previous = _terminate_as_interrupt()
    stdout = sys.stdout
    if _json_on_stdout(sys.argv[1:] if argv is None else argv):
        sys.stdout = sys.stderr  # the summary goes to stderr, so standard output holds the JSON alone (for jq)
    try:
        _refuse_repeated_options(sys.argv[1:] if argv is None else argv)
        cli.main(args=argv, prog_name="satasim", standalone_mode=False)
    except SatasimError as error:
        click.echo(f"satasim: error: {error}", err=True)
        sys.exit(2)
    except (Stopped, click.exceptions.Abort) as error:  # a stop in a command, or one click turned into Abort
        if isinstance(error.__cause__, Terminated):
            click.echo("satasim: terminated", err=True)
            sys.exit(128 + signal.SIGTERM)
        click.echo("satasim: interrupted", err=True)
        sys.exit(130)
    except MemoryError:  # a network or image count beyond this machine's memory: the user's to shrink
        args = sys.argv[1:] if argv is None else argv
        simulates = bool(args) and args[0] in ("run", "compare", "sweep", "bench", "reproduce", "validate")
        click.echo("satasim: error: out of memory: the network, the images or the batch do not fit in this machine's "
                   "memory; use fewer images (--images), a smaller batch or a smaller network"
                   + ("; an image's memory grows with the workload's timesteps T (one VGG16 image at T = 1024 "
                      "takes about 2 GB): build one with fewer (workload build --timesteps)" if simulates else "")
                   + ("; a simulation also needs larger PE memories when the mapping has many folds "
                      "(pe.data_memory_bytes), or a smaller array (array.rows, array.cols)" if simulates else ""),
                   err=True)
        sys.exit(2)
    except OSError as error:
        if error.errno not in ENVIRONMENT_ERRNOS:
            raise
        _silence_stdout()
        where = f" ({error.filename})" if error.filename else ""
        click.echo(f"satasim: error: {error.strerror}{where}; {ENVIRONMENT_ERRNOS[error.errno]}", err=True)
        sys.exit(2)
    except click.UsageError as error:
        if _asks_for_help(error):  # `satasim` or `satasim workload` alone: the help, as it reads, not in one line
            click.echo(error.ctx.get_help(), err=True)
            sys.exit(2)
        UserError(f"{error.format_message().rstrip('.')}; see 'satasim --help'").show()
        sys.exit(2)
    except click.ClickException as error:
        error.show()
        sys.exit(2 if error.exit_code == 1 or error.exit_code == 2 else error.exit_code)
    except Terminated:
        click.echo("satasim: terminated", err=True)
        sys.exit(128 + signal.SIGTERM)
    except KeyboardInterrupt:
        click.echo("satasim: interrupted", err=True)
        sys.exit(130)
    except SystemError as error:  # a signal's exception raised while numba ran arrives wrapped in SystemErrors
        stop = interrupt_behind(error)
        if stop is None:
            raise
        click.echo("satasim: terminated" if isinstance(stop, Terminated) else "satasim: interrupted", err=True)
        sys.exit(128 + signal.SIGTERM if isinstance(stop, Terminated) else 130)
    finally:
        sys.stdout = stdout
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    sys.exit(0)


def _refuse_repeated_options(argv: list[str]) -> None:
    """A value option given twice (`--images 10 ... --images 1000`) kept the last value without a word (click's
    rule); a simulator run on the wrong count is worse than a one-line error. Options that collect values
    (``--set``) and flags are left alone."""
    command: click.Command = cli
    words = list(argv)
    while isinstance(command, click.Group) and words:  # `workload stats ...`: descend to the command
        sub = command.get_command(click.Context(command), words[0])
        if sub is None:
            return
        command, words = sub, words[1:]
    takes_value = {}
    for param in command.params:
        if isinstance(param, click.Option) and not param.is_flag and not param.count:
            for name in param.opts + param.secondary_opts:
                takes_value[name] = param
    given: dict[str, list[str]] = {}
    i = 0
    while i < len(words) and words[i] != "--":
        name, attached = _option_word(words[i], takes_value)
        param = takes_value.get(name)
        if param is None:
            i += 1
            continue
        value = attached if attached is not None else (words[i + 1] if i + 1 < len(words) else "")
        if not param.multiple:
            given.setdefault(param.opts[-1], []).append(value)
        i += 1 if attached is not None else 2
    for option, values in given.items():
        if len(values) > 1:
            spelled = ", ".join(v if v.strip() else repr(v) for v in values)  # an empty value is seen as ''
            raise UserError(f"{option}: given {len(values)} times ({spelled}); give it once (a command "
                            "keeps one value, and the last one would win silently)")


def _option_word(word: str, short_options) -> tuple[str, str | None]:
    """(option name, value attached to it or None) of one command-line word: ``--opt=VALUE``, or a short option
    with its value attached as click reads it (``-oDIR``, ``-j2``) when ``word[:2]`` is in ``short_options``."""
    if word.startswith("--"):
        name, sep, attached = word.partition("=")
        return name, attached if sep else None
    if len(word) > 2 and word[0] == "-" and word[:2] in short_options:
        return word[:2], word[2:]
    return word, None


#: the options whose file a command may write to standard output (its readable text then goes to stderr)
FILE_OPTIONS = ("--json", "-o", "--output", "--nir")


def _json_on_stdout(argv: list[str]) -> bool:
    """True when ``--json`` (or a file output: ``-o`` of the workload commands, ``--nir``) names standard output
    (``-``, ``/dev/stdout``, ``/dev/fd/1``): the file is written through descriptor 1, and the readable summary
    must not be mixed into it (a rate table written with ``-o -`` ended in 'wrote -: ...')."""
    for i, word in enumerate(argv):
        name, attached = _option_word(word, FILE_OPTIONS)
        if name not in FILE_OPTIONS:
            continue
        value = attached if attached is not None else (argv[i + 1] if i + 1 < len(argv) else None)
        if value is not None and standard_stream(value) == 1:
            return True
    return False


# what the machine refused, with what the user can do about it (a traceback said it less clearly)
ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: "free some space or write elsewhere (standard output too: is it a full disk or /dev/full?)",
    errno.EMFILE: "raise the limit of open files (ulimit -n) or use fewer worker processes (--jobs)",
    errno.ENFILE: "the system has too many open files; close some programs or use fewer --jobs",
    # a path the user gave that no file system takes (a part over 255 bytes) or that loops: where no command's own
    # check names it first, the operating system's refusal still becomes one line naming the path
    errno.ENAMETOOLONG: "give a shorter path (file systems take at most 255 bytes per name)",
    errno.ELOOP: "the path runs through a loop of symbolic links; point them at a real file",
}


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that Python's flush at exit cannot fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def interrupt_behind(error: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or SIGTERM (:class:`Terminated`) behind ``error``, if its chain of causes holds one: the handler's
    exception raised inside a numba dispatcher or unpickler comes back as "SystemError: ... returned a result with an
    exception set" (a 70-line traceback in place of `satasim: terminated`; docs audit, session 48)."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        if isinstance(link, KeyboardInterrupt):
            return link
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return None


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C: worker pools are stopped and no file is left half-written."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def _terminate_as_interrupt() -> Any:
    """Turn SIGTERM into :class:`Terminated` while the command runs; returns the previous handler (None if not set).

    By default SIGTERM ends the process at once, and the sweep's or compare's worker processes, which wait
    for work from it, then run forever; as an exception it unwinds like Ctrl-C.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    return signal.SIG_DFL if previous is None else previous  # None: a handler not set from Python


if __name__ == "__main__":  # python -m satasim_atsn.cli, as python -m satasim_atsn
    main()
