"""The architecture YAML's schema (every field's kind, default and bounds) and the check of a section or a value
against it: one ArchError line naming the field and the fix (a missing field, an unknown key, a value out of range)."""

from __future__ import annotations

import math
from typing import Any

import yaml

from satasim_atsn.errors import ArchError, TypedNumber, closest, did_you_mean, shown, typed_number
from satasim_atsn.hw.arch_files import ARCH_DIR
from satasim_atsn.hw.exit_units import ACCELERATOR_EXIT_KIND, EXIT_UNITS, kind_fields
from satasim_atsn.hw.tech import to_float
from satasim_atsn.snn.exit_policies import PREDICTION_RULES

REQUIRED = object()  # marker: the field has no default
SAME_AS_PE = object()  # marker: an exit_unit field left out takes the PE's value (the unit is a PE, paper 2.4)

# field -> (kind, default, check); kind: 'int' | 'float' | 'str' | tuple of allowed strings
# check: (lo, hi) inclusive bounds for numbers (None = unbounded), or None
_POS = (1, None)
# upper bounds: far beyond any real design, low enough that counts and cycle sums stay exact in int64
_BYTES = (1, 2**40)
_UNITS = (1, 2**16)
_CYCLES = (1, 10**6)
#: the bounds of a rate in bytes per cycle (NoC link, buffer port, DRAM channel)
RATE = (1, 2**20)
SCHEMA: dict[str, Any] = {
    "name": ("str", REQUIRED, None),
    "kind": (tuple(ACCELERATOR_EXIT_KIND), REQUIRED, None),
    "technology": ("str", REQUIRED, None),
    "clock_hz": ("float", REQUIRED, (1e3, 1e10)),  # 1 kHz .. 10 GHz: beyond, an exponent typo
    "accelerators": ("int", REQUIRED, (1, 1024)),
    "images_per_batch": ("int", 1, (1, 4096)),
    "spike_address_bytes": ("int", 2, (1, 8)),
    "dataflow": (("timestep_major", "layer_major"), "timestep_major", None),
    "batch_refill": ("bool", False, None),
    "array": {
        "rows": ("int", REQUIRED, (1, 1024)),
        "cols": ("int", REQUIRED, (1, 1024)),
        "exit_unit_tiles": ("int", 1, (0, None)),  # 0: no exit unit, the output layer runs on the PEs
    },
    "pe": {
        "input_spike_buffer_bytes": ("int", REQUIRED, _BYTES),
        "output_spike_buffer_bytes": ("int", REQUIRED, _BYTES),
        "data_memory_bytes": ("int", REQUIRED, _BYTES),
        # int8 weight store of each PE (docs/microarchitecture.md section 3); not in the paper, see archs/*.yaml
        "weight_memory_bytes": ("int", 6144, _BYTES),
        "adders": ("int", REQUIRED, _UNITS),
        "decay": (("shift_add", "multiplier"), REQUIRED, None),
        "vmem_bits": ("int", REQUIRED, (4, 64)),
        "accumulation": (("digital", "analog"), "digital", None),
        "adc_bits": ("int", None, (1, 16)),
        "adc_cycles_per_conversion": ("int", None, _CYCLES),
    },
    "exit_unit": {
        "kind": (tuple(EXIT_UNITS), REQUIRED, None),
        "data_memory_bytes": ("int", REQUIRED, _BYTES),
        "input_spike_buffer_bytes": ("int", SAME_AS_PE, _BYTES),
        "output_spike_buffer_bytes": ("int", SAME_AS_PE, _BYTES),
        "adders": ("int", SAME_AS_PE, _UNITS),
        "multipliers": ("int", 0, (0, 2**16)),
        "vmem_bits": ("int", 32, (4, 64)),  # the output membranes' width a workload has without quant.output_vmem_bits
        "prediction": (PREDICTION_RULES, "membrane_sum", None),
        **kind_fields(),  # each kind's own fields (hw/exit_units.py)
    },
    "noc": {
        "topology": (("mesh",), "mesh", None),
        "link_bytes_per_cycle": ("int", REQUIRED, RATE),
        "hop_cycles": ("int", 1, (0, 10**6)),
    },
    "global_buffers": {
        name: {
            "bytes": ("int", REQUIRED, _BYTES),
            "banks": ("int", REQUIRED, (1, 1024)),
            "bytes_per_cycle": ("int", REQUIRED, RATE),
        }
        for name in ("weight", "input", "output")
    },
    "dram": {
        # each rate in accelerator cycles, or in time units held whatever clock_hz is (one of the two: DRAM_UNITS)
        "bytes_per_cycle": ("int", None, RATE),
        "bandwidth_GB_per_s": ("float", None, (1e-3, 1e6)),
        "latency_cycles": ("int", None, (0, 10**9)),
        "latency_ns": ("float", None, (0.0, 1e9)),
        "energy_table_entry": ("str", "dram_lpddr4", None),
        # which waiting transaction the channel serves next (docs/microarchitecture.md section 8): the ones an
        # accelerator waits for before weight reads ahead that nobody waits for yet, or all in request order
        "arbitration": (("demand_first", "fifo"), "demand_first", None),
    },
}

# the DRAM's rates: per accelerator cycle, or in time units (GB/s, ns) that a change of clock_hz leaves as they are;
# a file gives one of each pair, and a --set (or a study's value) of one spelling replaces the other
DRAM_UNITS = {"bytes_per_cycle": "bandwidth_GB_per_s", "latency_cycles": "latency_ns"}
#: each spelling of a DRAM rate -> the other spelling of the same rate
OTHER_DRAM_SPELLING = {**DRAM_UNITS, **{timed: per_cycle for per_cycle, timed in DRAM_UNITS.items()}}

# the optional section whose keys are technology-table entries (``tech.<entry>: value`` replaces that
# entry's value; validated against the loaded table, so it is not part of SCHEMA)
TECH_SECTION = "tech"

# the exit unit of an array without an exit tile (array.exit_unit_tiles: 0, exit_unit section omitted):
# kind none, and no hardware (no memory, buffers, adders or multipliers)
ABSENT_EXIT_UNIT: dict[str, Any] = {
    "kind": "none", "data_memory_bytes": 0, "input_spike_buffer_bytes": 0, "output_spike_buffer_bytes": 0,
    "adders": 0, "multipliers": 0, "vmem_bits": 0, "prediction": "membrane", **dict.fromkeys(kind_fields()),
}
MAX_EXIT_UNIT_TILES = 1  # one exit unit per accelerator is modelled

# fields that only make sense for one setting of another field
ADC_FIELDS = ("adc_bits", "adc_cycles_per_conversion")


def _suggest(word: str, options) -> str:
    return did_you_mean(word, options, "valid keys:", sort=True)


def _homes(key: str, node: dict | None = None, prefix: str = "") -> list[str]:
    """Where in the schema a field or section named ``key`` lives ('vmem_bits' -> pe.vmem_bits, exit_unit.vmem_bits)."""
    node = SCHEMA if node is None else node
    found = [prefix + key] if key in node else []
    for name, spec in node.items():
        if isinstance(spec, dict):
            found += _homes(key, spec, f"{prefix}{name}.")
    return found


#: the unit a field's name ends in, and how a value in another unit converts to it (a key such as clock_mhz or
#: bandwidth_gbps was told the field's name alone, and its value, moved over unchanged, was off by 10^6 or 8)
UNIT_SUFFIXES = {
    "_hz": "Hz: 500 MHz is 500e6", "_GB_per_s": "GB/s, bytes per second / 1e9: 8 Gbit/s is 1",
    "_bytes": "bytes: 1 KiB is 1024", "_ns": "ns", "_cycles": "clock cycles", "_bits": "bits",
}


def _unit_hint(key: str, field: str | None) -> str:
    """' (in Hz: ...)' when ``field``, the suggested field, ends in a unit that the mistyped ``key`` does not."""
    if field is None:
        return ""
    unit = next((suffix for suffix in UNIT_SUFFIXES if field.endswith(suffix)), None)
    if unit is None:
        return ""
    stem, key = field[: -len(unit)], str(key)
    if key.startswith(stem) and unit.startswith(key[len(stem):]):  # the unit itself mistyped (vmem_bit): same unit
        return ""
    return f" (its value in {UNIT_SUFFIXES[unit]})"


def unknown_key_fix(key: str, options: list[str], here: str, given_by_set: bool = False) -> str:
    """The fix for an unknown key at ``here`` (a section path ending in '.', or '' for the top level): where the key
    belongs if the schema has it in another section (clock_hz under pe:), else the closest valid key or the list,
    with the unit the field takes when the key spelt another one."""
    homes = [h for h in _homes(str(key)) if h != here + str(key)]
    if homes:
        named = " or ".join(f"{h} (a top-level field)" if "." not in h else h for h in homes[:3])
        return f"it is {named}; " + ("give that path" if given_by_set else "move it there")
    close = closest(str(key), [str(o) for o in options])
    if close is not None and given_by_set:  # the whole path, as --set takes it ('data_memory_bytes' alone is refused)
        return f"did you mean {shown(here + close)}?{_unit_hint(key, close)}"
    return _suggest(key, options) + _unit_hint(key, close)


def _number(where: str, path: str, value: Any, kind: str, bounds) -> int | float:
    """Check one numeric field; numeric strings like '500e6' (a YAML 1.1 quirk) are accepted."""
    original = value
    if isinstance(value, str):
        try:
            value = typed_number(value, float(value.replace("_", "")))
            original = value if isinstance(value, TypedNumber) else original
        except ValueError:
            value = None
    beyond = isinstance(value, TypedNumber)  # written beyond a float's range: refused by the bounds, as written
    if (value is None or isinstance(value, bool) or not isinstance(value, (int, float))
            or (isinstance(value, float) and not math.isfinite(value) and not beyond)):
        unit = next((suffix for suffix in UNIT_SUFFIXES if path.endswith(suffix)), None)
        raise ArchError.at(where, path, f"must be {'an integer' if kind == 'int' else 'a number'}, "
                           f"got {shown(original)}", "write a plain number" + (
                               f" in {UNIT_SUFFIXES[unit]}" if unit and isinstance(original, str) else ""))
    if kind == "int" and not beyond:
        if isinstance(value, float) and not value.is_integer():
            raise ArchError.at(where, path, f"must be an integer, got {shown(original)}", "drop the fraction")
        value = int(value)
    else:
        value = to_float(value)  # an integer too large for a float is +-inf: refused by the bounds below
    lo, hi = bounds if bounds else (None, None)
    if kind == "float" and bounds and lo == 0.0 and hi == 1.0:
        if not 0.0 < value <= 1.0:
            raise ArchError.at(where, path, f"must be in (0, 1], got {shown(original)}",
                               "give a value above 0 and at most 1")
        return value
    # a clock off by powers of ten is a typo of its exponent; a negative one is not (it was told to check that)
    exponent = "check the exponent (a typo?)" if path.endswith("_hz") and value > 0 else None
    unit = next((suffix for suffix in UNIT_SUFFIXES if path.endswith(suffix)), None)
    if unit == "_GB_per_s" and value > 0:  # 8e9 for 8 GB/s: bytes per second where GB/s are asked
        exponent = f"check the exponent and the unit (a typo?): the value is in {UNIT_SUFFIXES[unit]}"
    if lo is not None and value < lo:
        need = "positive" if lo == 1 and kind == "int" else f">= {_bound(lo, kind)}"
        fix = ("sizes, counts and rates cannot be zero or negative" if lo == 1 and kind == "int"
               else f"use a value of at least {_bound(lo, kind)}")
        raise ArchError.at(where, path, f"must be {need}, got {shown(original)}", exponent or fix)
    if hi is not None and value > hi:
        raise ArchError.at(where, path, f"must be <= {_bound(hi, kind)}, got {shown(original)}",
                           exponent or f"use a value of at most {_bound(hi, kind)} (docs/architecture.md lists every "
                           "field's bounds)")
    if beyond:  # a field without the bound it overflows past
        raise ArchError.at(where, path, f"got {shown(original)}, beyond a float's range (about 1.8e308)",
                           "write a number in the field's range (docs/architecture.md lists every field's bounds)")
    return value


def _bound(value: float, kind: str) -> str:
    """A schema bound as the user would write it: an integer field's in full (1048576, not 1.04858e+06)."""
    return str(int(value)) if kind == "int" else f"{value:g}"


def check_section(where: str, prefix: str, raw: Any, schema: dict) -> dict:
    """Validate one mapping against its schema; returns the resolved dict (defaults filled)."""
    if not isinstance(raw, dict):
        name = prefix.rstrip(".")
        got = "nothing" if raw is None else type(raw).__name__
        raise ArchError.at(where, name or None, f"must be a mapping, got {got}",
                           f"write '{name}:' followed by indented 'key: value' lines" if name else None)
    for key in raw:
        if key not in schema:
            options = list(schema) + ([TECH_SECTION] if prefix == "" else [])
            raise ArchError.at(where, f"{prefix}{key}", "unknown key", unknown_key_fix(key, options, prefix))
    out: dict[str, Any] = {}
    for key, spec in schema.items():
        path = f"{prefix}{key}"
        if isinstance(spec, dict):
            if key not in raw:
                raise ArchError.at(where, path, "missing section", _missing_section_fix(path, spec))
            out[key] = check_section(where, path + ".", raw[key], spec)
            continue
        kind, default, bounds = spec
        if key not in raw or raw[key] is None:
            if default is REQUIRED:
                raise ArchError.at(where, path, "missing", _missing_field_fix(path, spec))
            out[key] = default
            continue
        out[key] = check_value(where, path, raw[key], spec)
    return out


def _shipped_value(path: str) -> Any:
    """The value at dotted ``path`` in the shipped atsn16x16 design (None if it does not give one): an example a
    user of an installed package can copy without the repository's docs."""
    node: Any = yaml.safe_load((ARCH_DIR / "atsn16x16.yaml").read_text(encoding="utf-8"))
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _missing_field_fix(path: str, spec: tuple) -> str:
    """How to add a required field: what it holds and the shipped design's value as an example."""
    kind, _, bounds = spec
    if kind in ("int", "float"):
        what = "an integer" if kind == "int" else "a number"
        what += f" from {_bound(bounds[0], kind)} to {_bound(bounds[1], kind)}" if bounds else ""
    elif kind == "str":
        what = "a one-line text"
    elif kind == "bool":
        what = "true or false"
    else:
        what = f"one of {', '.join(kind)}"
    example = _shipped_value(path)
    key = path.rsplit(".", 1)[-1]
    shown_example = f"; e.g. the shipped design {ARCH_DIR / 'atsn16x16.yaml'} has '{key}: {example}'" \
        if example is not None else ""
    return f"add it: {what}{shown_example}"


def _missing_section_fix(path: str, schema: dict) -> str:
    """How to add a missing section: the fields it holds and a shipped design that has one to copy."""
    key = path.rsplit(".", 1)[-1]
    return (f"add a '{key}:' section with {', '.join(schema)} (copy it from the shipped design "
            f"{ARCH_DIR / 'atsn16x16.yaml'})")


def check_value(where: str, path: str, value: Any, spec: tuple) -> Any:
    """Validate one field's value against its schema entry (kind, default, bounds); returns it cleaned."""
    kind, _, bounds = spec
    if kind in ("int", "float"):
        return _number(where, path, value, kind, bounds)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ArchError.at(where, path, f"must be true or false, got {shown(value)}", "write true or false")
        return value
    if kind == "str":
        if not isinstance(value, str) or not value.strip():
            raise ArchError.at(where, path, f"must be a non-empty text, got {shown(value)}",
                               f'write it in quotes, e.g. {path}: "my design"')
        if any((ord(ch) < 32 and ch != "\t") or ord(ch) == 127 for ch in value):  # it heads reports: one line
            raise ArchError.at(where, path, f"must be one line of text, got {shown(value)}",
                               "remove the line breaks and control characters")
        return value
    if not isinstance(value, str) or value not in kind:  # enumeration
        close = closest(value, kind) if isinstance(value, str) else None
        raise ArchError.at(where, path, f"must be one of {', '.join(kind)}, got {shown(value)}",
                           f"did you mean {shown(close)}?" if close else f"write one of {', '.join(kind)}")
    return value


def _no_exit_tile(raw: dict) -> bool:
    """True when the raw design asks for array.exit_unit_tiles: 0 (no exit unit is modelled)."""
    array = raw.get("array")
    tiles = array.get("exit_unit_tiles") if isinstance(array, dict) else None
    return not isinstance(tiles, bool) and isinstance(tiles, (int, float)) and tiles == 0


def exit_unit_omitted(raw: dict) -> bool:
    """True when the exit_unit section may be left out: it is, and array.exit_unit_tiles is 0."""
    return "exit_unit" not in raw and _no_exit_tile(raw)


def schema_for(raw: dict) -> dict:
    """SCHEMA; without an exit tile a given exit_unit section is checked and then dropped (no exit unit is
    modelled), so its data memory is not required there: ``exit_unit: {kind: none}`` is enough."""
    if not _no_exit_tile(raw):
        return SCHEMA
    return {**SCHEMA, "exit_unit": {**SCHEMA["exit_unit"], "data_memory_bytes": ("int", None, _BYTES)}}
