"""``--set path.to.field=value`` overrides of an architecture: each parsed and its path checked against the schema,
applied to the raw mapping, and a refused value traced to the override that gave it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import yaml

from satasim_atsn.errors import ArchError, SatasimError, shown
from satasim_atsn.fileio import load_yaml
from satasim_atsn.hw.arch_fields import OTHER_DRAM_SPELLING, SCHEMA, TECH_SECTION, exit_unit_omitted, unknown_key_fix
from satasim_atsn.hw.tech import table_label


def schema_at(path: list[str]) -> Any:
    """The schema entry at a ``--set`` path (a section's dict or a field's spec); an unknown path is an ArchError."""
    node: Any = SCHEMA
    for i, part in enumerate(path):
        if not isinstance(node, dict):  # the path goes on below a value
            parent = ".".join(path[:i])
            raise ArchError.at("--set", ".".join(path), f"{parent} is a value, not a section",
                               f"set it directly, e.g. --set {parent}=VALUE")
        if part not in node:
            options = list(node) + ([TECH_SECTION] if i == 0 else [])
            where = ".".join(path[: i + 1])
            here = ".".join(path[:i]) + "." if i else ""
            fix = unknown_key_fix(part, options, here, given_by_set=True)
            raise ArchError.at("--set", where, "no such field", fix)
        node = node[part]
    return node


def parse_override(text: str) -> tuple[list[str], Any]:
    """'a.b.c=value' -> (['a','b','c'], value parsed as a YAML scalar); the path is checked against the schema."""
    if "=" not in text:
        raise ArchError.at("--set", text, "expected path.to.field=value", "e.g. --set pe.adders=2")
    key, _, raw_value = text.partition("=")
    if not key.strip():
        raise ArchError.at("--set", None, f"{shown(text)} has no field name before '='",
                           "write FIELD=VALUE, e.g. --set pe.adders=2")
    path = [p for p in key.strip().split(".")]
    if not all(path):
        raise ArchError.at("--set", key, "empty path component", "e.g. --set global_buffers.weight.bytes=262144")
    if path[0] == TECH_SECTION:  # the entry itself is checked against the table when the arch is built
        if len(path) != 2:
            raise ArchError.at("--set", key, "a technology override names one table entry",
                               "e.g. --set tech.sram64_1KB_read_energy_pJ=0.9")
    else:
        spec = schema_at(path)
        if isinstance(spec, dict):
            raise ArchError.at("--set", key, "is a section, not a field", f"set one of its fields: {', '.join(spec)}")
    try:
        value = load_yaml(raw_value, f"--set {key.strip()}", ArchError) if raw_value.strip() else None
    except yaml.YAMLError:
        raise ArchError.at("--set", key, f"cannot parse value {shown(raw_value)}", "give a YAML scalar") from None
    if isinstance(value, (dict, list)):
        raise ArchError.at("--set", key, f"value must be a scalar, got {shown(raw_value)}")
    return path, value


def override_label(text: str) -> str:
    """An override as results record it: a technology table by :func:`~satasim_atsn.hw.tech.table_label`
    (its file name), every other override as given."""
    key, sep, value = text.partition("=")
    return f"{key}={table_label(value.strip())}" if sep and key.strip() == "technology" else text


def override_list(overrides: Iterable[str] | None) -> list[str]:
    """A script's ``overrides`` as a list of 'path=value' strings (None: none); a lone string or a dict, which
    would be taken apart character by character or key by key, or an item that is no string, is an ArchError."""
    if overrides is None:
        return []
    if isinstance(overrides, (str, bytes, dict)):
        raise ArchError.at("overrides", None, f"must be a list of 'path.to.field=value' strings, got a "
                           f"{type(overrides).__name__} {shown(overrides)}",
                           "wrap it in a list, e.g. ['accelerators=1']")
    items = list(overrides)
    for item in items:
        if not isinstance(item, str):
            raise ArchError.at("overrides", None, f"item {shown(item)} ({type(item).__name__}) is not a string",
                               "write each override as 'path.to.field=value', e.g. 'pe.adders=2'")
    return items


def apply_overrides(raw: dict, overrides: Iterable[str]) -> dict:
    """Apply ``--set`` overrides to a raw YAML dict (a deep copy is returned; null removes a field)."""
    import copy

    out = copy.deepcopy(raw)
    given: set[tuple[str, ...]] = set()
    for text in overrides:
        path, value = parse_override(text)
        if tuple(path) in given:
            raise ArchError.at("--set", ".".join(path), "given twice (the last value would win, silently)",
                               "give each field once")
        given.add(tuple(path))
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        if value is None and path[0] == TECH_SECTION:
            node[path[-1]] = None  # no override; the entry's name is still checked against the table
        elif value is None:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
        other = OTHER_DRAM_SPELLING.get(path[1]) if len(path) == 2 and path[0] == "dram" else None
        if value is not None and other is not None and ("dram", other) not in given:
            node.pop(other, None)  # one spelling of a DRAM rate replaces the other (DRAM_UNITS)
    return out


@contextmanager
def naming_set_values(overrides: Iterable[str], source: str = "--set") -> Iterator[None]:
    """Inside, a user error whose field one of the command's ``--set`` values (or the ``source`` named) gave says so:
    the message names the architecture file, which does not hold the value (also for refusals at mapping time,
    e.g. images_per_batch)."""
    given = {text.partition("=")[0].strip(): text for text in overrides}
    try:
        yield
    except SatasimError as error:
        field = error.field or ""
        culprit = given.get(field)
        inside = [text for path, text in given.items() if field and path.startswith(field + ".")]
        if (culprit is None and not inside) or getattr(error, "from_set", False) or str(error).startswith("--set: "):
            raise  # not a --set's value, already said so, or an override refused by itself (the message names it)
        if culprit is not None:
            relabelled = type(error)(f"{error} (the value comes from {source} {culprit})")
        else:  # a section's check of several fields (array: rows x cols): name the values given inside it
            relabelled = type(error)(f"{error} ({source.removesuffix(' item')} gave {', '.join(inside)})")
        relabelled.field, relabelled.problem, relabelled.from_set = error.field, error.problem, True
        raise relabelled from None


def refuse_fields_of_an_absent_exit_unit(raw: dict, overridden: dict, overrides: list[str]) -> None:
    """A --set of an exit-unit field on a design without an exit unit (no exit tile, no exit_unit section) has
    nothing to act on; say so, instead of the 'exit_unit.kind: missing' that the half-made section would give."""
    section, array = overridden.get("exit_unit"), overridden.get("array")
    still_none = isinstance(array, dict) and array.get("exit_unit_tiles") == 0  # not given one by --set either
    if not exit_unit_omitted(raw) or not still_none or not isinstance(section, dict) or "kind" in section:
        return
    fields = [text.split("=", 1)[0].strip() for text in overrides if text.strip().startswith("exit_unit.")]
    raise ArchError.at("--set", fields[0] if fields else "exit_unit",
                       "this design has no exit unit (array.exit_unit_tiles: 0 and no exit_unit section), so the "
                       "field acts on nothing", "drop the --set, or give the design an exit unit with "
                       "--set array.exit_unit_tiles=1 --set exit_unit.kind=at (or dt; and the section's other fields)")
