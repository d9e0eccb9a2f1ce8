"""Click parameter types the commands share: a path argument or option with ``~`` expanded as the shell does.

A quoted ``"~/a.yaml"`` (or ``--json=~/r.json``, where the shell expands nothing) reaches the program unexpanded;
every path argument and path option takes :data:`PATH` (or a :class:`UserPath`), so each treats ``~`` alike.
"""

from __future__ import annotations

from typing import Any

import click

from satasim_atsn.errors import SatasimError, TypedNumber, typed_number
from satasim_atsn.fileio import expand_home


class UserPath(click.Path):
    """click.Path with a leading ``~`` expanded first (nothing else changes: a name such as ``atsn16x16`` stays).

    ``takes`` says what the parameter takes (``"a workload .npz"``), for the refusal of an empty value.
    """

    def __init__(self, *args: Any, takes: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.takes = takes

    def described(self, takes: str) -> UserPath:
        """A copy of this type whose empty-value refusal says the parameter takes ``takes``."""
        return UserPath(exists=self.exists, file_okay=self.file_okay, dir_okay=self.dir_okay,
                        readable=self.readable, takes=takes)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The value with ``~`` expanded, then click.Path's checks; an empty text (an unset variable) is refused."""
        if isinstance(value, str) and not value.strip():
            raise _empty_path(self, param)
        return super().convert(expand_home(value) if isinstance(value, str) else value, param, ctx)


def _empty_path(kind: UserPath, param: click.Parameter | None) -> SatasimError:
    """The one-line refusal of an empty path (``--arch "$UNSET"``): ``run ""`` read the working directory, and an
    empty option was taken for a file named ''; the fix says what the parameter takes, and that an option may be left
    out."""
    if isinstance(param, click.Option):
        name = param.opts[0]  # as the user most likely typed it: -o, not --out
    else:
        name = getattr(param, "metavar", None) or (param.human_readable_name if param is not None else "path").upper()
    what = "directory" if not kind.file_okay else "file" if not kind.dir_okay else "path"
    give = f"give {kind.takes}" if kind.takes else f"give a {what} name"
    optional = isinstance(param, click.Option) and not param.required
    return SatasimError.at(None, name, "is an empty path (a shell variable left unset?)",
                           give + (", or leave the option out" if optional else ""))


#: a path (or a shipped name) argument or option whose kind the command checks itself
PATH = UserPath(readable=False)
#: a file argument or option (click refuses a directory)
FILE = UserPath(dir_okay=False)
#: a directory option (click refuses a file)
DIRECTORY = UserPath(file_okay=False)
#: a workload argument or option (the command reads and checks it)
WORKLOAD_PATH = PATH.described("a workload .npz's path (satasim workload build or satasim train writes one)")
#: an architecture argument or option: a YAML path or a shipped design's name
ARCH_PATH = PATH.described("an architecture YAML's path or a shipped design's name (e.g. atsn16x16)")
#: a network option: a network YAML path or a shipped network's name
NETWORK_PATH = PATH.described("a network YAML's path or a shipped network's name (vgg16, resnet19)")
#: a workload argument read as a file (click refuses a directory)
WORKLOAD_FILE = FILE.described(WORKLOAD_PATH.takes)


class Number(click.ParamType):
    """click's float, except that a value typed beyond a float's range keeps its text for messages (TypedNumber)."""

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """A float; an overflowed one (not spelt inf or nan) as a TypedNumber."""
        number = click.FLOAT.convert(value, param, ctx)
        return typed_number(value, number) if isinstance(value, str) else number


#: a float option (a value typed beyond a float's range is echoed as typed, not as inf)
NUMBER = Number()


class NumberRange(click.FloatRange):
    """click's FloatRange, except that a value typed beyond a float's range is echoed as typed when refused."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The float in range; the refusal of an overflowed one names the text typed, not -inf."""
        number = NUMBER.convert(value, param, ctx)
        try:
            return super().convert(float(number), param, ctx)
        except click.BadParameter as error:
            if isinstance(number, TypedNumber):
                error.message = error.message.replace(repr(float(number)), number.text, 1)
            raise
