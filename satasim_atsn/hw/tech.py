"""Technology tables: energy, area and leakage per action or instance, each number with its source.

A table is a YAML file (``satasim_atsn/data/tech/<name>.yaml`` for the shipped ones) holding
``entries``: every entry's key ends in its unit (``_energy_pJ``, ``_area_um2``, ``_leakage_mW``,
``_energy_pJ_per_bit``, ``_power_mW``, ``_bandwidth_GB_per_s``, ...) and carries ``value``, ``source``,
``node_nm`` (where it was measured) and ``scaling`` (what was applied to reach this table's node). No
energy constant lives in code: this module only looks numbers up and interpolates between table points
(docs/energy.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from satasim_atsn import exactmath
from satasim_atsn.errors import ArchError, TypedNumber, closest, did_you_mean, file_count, shown, typed_number
from satasim_atsn.fileio import content_key, load_yaml_text, starts_as_zip, yaml_syntax_fix
from satasim_atsn.workload.network_file import YAML_FILE_KINDS, yaml_file_kind

TECH_DIR = Path(__file__).resolve().parent.parent / "data" / "tech"

# unit suffixes an entry key may end with (longest first so that _energy_pJ_per_bit wins over _energy_pJ)
UNIT_SUFFIXES = (
    "bandwidth_GB_per_s",
    "energy_pJ_per_bit_mm",
    "energy_pJ_per_bit",
    "area_um2_per_bit",
    "leakage_mW_per_bit",
    "fom_fJ_per_step",
    "energy_pJ",
    "area_um2",
    "leakage_mW",
    "power_mW",
    "exponent",
)
# largest believable value per unit: no technology reaches these (1 mJ per action, 1 MW, 1 m2, 1e9 GB/s), so a
# value above is a typo (1e300 would overflow the energy sums to infinity); a bandwidth must also be at least
# 1e-6 GB/s (1 kB/s), since the DRAM channel count divides by it
UNIT_MAXIMA = {
    "bandwidth_GB_per_s": 1e9,
    "energy_pJ_per_bit_mm": 1e9,
    "energy_pJ_per_bit": 1e9,
    "area_um2_per_bit": 1e12,
    "leakage_mW_per_bit": 1e9,
    "fom_fJ_per_step": 1e9,
    "energy_pJ": 1e9,
    "area_um2": 1e12,
    "leakage_mW": 1e9,
    "power_mW": 1e9,
    "exponent": 10.0,  # dimensionless (adc_area_rate_exponent: d ln area / d ln rate)
}
UNIT_MINIMA = {"bandwidth_GB_per_s": 1e-6}
ENTRY_FIELDS = {"value", "source", "node_nm", "scaling", "capacity_bytes", "access_bits", "rate_hz"}
ADC_RATE_EXPONENT = "adc_area_rate_exponent"
_ADC_AREA = re.compile(r"^adc_(\d+)b_area_um2$")
TOP_FIELDS = {"format", "version", "name", "node_nm", "entries"}
LOGIC_OPS = ("add", "mult", "compare", "mux", "decay_shift_add")


def _unit_of(key: str) -> str | None:
    for suffix in UNIT_SUFFIXES:
        if key.endswith("_" + suffix):
            return suffix
    return None


def to_float(value: int | float) -> float:
    """``float(value)``, or an infinity of its sign for an integer too large for a float (a YAML integer of
    hundreds of digits), which a range check then refuses instead of an OverflowError."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def check_entry_range(where: str, field_at: str, unit: str, value: int | float) -> None:
    """Refuse a finite, non-negative entry value outside its unit's believable range (:data:`UNIT_MAXIMA`,
    :data:`UNIT_MINIMA`) with a one-line ArchError naming ``field_at``, the range and the fix."""
    low, high = UNIT_MINIMA.get(unit, 0.0), UNIT_MAXIMA[unit]
    if not low <= to_float(value) <= high:
        written = shown(value) if isinstance(value, (int, TypedNumber)) else f"{value:g}"  # as given, even if huge
        raise ArchError.at(where, field_at, f"{written} {unit} is outside {low:g}..{high:g}, beyond any real"
                           " technology", f"check the exponent (a typo?) and give a value in {unit} in that range")


def _suggest(word: str, options) -> str:
    return did_you_mean(word, options, "valid:", sort=True)


def _missing_entry_fix(key: str, entries) -> str:
    """The fix for an entry the model needs and a (user's) table lacks: the key is the model's, so the fix is to
    add it, or to rename a near-miss of the table's own (a "did you mean" another entry sent the user to an entry
    the model does not read, and no entry list says what to add)."""
    shipped = TECH_DIR / "28nm.yaml"
    known = set(load_tech("28nm").entries) if shipped.is_file() else set()  # real entries, not typos of this one
    close = closest(key, [k for k in entries if _unit_of(k) == _unit_of(key) and k not in known])
    if close is not None:
        return f"if the table's {shown(close)} is meant, rename it to {shown(key)}; else add {key} (see {shipped})"
    return f"add {key} to the table, in its unit, with its source (the shipped tables have it: {shipped})"


@dataclass(frozen=True)
class SramFigures:
    """Per-access energies (for ``access_bits``), area and leakage of one SRAM bank."""

    read_pJ: float
    write_pJ: float
    area_um2: float
    leakage_mW: float
    access_bits: int
    how: str  # 'table' or 'log-log interpolation between X and Y' / 'extrapolation'


@dataclass(frozen=True)
class Tech:
    """A loaded technology table (read-only lookups with helpful errors)."""

    name: str
    path: Path
    node_nm: float
    entries: dict[str, dict] = field(repr=False)
    ref: str = ""  # how the architecture named it: a shipped name or a path relative to the arch file
    overrides: dict[str, float] = field(default_factory=dict)  # entry -> value set by the arch's ``tech:`` / --set
    sha256: str = ""  # of the table's text (first 16 hex digits): which table a result used, whatever its name

    # -- plain lookups -------------------------------------------------------------------
    def value(self, key: str) -> float:
        """The value of entry ``key`` (full key including its unit suffix)."""
        try:
            return float(self.entries[key]["value"])
        except KeyError:
            raise ArchError.at(str(self.path), f"entries.{key}", "no such entry in the technology table, and the "
                               "model reads it for this design", _missing_entry_fix(key, self.entries)) from None

    def has(self, key: str) -> bool:
        """True if the table has entry ``key``."""
        return key in self.entries

    def energy_pJ(self, entry: str) -> float:
        """Energy per action of ``entry`` (looks up ``<entry>_energy_pJ``)."""
        return self.value(f"{entry}_energy_pJ")

    def area_um2(self, entry: str) -> float:
        """Area of one instance of ``entry`` (``<entry>_area_um2``)."""
        return self.value(f"{entry}_area_um2")

    def leakage_mW(self, entry: str) -> float:
        """Leakage power of one instance of ``entry`` (``<entry>_leakage_mW``)."""
        return self.value(f"{entry}_leakage_mW")

    # -- width-parameterised logic ---------------------------------------------------------
    def logic(self, op: str, bits: int, quantity: str) -> float:
        """``quantity`` ('energy_pJ' | 'area_um2' | 'leakage_mW') of a ``bits``-wide ``op``.

        Exact table widths are used as they are; other widths interpolate log-log between the
        two nearest table widths (or extrapolate from the nearest two), which is linear in width
        for adders and quadratic for multipliers when the table points follow those laws.
        """
        if op not in LOGIC_OPS:
            raise ArchError.at(str(self.path), op, "unknown logic operation", _suggest(op, LOGIC_OPS))
        key = f"{op}_{bits}b_{quantity}"
        if key in self.entries:
            return self.value(key)
        widths = sorted(int(k[len(op) + 1:].split("b_")[0]) for k in self.entries
                        if k.startswith(op + "_") and k.endswith("b_" + quantity)
                        and k[len(op) + 1:].split("b_")[0].isdigit())
        if len(widths) < 2:
            raise ArchError.at(str(self.path), key, f"the table has fewer than two widths of {op}_*b_{quantity}",
                               "add entries for at least two widths")
        lo, hi = _bracket(widths, bits)
        y0 = self.value(f"{op}_{lo}b_{quantity}")
        y1 = self.value(f"{op}_{hi}b_{quantity}")
        return _loglog(bits, lo, y0, hi, y1)

    # -- SRAM families ---------------------------------------------------------------------
    def sram(self, family: str, capacity_bytes: int) -> SramFigures:
        """Figures of one ``family`` SRAM bank ('sram64' data memories, 'glb' global buffers).

        An exact capacity in the table is used as is; otherwise each figure is interpolated
        log-log in capacity between the two nearest table points (extrapolated from the two
        nearest beyond the range). Leakage follows the same rule.
        """
        points: dict[int, str] = {}
        for key, entry in self.entries.items():
            if key.startswith(family + "_") and key.endswith("_read_energy_pJ") and "capacity_bytes" in entry:
                points[int(entry["capacity_bytes"])] = key[: -len("_read_energy_pJ")]
        if len(points) < 2:
            raise ArchError.at(str(self.path), f"{family}_*", "needs at least two SRAM capacity points",
                               "add *_read_energy_pJ entries with capacity_bytes")
        if capacity_bytes <= 0:
            raise ArchError.at(str(self.path), family, f"SRAM capacity must be positive, got {capacity_bytes}")

        def figures(stem: str) -> tuple[float, float, float, float, int]:
            access_bits = int(self.entries[f"{stem}_read_energy_pJ"].get("access_bits", 64))
            return (self.value(f"{stem}_read_energy_pJ"), self.value(f"{stem}_write_energy_pJ"),
                    self.value(f"{stem}_area_um2"), self.value(f"{stem}_leakage_mW"), access_bits)

        if capacity_bytes in points:
            r, w, a, lk, ab = figures(points[capacity_bytes])
            return SramFigures(r, w, a, lk, ab, "table")
        caps = sorted(points)
        lo, hi = _bracket(caps, capacity_bytes)
        f0, f1 = figures(points[lo]), figures(points[hi])
        if f0[4] != f1[4]:
            raise ArchError.at(str(self.path), f"entries.{points[lo]}_read_energy_pJ.access_bits", f"{f0[4]} bits, but "
                               f"{points[hi]} gives {f1[4]}, and a {capacity_bytes:,} B memory is interpolated between "
                               "the two", f"give every {family} point one access_bits")
        vals = [_loglog(capacity_bytes, lo, f0[i], hi, f1[i]) for i in range(4)]
        inside = lo < capacity_bytes < hi
        how = f"log-log {'interpolation' if inside else 'extrapolation'} from {points[lo]} and {points[hi]}"
        return SramFigures(vals[0], vals[1], vals[2], vals[3], f0[4], how)

    def sram_capacities(self, family: str) -> list[int]:
        """The capacities (bytes) of ``family``'s SRAM points, ascending: the range Tech.sram interpolates in."""
        return sorted(int(entry["capacity_bytes"]) for key, entry in self.entries.items()
                      if key.startswith(family + "_") and key.endswith("_read_energy_pJ") and "capacity_bytes" in entry)

    def adc_area_um2(self, bits: int, conversions_per_s: float | None = None) -> float:
        """Area of one ADC of ``bits`` resolution (log-log in the table's per-resolution points) that converts
        ``conversions_per_s``: the points' area times (rate / their ``rate_hz``) ** ``adc_area_rate_exponent``
        when the table gives both (docs/energy.md); as the points give it when it gives neither or no rate is asked."""
        area = self._adc_area_at_table_rate(bits)
        table_rate = self.adc_area_rate_hz()
        if conversions_per_s is None or table_rate is None or float(conversions_per_s) == table_rate:
            return area
        ctx = exactmath.ctx()
        ratio = ctx.divide(exactmath.dec(float(conversions_per_s)), exactmath.dec(table_rate))
        scale = exactmath.dexp(ctx.multiply(exactmath.dln(ratio), exactmath.dec(self.value(ADC_RATE_EXPONENT))))
        return float(ctx.multiply(exactmath.dec(area), scale))

    def adc_area_rate_hz(self) -> float | None:
        """The conversion rate the table's ADC area points were taken at (their common ``rate_hz``), or None when
        the table gives the areas at no rate (then no rate scaling applies; :func:`check_adc_points`)."""
        rates = {float(e["rate_hz"]) for k, e in self.entries.items() if _ADC_AREA.match(k) and "rate_hz" in e}
        return rates.pop() if rates else None

    def _adc_area_at_table_rate(self, bits: int) -> float:
        """Area of one ADC of ``bits`` resolution at the table points' own conversion rate."""
        widths = sorted(int(m.group(1)) for m in map(_ADC_AREA.match, self.entries) if m)
        if f"adc_{bits}b_area_um2" in self.entries:
            return self.value(f"adc_{bits}b_area_um2")
        if len(widths) < 2:
            raise ArchError.at(str(self.path), "adc_*b_area_um2", "needs at least two ADC resolutions")
        lo, hi = _bracket(widths, bits)
        # area grows geometrically with resolution in the regression: interpolate ln(area) linearly in bits
        y0, y1 = self.value(f"adc_{lo}b_area_um2"), self.value(f"adc_{hi}b_area_um2")
        if y0 <= 0 or y1 <= 0:  # a zero point has no logarithm: linear in bits, floored at 0 (as _loglog does)
            return max(0.0, y0 + (y1 - y0) * (bits - lo) / (hi - lo))
        ctx = exactmath.ctx()
        ratio = ctx.divide(exactmath.dec(y1), exactmath.dec(y0))
        frac = ctx.divide(exactmath.dec(bits - lo), exactmath.dec(hi - lo))
        return float(ctx.multiply(exactmath.dec(y0), exactmath.dexp(ctx.multiply(exactmath.dln(ratio), frac))))

    def adc_energy_pJ(self, bits: int) -> float:
        """Energy per conversion: Walden FoM (fJ per conversion step) x 2^bits, in pJ."""
        return self.value("adc_fom_fJ_per_step") * 1e-3 * (2 ** bits)

    @property
    def label(self) -> str:
        """How results and messages name the table: as the design names it (a copy of the shipped table keeps
        name: 28nm, so the file's name field would name it wrongly), a file by its name alone (table_label)."""
        return table_label(self.ref or self.path.name)

    def describe(self) -> dict:
        """Name, node, how the table was named and any overridden entries (for results JSON: never an
        absolute path, DESIGN section 10; the overrides make a run reproducible from its JSON)."""
        out = {"name": self.name, "node_nm": self.node_nm, "table": self.label,
               "sha256": self.sha256}
        if self.overrides:
            out["overrides"] = dict(sorted(self.overrides.items()))
        return out

    def with_overrides(self, values: dict, where: str) -> Tech:
        """A copy whose entries ``values`` (entry -> number, or None: no override) replace the table's; raises
        ArchError (naming ``where``, ``tech.<entry>`` and the fix) for an unknown entry or a bad number."""
        if not values:
            return self
        entries = dict(self.entries)
        clean: dict[str, float] = {}
        for key, raw in values.items():
            field_at = f"tech.{key}"
            if key not in entries:
                close = closest(key, entries)
                fix = (f"did you mean {shown(close)}?" if close is not None else
                       f"use one of the keys under 'entries:' of the table {shown(self.label)}")
                raise ArchError.at(where, field_at, f"no such entry in the technology table {shown(self.label)}", fix)
            if raw is None:  # null (in the file, or --set tech.<entry>=null): no override, the table's value stays
                continue
            value = raw
            if isinstance(value, str):  # YAML 1.1 reads '7e-05' as text
                with contextlib.suppress(ValueError):
                    value = typed_number(value, float(value.replace("_", "")))
            if (isinstance(value, bool) or not isinstance(value, (int, float))  # beyond a float's range: as a huge int
                    or (isinstance(value, float) and not math.isfinite(value) and not isinstance(value, TypedNumber))):
                raise ArchError.at(where, field_at, f"must be a number, got {shown(raw)}",
                                   f"write a plain number in the entry's unit ({entries[key]['unit']})")
            if value < 0:
                raise ArchError.at(where, field_at, f"must be >= 0, got {shown(raw)}",
                                   "energies, areas and leakage powers cannot be negative")
            check_entry_range(where, field_at, entries[key]["unit"], value)
            clean[key] = float(value) + 0.0  # -0 is 0: results showed "-0.0" of actions priced by it
            entries[key] = dict(entries[key], value=clean[key])
        check_sram_growth(entries, where, prefix="tech.", changed=frozenset(clean))
        return dataclasses.replace(self, entries=entries, overrides={**self.overrides, **clean})


#: SRAM families the model reads (Tech.sram): every point of them needs its capacity
SRAM_FAMILIES = ("sram64", "glb")
SRAM_QUANTITIES = ("read_energy_pJ", "write_energy_pJ", "area_um2", "leakage_mW")
_SIZE_IN_NAME = re.compile(r"_(\d+)(B|KB|MB)(?:_|$)")


def check_sram_points(entries: dict[str, dict], where: str, prefix: str = "entries.") -> None:
    """Each SRAM point of a family the model reads gives one capacity: on its read entry, equal on the other three
    figures, unique in its family and equal to the size its name spells (sram64_3KB: 3,072 B). A repeated capacity
    silently replaced another point's figures, and a point without one was silently left out of the interpolation."""
    seen: dict[tuple[str, int], str] = {}
    for key, entry in entries.items():
        family = key.split("_", 1)[0]
        if family not in SRAM_FAMILIES or not key.endswith("_read_energy_pJ"):
            continue
        stem = key[: -len("_read_energy_pJ")]
        if "capacity_bytes" not in entry:
            raise ArchError.at(where, f"{prefix}{key}.capacity_bytes", f"missing: the SRAM point {stem} needs its "
                               "capacity to be interpolated", "give capacity_bytes (bytes of one bank)")
        capacity = int(entry["capacity_bytes"])
        size = _SIZE_IN_NAME.search(stem[len(family):] + "_")
        if size:
            spelled = int(size.group(1)) * {"B": 1, "KB": 1024, "MB": 1024 * 1024}[size.group(2)]
            if spelled != capacity:
                raise ArchError.at(where, f"{prefix}{key}.capacity_bytes", f"{capacity:,} B, but the name says "
                                   f"{size.group(1)} {size.group(2)} ({spelled:,} B)", "make the two agree")
        if (family, capacity) in seen:
            raise ArchError.at(where, f"{prefix}{key}.capacity_bytes", f"{capacity:,} B is also the capacity of "
                               f"{seen[family, capacity]}: one point would replace the other's figures",
                               "give each point of a family its own capacity")
        seen[family, capacity] = stem
        for quantity in SRAM_QUANTITIES[1:]:
            other = entries.get(f"{stem}_{quantity}")
            if other is None:
                raise ArchError.at(where, f"{prefix}{stem}_{quantity}", f"missing: the SRAM point {stem} gives a "
                                   "read energy", "give all four: read/write energy, area, leakage")
            if "capacity_bytes" in other and int(other["capacity_bytes"]) != capacity:
                raise ArchError.at(where, f"{prefix}{stem}_{quantity}.capacity_bytes", f"{other['capacity_bytes']:,} B"
                                   f" but {key} says {capacity:,} B", "give one capacity per SRAM point")
    _refuse_points_without_a_read_entry(entries, where, prefix)


def _refuse_points_without_a_read_entry(entries: dict[str, dict], where: str, prefix: str) -> None:
    """A point is found by its read entry: one whose other figures are there without it was left out of the
    interpolation without a word, its neighbours' figures extrapolated in its place (audit, session 48)."""
    for key in entries:
        family = key.split("_", 1)[0]
        quantity = next((q for q in SRAM_QUANTITIES[1:] if key.endswith("_" + q)), None)
        if family not in SRAM_FAMILIES or quantity is None:
            continue
        stem = key[: -len(quantity) - 1]
        if f"{stem}_read_energy_pJ" not in entries:
            raise ArchError.at(where, f"{prefix}{stem}_read_energy_pJ", f"missing: the SRAM point {stem} gives "
                               f"{quantity} but no read energy, the entry a point is found by (without it the point "
                               "is left out and its neighbours' figures extrapolated)",
                               "give all four: read/write energy, area, leakage")


def _rate_hz(where: str, field_at: str, raw: object) -> float:
    """A conversion rate in Hz: a finite number in 1 .. 1e12 (YAML 1.1 reads '500e6' as text, so text is parsed)."""
    value = raw
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value.replace("_", ""))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 1e12:
        raise ArchError.at(where, field_at, f"must be a conversion rate in Hz between 1 and 1e12, got {shown(raw)}",
                           "give the rate the area point was taken at, e.g. 500000000 for 500 MS/s")
    return float(value)


def check_adc_points(entries: dict[str, dict], where: str, prefix: str = "entries.") -> None:
    """The ADC area points give their conversion rate (``rate_hz``) all alike, with ``adc_area_rate_exponent``
    beside them, or none gives one and no exponent is given (then areas hold at any rate); ``rate_hz`` belongs
    to ADC area points only. A half-given rate would scale some designs' ADCs and silently not others'."""
    points = [k for k in entries if _ADC_AREA.match(k)]
    for key, entry in entries.items():
        if "rate_hz" in entry and key not in points:
            raise ArchError.at(where, f"{prefix}{key}.rate_hz", "only ADC area points (adc_<bits>b_area_um2) "
                               "take a conversion rate", "remove it")
    rated = [k for k in points if "rate_hz" in entries[k]]
    rates = sorted({entries[k]["rate_hz"] for k in rated})
    if len(rates) > 1:
        raise ArchError.at(where, f"{prefix}{rated[-1]}.rate_hz", f"the ADC area points give {len(rates)} rates "
                           f"({', '.join(f'{r:g}' for r in rates)} Hz)", "take every point at one rate")
    if rated and len(rated) < len(points):
        bare = next(k for k in points if k not in rated)
        raise ArchError.at(where, f"{prefix}{bare}.rate_hz", f"missing: {rated[0]} gives its conversion rate",
                           f"give rate_hz: {rates[0]:.0f} (or the rate it was taken at) on every ADC area point")
    if rated and ADC_RATE_EXPONENT not in entries:
        raise ArchError.at(where, f"{prefix}{ADC_RATE_EXPONENT}", "missing: the ADC area points give a conversion "
                           "rate, but not how area grows with it", f"add {ADC_RATE_EXPONENT} (d ln area / d ln rate; "
                           "the shipped tables give 0.0667) or remove the rate_hz fields")
    if not rated and ADC_RATE_EXPONENT in entries:
        raise ArchError.at(where, f"{prefix}{ADC_RATE_EXPONENT}", "the ADC area points give no conversion rate "
                           "(rate_hz) for it to scale from", "give rate_hz on every adc_<bits>b_area_um2 entry")


def check_sram_growth(entries: dict[str, dict], where: str, prefix: str = "entries.",
                      changed: frozenset[str] = frozenset()) -> None:
    """Within each SRAM family, area and leakage must not fall as the capacity grows (0, not charged, excepted): a
    larger SRAM that is smaller is a typo (off by a power of ten), and it would let a design gain from growing."""
    families: dict[str, dict[int, str]] = {}
    for key, entry in entries.items():
        if key.endswith("_read_energy_pJ") and "capacity_bytes" in entry and "_" in key:
            families.setdefault(key.split("_", 1)[0], {})[int(entry["capacity_bytes"])] = key[: -len("_read_energy_pJ")]
    for points in families.values():
        caps = sorted(points)
        for quantity, unit in (("area_um2", "um2"), ("leakage_mW", "mW")):
            for lo, hi in zip(caps, caps[1:], strict=False):
                small, large = f"{points[lo]}_{quantity}", f"{points[hi]}_{quantity}"
                if small not in entries or large not in entries or entries[large]["value"] >= entries[small]["value"]:
                    continue
                if entries[large]["value"] == 0:  # 0: not charged, a what-if switch (docs/energy.md)
                    continue
                fix = "a larger SRAM cannot be smaller or leak less: check both values"
                if small in changed and large not in changed:  # name the value the user set
                    raise ArchError.at(where, f"{prefix}{small}", f"{entries[small]['value']:g} {unit} for {lo:,} B "
                                       f"is more than {large}'s {entries[large]['value']:g} {unit} for {hi:,} B", fix)
                raise ArchError.at(where, f"{prefix}{large}", f"{entries[large]['value']:g} {unit} for {hi:,} B is "
                                   f"less than {small}'s {entries[small]['value']:g} {unit} for {lo:,} B", fix)


def _bracket(points: list[int], x: float) -> tuple[int, int]:
    """The two neighbouring points around x (or the nearest two at either end)."""
    if x <= points[0]:
        return points[0], points[1]
    if x >= points[-1]:
        return points[-2], points[-1]
    for a, b in zip(points, points[1:], strict=False):
        if a <= x <= b:
            return a, b
    raise AssertionError("unreachable")  # pragma: no cover


def _loglog(x: float, x0: float, y0: float, x1: float, y1: float) -> float:
    """Power-law interpolation through (x0, y0), (x1, y1); zeros interpolate linearly, floored at 0.

    A zero point (an entry a user sets to 0 to leave a cost out) has no logarithm; the straight line
    through it would extrapolate below zero on its far side, and no energy, area or leakage is negative.
    """
    if y0 <= 0 or y1 <= 0:
        return max(0.0, y0 + (y1 - y0) * (x - x0) / (x1 - x0))
    # y0 * (y1/y0)^(ln(x/x0)/ln(x1/x0)) in 40-digit decimal, rounded once: libm's exp/log (FMA or not)
    # may differ in the last bit between machines, and these energies go into byte-compared results
    ctx, d = exactmath.ctx(), exactmath.dec
    share = ctx.divide(exactmath.dln(ctx.divide(d(x), d(x0))), exactmath.dln(ctx.divide(d(x1), d(x0))))
    return float(ctx.multiply(d(y0), exactmath.dexp(ctx.multiply(exactmath.dln(ctx.divide(d(y1), d(y0))), share))))


def available_tables() -> list[str]:
    """Names of the technology tables shipped with the package."""
    return sorted(p.stem for p in TECH_DIR.glob("*.yaml"))


def table_label(name_or_path: str | Path) -> str:
    """How results name a table: a shipped name as given ('28nm'), a user's file by its file name alone, so
    the same table gives the same bytes however its path was typed (DESIGN section 10)."""
    text = str(name_or_path)
    if "/" not in text and "\\" not in text and not text.endswith((".yaml", ".yml")):
        return text
    return Path(text).name


def resolve_tech_path(name_or_path: str | Path, base_dir: str | Path | None = None) -> Path:
    """A bare name ('28nm') -> the packaged table; anything else -> a path (relative to base_dir)."""
    text = str(name_or_path)
    if "/" not in text and "\\" not in text and not text.endswith((".yaml", ".yml")):
        path = TECH_DIR / f"{text}.yaml"
        if not path.is_file():
            raise ArchError.at(None, "technology", f"no shipped technology table named {shown(text)}",
                               _suggest(text, available_tables()) + " (or give a path to a .yaml table)")
        return path
    path = Path(text).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


_LOADED: dict[tuple, Tech] = {}


def load_tech(name_or_path: str | Path, base_dir: str | Path | None = None) -> Tech:
    """Load and validate a technology table; raises ArchError naming the file, entry and fix.

    Tables are immutable once loaded, so each file version is parsed once per process (sweeps
    and study validation load the same table for every point)."""
    path = resolve_tech_path(name_or_path, base_dir)
    where = str(path)
    if not path.is_file():
        relative = base_dir is not None and not Path(str(name_or_path)).expanduser().is_absolute()
        fix = f"use a shipped name ({', '.join(available_tables())}) or a correct path"
        if relative:  # said, because a --set or a shipped design's folder is not where the user looked
            fix += f" (a relative path is read from the architecture file's folder, {base_dir}, not the current one)"
        raise ArchError.at(where, None, "technology table not found", fix)
    key = (where, content_key(path))  # a table rewritten keeping its size and time is parsed anew
    if key not in _LOADED:
        _LOADED[key] = _load_tech(path, where)
    # each caller gets its own entries: a script editing ``tech.entries[...]["value"]`` changed the cached table,
    # and with it every later load_tech and load_arch of the process (simulate A, edit, A again gave other bytes)
    return dataclasses.replace(_LOADED[key], ref=str(name_or_path),
                               entries={k: dict(v) for k, v in _LOADED[key].entries.items()})


#: the largest SRAM point a table may give (the architecture's bound on any size) and the widest access port
POINT_SIZE_MAXIMA = {"capacity_bytes": 2**40, "access_bits": 2**16}


def _check_point_sizes(where: str, field_at: str, entry: dict) -> None:
    """An SRAM point's ``capacity_bytes`` and ``access_bits`` are whole numbers from 1 to their bound (beyond it a
    typo, which would also overflow the per-byte energies)."""
    for k, high in POINT_SIZE_MAXIMA.items():
        if k not in entry:
            continue
        value, unit = entry[k], "bytes" if k == "capacity_bytes" else "bits"
        if file_count(value) is not None:  # 1024.0 and '1e3' are whole numbers, as in architecture files
            value = entry[k] = file_count(value)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ArchError.at(where, f"{field_at}.{k}", f"must be a positive integer, got {shown(value)}",
                               f"write a whole number of {unit}")
        if value > high:
            raise ArchError.at(where, f"{field_at}.{k}", f"must be <= {high}, got {shown(value)}",
                               f"check the number of {unit} (a typo?)")


def _refuse_another_kind(where: str, what: str | None) -> None:
    """Another of the tool's files (``what``: a workload, an architecture, ...) named as the technology table: say
    what it is, rather than its first unknown key or an undecodable byte."""
    if what is not None:
        raise ArchError.at(where, None, f"is {what}, not a technology table",
                           f"give a technology table (a shipped name, or a copy of {TECH_DIR / '28nm.yaml'})")


def _node_nm(where: str, field_at: str, raw: object, what: str, example: int) -> int | float:
    """A technology node in nm: a positive number below 10^6, numeric text included (``'28'``, as every other number
    of a table and an architecture file accepts it; it was refused here alone)."""
    value = raw
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value.replace("_", ""))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e6:
        raise ArchError.at(where, field_at, f"must be a positive number, got {shown(raw)}",
                           f"give {what} in nm, e.g. node_nm: {example}")
    return value


def _checked_entry(where: str, key: object, entry: object) -> dict:
    """One table entry checked (its unit suffix, fields, value, source, scaling, node and point sizes), with its
    value as a number and its unit added; ArchError naming ``entries.<key>`` otherwise."""
    field_at = f"entries.{key}"
    unit = _unit_of(str(key))
    if unit is None:
        raise ArchError.at(where, field_at, "the key must end in its unit",
                           f"use one of the suffixes _{', _'.join(UNIT_SUFFIXES)}")
    if not isinstance(entry, dict):
        raise ArchError.at(where, field_at, "must be a mapping with value, source, node_nm, scaling",
                           f"write '{key}:' followed by indented 'value: ...', 'source: ...', 'node_nm: ...' "
                           "and 'scaling: ...' lines")
    for k in entry:
        if k not in ENTRY_FIELDS:
            raise ArchError.at(where, f"{field_at}.{k}", "unknown field", _suggest(str(k), ENTRY_FIELDS))
    for k in ("value", "source", "node_nm", "scaling"):
        if k not in entry:
            raise ArchError.at(where, f"{field_at}.{k}", "missing",
                               "every entry needs value, source, node_nm, scaling")
    value = entry["value"]
    if isinstance(value, str):  # YAML 1.1 reads '7e-05' as text
        with contextlib.suppress(ValueError):
            value = typed_number(value, float(value))
    beyond = isinstance(value, TypedNumber) and value > 0  # beyond a float's range: refused by range
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or (isinstance(value, float) and not math.isfinite(value) and not beyond) or value < 0):
        raise ArchError.at(where, f"{field_at}.value", f"must be a finite number >= 0, got {shown(value)}",
                           f"write a plain number in the entry's unit ({unit})")
    check_entry_range(where, f"{field_at}.value", unit, value)
    if not isinstance(entry["source"], str) or not entry["source"].strip():
        raise ArchError.at(where, f"{field_at}.source", "must be a non-empty citation text",
                           "say where the value comes from (a paper, a tool, or 'estimate: ...')")
    if not isinstance(entry["scaling"], str) or not entry["scaling"].strip():
        raise ArchError.at(where, f"{field_at}.scaling", "must be a text saying which scaling was applied",
                           "write scaling: \"none\" if none was")
    node_nm = _node_nm(where, f"{field_at}.node_nm", entry["node_nm"], "the node the value was measured at", 45)
    _check_point_sizes(where, field_at, entry)
    if isinstance(value, float) and value == 0:  # -0 is 0 (see with_overrides)
        value = 0.0
    out = dict(entry, value=value, unit=unit, node_nm=node_nm)
    if "rate_hz" in entry:
        out["rate_hz"] = _rate_hz(where, f"{field_at}.rate_hz", entry["rate_hz"])
    return out


def _load_tech(path: Path, where: str) -> Tech:
    text = None
    try:
        text = path.read_text(encoding="utf-8")
        data = load_yaml_text(text, where, ArchError)
    except (UnicodeDecodeError, RecursionError) as error:
        _refuse_another_kind(where, "a workload (.npz)" if starts_as_zip(path) else None)
        raise ArchError.at(where, None, f"not a readable YAML text file ({type(error).__name__})",
                           "save it as UTF-8 YAML") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f"line {mark.line + 1}" if mark is not None else None
        raise ArchError.at(where, at, f"not valid YAML ({getattr(error, 'problem', None) or error})",
                           yaml_syntax_fix(text, error, "fix the syntax (a truncated file?)")) from None
    except OSError as error:
        raise ArchError.at(where, None, f"cannot read ({error.strerror})") from None
    if not isinstance(data, dict):
        raise ArchError.at(where, None, "a technology table must be a mapping with 'entries'",
                           f"start from a copy of {TECH_DIR / '28nm.yaml'}")
    kind = yaml_file_kind(data)
    _refuse_another_kind(where, YAML_FILE_KINDS[kind] if kind else None)
    for key in data:
        if key not in TOP_FIELDS:
            raise ArchError.at(where, str(key), "unknown key", _suggest(str(key), TOP_FIELDS))
    if data.get("format") != "satasim-tech" or data.get("version") != 1:
        raise ArchError.at(where, "format/version", "not a satasim technology table version 1",
                           "start the file with 'format: satasim-tech' and 'version: 1'")
    node = _node_nm(where, "node_nm", data.get("node_nm"), "the table's node", 28)
    entries = data.get("entries")
    if not isinstance(entries, dict) or not entries:
        raise ArchError.at(where, "entries", "missing or empty", "list the table's entries under 'entries:'")
    clean = {str(key): _checked_entry(where, key, entry) for key, entry in entries.items()}
    check_sram_points(clean, where)
    check_adc_points(clean, where)
    check_sram_growth(clean, where)
    return Tech(name=str(data.get("name", path.stem)), path=path, node_nm=float(node), entries=clean,
                sha256=hashlib.sha256(text.encode("utf-8")).hexdigest()[:16])
