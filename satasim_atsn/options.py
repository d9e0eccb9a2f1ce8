"""Click parameter types the commands share: a path argument or option with ``~`` expanded as the shell does.

A quoted ``"~/a.yaml"`` (or ``--json=~/r.json``, where the shell expands nothing) reaches the program unexpanded;
every path argument and path option takes :data:`PATH` (or a :class:`UserPath`), so each treats ``~`` alike.
"""

from __future__ import annotations

import math
from typing import Any

import click

from satasim_atsn.fileio import expand_home


class UserPath(click.Path):
    """click.Path with a leading ``~`` expanded first (nothing else changes: a name such as ``atsn16x16`` stays)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The value with ``~`` expanded, then click.Path's checks."""
        return super().convert(expand_home(value) if isinstance(value, str) else value, param, ctx)


#: a path (or a shipped name) argument or option whose kind the command checks itself
PATH = UserPath(readable=False)
#: a file argument or option (click refuses a directory)
FILE = UserPath(dir_okay=False)
#: a directory option (click refuses a file)
DIRECTORY = UserPath(file_okay=False)


class TypedNumber(float):
    """A number typed beyond a float's range ('1' and 400 nines reads as inf): its repr and str are the text as
    typed, so that a message refusing it shows what the user wrote (shortened by the CLI), not 'inf'."""

    text: str

    def __new__(cls, value: float, text: str) -> TypedNumber:
        """The float ``value`` (inf or -inf) remembering ``text``."""
        number = super().__new__(cls, value)
        number.text = text
        return number

    def __repr__(self) -> str:
        """The text as typed."""
        return self.text

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        """The text as typed, for an f-string without a format; else the float's formatting."""
        return self.text if not spec else super().__format__(spec)


class Number(click.ParamType):
    """click's float, except that a value typed beyond a float's range keeps its text for messages (TypedNumber)."""

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """A float; an overflowed one (not spelt inf or nan) as a TypedNumber."""
        number = click.FLOAT.convert(value, param, ctx)
        spelt = str(value).strip().lower().lstrip("+-")
        if isinstance(value, str) and not math.isfinite(number) and spelt not in ("inf", "infinity", "nan"):
            return TypedNumber(number, value.strip())
        return number


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
