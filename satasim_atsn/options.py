"""Click parameter types the commands share: a path argument or option with ``~`` expanded as the shell does.

A quoted ``"~/a.yaml"`` (or ``--json=~/r.json``, where the shell expands nothing) reaches the program unexpanded;
every path argument and path option takes :data:`PATH` (or a :class:`UserPath`), so each treats ``~`` alike.
"""

from __future__ import annotations

from typing import Any

import click

from satasim_atsn.errors import TypedNumber, typed_number
from satasim_atsn.fileio import expand_home


class UserPath(click.Path):
    """click.Path with a leading ``~`` expanded first (nothing else changes: a name such as ``atsn16x16`` stays)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The value with ``~`` expanded, then click.Path's checks; an empty text (an unset variable) is refused."""
        if isinstance(value, str) and not value.strip():
            self.fail("is empty; give a path (was a shell variable left unset?)", param, ctx)
        return super().convert(expand_home(value) if isinstance(value, str) else value, param, ctx)


#: a path (or a shipped name) argument or option whose kind the command checks itself
PATH = UserPath(readable=False)
#: a file argument or option (click refuses a directory)
FILE = UserPath(dir_okay=False)
#: a directory option (click refuses a file)
DIRECTORY = UserPath(file_okay=False)


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
