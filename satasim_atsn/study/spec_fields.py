"""A study file's fields and values: the architecture's field paths, numbers as written (YAML 1.1 quirks),
ranges, and a value's spelling back as an override; :func:`fail` words every refusal of a study file."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from satasim_atsn.errors import SatasimError, StudyError, did_you_mean, shown
from satasim_atsn.hw.tech import to_float

DEFAULT_STUDY_IMAGES = 100  # images per point of a study that gives none (fewer if the workload holds fewer)


def suggest(name: str, choices: Iterable[str]) -> str:
    """A "did you mean" hint, or a list of the valid choices (the first 12, sorted)."""
    return did_you_mean(name, list(choices), "valid:", sort=True, limit=12)


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1} (leaves only)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def arch_field_paths(arch_path: Path, role: str = "the study's base architecture") -> dict[str, Any]:
    """The arch's field paths and resolved values (load_arch().to_dict()); ``role`` names it in a refusal."""
    from satasim_atsn.hw.arch import load_arch

    try:
        arch = load_arch(arch_path)
    except SatasimError as error:
        raise StudyError(f"{arch_path}: {role} is invalid: {error}") from None
    fields = flatten(arch.to_dict())
    if arch.tech is not None:  # every technology-table entry can be set or varied as tech.<entry>
        fields.update({f"tech.{key}": arch.tech.value(key) for key in arch.tech.entries})
    return fields


#: the fixes of a missing top-level field, each with an example (an installed package has no docs/studies.md)
MISSING_FIX = {
    "name": "add it: a one-line name for the study, e.g. name: my_buffers",
    "workload": ("add it: the workload .npz, relative to the study file, e.g. "
                 "workload: ../workloads/vgg16_cifar10.npz"),
    "vary": ("add it: each varied field with its values, one per line, e.g. 'vary: {pe.data_memory_bytes: [512, 1024], "
             "pe.input_spike_buffer_bytes: {start: 32, stop: 256, factor: 2}}'"),
    "metrics": "add it: the metrics to collect, e.g. metrics: [fps, energy_per_image_uJ, area_mm2]",
}


def fail(where: str, key: str, problem: str, fix: str) -> StudyError:
    return StudyError.at(where, key, problem, fix)


def is_scalar(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool)) and value is not None


def as_number(value: Any) -> int | float | None:
    """``value`` as a number, or None: ints and floats as they are, numeric text as a float.

    PyYAML (YAML 1.1) reads an exponent without a dot, ``1e8``, as the text '1e8'; the architecture's fields
    and technology entries accept such text (``float(text.replace("_", ""))``, see hw.arch_fields._number), so list
    values, ``--set`` and arch files take ``1e8``; range bounds and point keys read it by the same rule.
    Booleans are not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value.replace("_", ""))
        except ValueError:
            return None
    return None


@functools.cache
def field_kind(fname: str) -> str | None:
    """'int' or 'float' for a numeric architecture field (every tech.<entry> is a float), else None."""
    from satasim_atsn.hw.arch_overrides import schema_at

    if fname.startswith("tech."):
        return "float"
    try:
        spec = schema_at(fname.split("."))
    except SatasimError:
        return None
    return spec[0] if isinstance(spec, tuple) and spec[0] in ("int", "float") else None


def key_value(fname: str, value: Any) -> Any:
    """A point's value as its key sees it: numeric text of a numeric field as the number it spells.

    So ``1e8`` (text to YAML) and ``1.0e+8`` (a float) of a float field, ``1e3`` and ``1000`` of an integer
    field, and ``48`` and ``48.0`` of either, give one key. A number is written as its field's kind (an
    integral float of an int field as an int, an int of a float field as a float); that is how the
    shipped studies already wrote them, so their keys are unchanged (tests/test_study_spec_values.py)."""
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    kind = field_kind(fname) if isinstance(value, str) or numeric else None
    number = as_number(value) if kind else None
    if number is None or not math.isfinite(to_float(number)):  # an int of 400 digits: as written, refused later
        return value
    if kind == "int" and float(number).is_integer():
        return int(number)
    return float(number) if kind == "float" or isinstance(value, str) else value


def _clean_number(value: float) -> float | int:
    rounded = float(f"{value:.12g}")
    return int(rounded) if rounded.is_integer() and isinstance(value, int) else rounded


def expand_range(spec: dict, where: str, key: str) -> list:
    """Values of a range {start, stop, step} or {start, stop, factor}; stop inclusive."""
    allowed = {"start", "stop", "step", "factor"}
    for name in spec:
        if name not in allowed:
            raise fail(where, f"{key}.{name}", "unknown range key", suggest(str(name), allowed))
    if "start" not in spec or "stop" not in spec:
        raise fail(where, key, "a range needs start and stop", "write {start: A, stop: B, step: S}")
    if ("step" in spec) == ("factor" in spec):
        raise fail(where, key, "a range needs exactly one of step or factor", "e.g. step: 64 or factor: 2")
    spec = dict(spec)
    for name in ("start", "stop", "step", "factor"):
        value = spec.get(name, 1)
        number = as_number(value)  # 1e8 is text to YAML; lists and --set accept it, so ranges do too
        if number is None:
            raise fail(where, f"{key}.{name}", f"must be a number, got {shown(value)}", "write a number")
        if not math.isfinite(to_float(number)) or abs(number) > 1e15:  # to_float: no OverflowError
            raise fail(where, f"{key}.{name}", f"must be a finite number of sane size, got {shown(value)}",
                        "write a number")
        if name in spec:
            spec[name] = number
    start, stop = spec["start"], spec["stop"]
    is_int = all(isinstance(spec.get(n, 1), int) for n in ("start", "stop", "step"))
    values: list = []
    if "step" in spec:
        step = spec["step"]
        if step <= 0 or start > stop:
            raise fail(where, key, f"empty range (start {start}, stop {stop}, step {step})",
                        "use start <= stop and a positive step")
        count = int((stop - start) / step + 1e-9) + 1
        if count > 100000:
            raise fail(where, key, f"{count} values", "use a coarser step")
        values = [start + i * step if is_int else _clean_number(start + i * step) for i in range(count)]
    else:
        factor = spec["factor"]
        if factor <= 1 or start <= 0 or start > stop:
            raise fail(where, key, f"empty range (start {start}, stop {stop}, factor {factor})",
                        "use 0 < start <= stop and factor > 1")
        count = int(math.floor(math.log(stop * (1 + 1e-12) / start) / math.log(factor))) + 1
        if count > 100000:
            raise fail(where, key, f"{count} values", "use a larger factor")
        value = start
        while value <= stop * (1 + 1e-12):
            values.append(int(round(value)) if isinstance(start, int) and isinstance(factor, int) else
                          _clean_number(value))
            value *= factor
    if len(values) > 100000:
        raise fail(where, key, f"{len(values)} values", "use a coarser step")
    return values


def axis_values(value: Any, where: str, key: str) -> list:
    if isinstance(value, list):
        if not value:
            raise fail(where, key, "empty list of values", "give at least one value")
        for item in value:
            if item is None:
                raise fail(where, key, "a null value sets nothing", "use numbers, strings or booleans")
            if not is_scalar(item):
                raise fail(where, key, f"value {shown(item)} is not a scalar", "use numbers, strings or booleans")
        return list(value)
    if isinstance(value, dict):
        values = expand_range(value, where, key)
        field_name = key.split("].", 1)[1] if key.startswith("vary.zip[") else key.removeprefix("vary.")
        if field_kind(field_name) == "int" and all(float(v).is_integer() for v in values):
            values = [int(v) for v in values]  # {start: 64, stop: 256, step: 64.0} of an integer field: 64, not 64.0
        return values
    if is_scalar(value):
        return [value]
    raise fail(where, key, f"cannot vary over {shown(value)}", "give a list or a range {start, stop, step}")


def value_identity(fname: str, value: Any) -> tuple[str, Any]:
    """What makes two values of field ``fname`` the same point: equal numbers (1e8 and 1.0e+8, 1 and 1.0)
    are one value, text is compared as written, booleans are not numbers."""
    if isinstance(value, bool):
        return ("bool", value)
    value = key_value(fname, value)
    return ("number", value) if isinstance(value, (int, float)) else ("text", value)


def number_or_text(value: Any) -> Any:
    """A value compared as the number it spells (1e8 as text too), else as text."""
    number = as_number(value)
    return str(value) if number is None else number


def yaml_scalar(value: Any, fname: str = "") -> str:
    """A point's value as the text of a `field=value` override, which is read back as YAML. Text of a text field
    that YAML would read as something else ("yes", "007", "a #b", " padded") is double-quoted, so the value the
    study file gives (quoted there) is the value the design gets; "4" or "true" of a number or a switch is read
    as YAML, as `--set` reads it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str) and _text_field(fname) and _reads_back_as(value) != value:
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar
    return str(value)


def _text_field(fname: str) -> bool:
    """Is ``fname`` an architecture field whose value is text (a name, a file, one of a list of words)?"""
    from satasim_atsn.hw.arch_overrides import schema_at

    if fname.startswith("tech."):
        return False
    try:
        spec = schema_at(fname.split("."))
    except SatasimError:
        return False
    return isinstance(spec, tuple) and (spec[0] == "str" or isinstance(spec[0], (tuple, list)))


def _reads_back_as(text: str) -> Any:
    """What YAML reads ``text`` as, or None when it cannot read it."""
    try:
        return yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        return None
