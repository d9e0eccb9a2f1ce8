"""The project's own error type: every mistake a user can make becomes one of these.

The CLI prints ``str(error)`` on one line and exits with code 2, so messages must name
the file, the field and the fix. Build them with :func:`SatasimError.at` to keep that shape.
"""

from __future__ import annotations

import math
import re


class SatasimError(Exception):
    """A user-caused error: bad file, bad field, impossible request. Never a bug."""

    kind = "error"
    field: str | None = None  # the parts of a message built by :meth:`at`, for a caller that rewords it
    problem: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(shorten_digits(" ".join(str(message).split())))

    @classmethod
    def at(cls, where: str | None, field: str | None, problem: str, fix: str | None = None) -> SatasimError:
        """Build a message of the form ``file: field: problem; fix``."""
        parts = [p for p in (where, field) if p]
        text = ": ".join(parts + [problem]) if parts else problem
        if fix:
            text += f"; {fix}"
        error = cls(text)
        error.field, error.problem = field, problem
        return error


class WorkloadError(SatasimError):
    """A workload .npz file is missing, malformed, or inconsistent."""

    kind = "workload"


class ArchError(SatasimError):
    """An architecture or technology YAML file is malformed or inconsistent."""

    kind = "architecture"


class MappingError(SatasimError):
    """A network cannot be mapped onto the given architecture."""

    kind = "mapping"


class DatasetError(SatasimError):
    """A dataset is missing, corrupt, or of the wrong shape."""

    kind = "dataset"


class TrainError(SatasimError):
    """Training cannot proceed (bad config, NaN loss, incompatible checkpoint)."""

    kind = "train"


class StudyError(SatasimError):
    """A study (sweep/compare/reproduce) file or output directory is unusable."""

    kind = "study"


#: a run of digits longer than any number a field takes (2^63 has 19): shortened where a message echoes it
_LONG_DIGITS = re.compile(r"\d{41,}")


def shorten_digits(text: str) -> str:
    """``text`` with each run of more than 40 digits (a value of hundreds of digits a user typed or wrote in a file)
    shortened to its first 20 digits, '...' and its length, so that a one-line message stays one readable line."""
    return _LONG_DIGITS.sub(lambda run: f"{run.group()[:20]}... ({len(run.group())} digits)", text)


class TypedNumber(float):
    """A number written beyond a float's range ('1' and 400 zeros reads as inf), typed as an option or written in a
    YAML file: its repr and str are the text as written, so that a message refusing it shows what the user wrote
    (shortened by :func:`shorten_digits`), not 'inf'."""

    text: str

    def __new__(cls, value: float, text: str) -> TypedNumber:
        """The float ``value`` (inf or -inf) remembering ``text``."""
        number = super().__new__(cls, value)
        number.text = text
        return number

    def __getnewargs__(self) -> tuple[float, str]:
        """The arguments that make it again (copy.deepcopy of a parsed YAML file, pickling)."""
        return float(self), self.text

    def __repr__(self) -> str:
        """The text as written."""
        return self.text

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        """The text as written, for an f-string without a format; else the float's formatting."""
        return self.text if not spec else super().__format__(spec)


def typed_number(text: str, number: float) -> float:
    """``number``, the float read from ``text``: a :class:`TypedNumber` when it overflowed to an infinity (the text
    is digits, not spelt inf or nan), else ``number`` itself."""
    spelt = str(text).strip().lower().lstrip("+-").lstrip(".")
    if math.isfinite(number) or spelt in ("inf", "infinity", "nan"):
        return number
    return TypedNumber(number, str(text).strip())


_REPR = __import__("reprlib").Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlevel = 60, 60, 2
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4


def shown(value: object) -> str:
    """A short repr of a user's value for an error message: bounded even for deep or huge
    (alias-bomb) structures, whose plain repr would take exponential time and memory. Booleans and null are
    spelled as the user wrote them in YAML or JSON (true, false, null), not as Python's True, False, None."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, TypedNumber):  # a number written beyond a float's range: as written, shortened
        return shorten_digits(value.text)
    if isinstance(value, str):  # a text of hundreds of digits ('set: [clock_hz=1000...0.0]'): shortened, not cut
        value = shorten_digits(value)
    if isinstance(value, int):
        try:
            return shorten_digits(repr(value))
        except ValueError:  # beyond Python's limit of digits for a conversion to text (4300)
            return "an integer of more than 4300 digits"
    return _REPR.repr(value)


def shown_number(value: float) -> str:
    """A number as short as ``:g`` writes it when that reads back as the same float, else its full repr: a value
    such as 0.9999999 is never shown (or put in a suggested option) as ``1``."""
    if not math.isfinite(value):  # inf, nan; a number typed beyond a float's range (the CLI's TypedNumber): as typed
        return str(value)
    short = f"{float(value):g}"
    return short if float(short) == float(value) else repr(float(value))


def counted(count: int, noun: str) -> str:
    """``count`` and ``noun``, plural unless the count is 1 ("1 membrane", "2 membranes"), for messages."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def closest(value: object, allowed, cutoff: float = 0.6) -> str | None:
    """The allowed name closest to a mistyped one (difflib's ratio >= ``cutoff``), or None."""
    import difflib

    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(value: object, allowed, listing: str = "use one of", *, sort: bool = False,
                 limit: int | None = None, cutoff: float = 0.6) -> str:
    """A fix for an unknown name: the closest allowed one, or ``listing`` followed by the allowed names
    (sorted if asked; the first ``limit`` of them and a count of the rest)."""
    options = [str(a) for a in allowed]
    close = closest(value, options, cutoff)
    if close is not None:
        return f"did you mean {shown(close)}?"
    listed = sorted(options) if sort else options
    more = "" if limit is None or len(listed) <= limit else f" (and {len(listed) - limit} more)"
    return f"{listing} {', '.join(listed[:limit])}{more}"


def file_count(value: object) -> int | None:
    """A count written in a YAML file as an int by the architecture files' rule (``hw.arch_fields._number``): an int, an
    integral float (``2.0``) or numeric text (``'1e3'``, YAML 1.1's reading of an exponent without a dot) that is a
    whole number; None for anything else (a bool, a fraction, other text, inf or NaN), for the caller to refuse."""
    import numbers

    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, str):
        try:
            value = float(value.replace("_", ""))
        except ValueError:
            return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def whole_count(value: object, where: str | None, field: str, error: type[SatasimError] = SatasimError) -> int:
    """``value`` as an int when it is one (numpy integers too); a float, string, bool or None given where a count
    or an index belongs (a script's ``images=1.5``) is a one-line ``error`` naming ``field``, never a truncation."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error.at(where, field, f"must be a whole number (an int), got {shown(value)} ({type(value).__name__})",
                       "pass an int")
    return int(value)
