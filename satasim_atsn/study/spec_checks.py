"""Checks of a whole study once its fields are parsed: its workload and images, values that build on the base
design, points that would run one design twice (the same table or DRAM part under two names), and technology
entries that no point's design uses."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from satasim_atsn.errors import SatasimError, StudyError, shown
from satasim_atsn.fileio import (
    real_path,
)
from satasim_atsn.hw.arch_consistency import DRAM_PART_ALIASES
from satasim_atsn.study.spec_designs import arch_technology
from satasim_atsn.study.spec_fields import DEFAULT_STUDY_IMAGES, fail, number_or_text, value_identity, yaml_scalar

if TYPE_CHECKING:
    from satasim_atsn.study.spec_types import Axis, Study


#: the fields of a table entry the model reads; the rest (source, node_nm, scaling) and the table's name and node are
#: provenance: two tables that differ only there give the same numbers (nothing is scaled by node_nm)
READ_ENTRY_FIELDS = ("value", "capacity_bytes", "access_bits", "rate_hz")


def _table_identity(value: Any, arch_paths: list[Path]) -> tuple | None:
    """What a ``technology`` value reads for each of the study's architecture files: the figures of its entries, so
    a name and a path of one table, two copies of it, or two tables that differ only in provenance (a name, a
    node_nm) compare equal (None if a table cannot be read: the value check says why)."""
    from satasim_atsn.hw.tech import load_tech, resolve_tech_path

    found = []
    for arch_path in arch_paths:
        try:
            tech = load_tech(real_path(resolve_tech_path(str(value), arch_path.parent)))
        except (SatasimError, OSError):
            return None
        found.append(tuple(sorted((key, tuple((f, entry[f]) for f in READ_ENTRY_FIELDS if f in entry))
                                  for key, entry in tech.entries.items())))
    return tuple(found)


def other_values(axis: Axis, column: int, values: tuple) -> tuple:
    """A zipped point's values but the one in ``column``, as point identities: two tables (or a DRAM part and its
    other name) are one point twice only beside equal other values."""
    return tuple(value_identity(f, v) for i, (f, v) in enumerate(zip(axis.fields, values, strict=True)) if i != column)


def refuse_same_tables(where: str, study: Study) -> None:
    """Two ``technology`` values of an axis that read the same table (one file named twice, by name and by path,
    or two files of the same contents) would be one point twice, as ``vary.arch`` refuses one file listed twice."""
    arch_paths = list(study.arch_files.values()) or ([study.arch] if study.arch is not None else [])
    for axis in study.axes:
        if "technology" not in axis.fields or not arch_paths:
            continue
        column = axis.fields.index("technology")
        key = "vary." + ("zip" if len(axis.fields) > 1 else "technology")
        seen: dict[tuple, Any] = {}
        for values in axis.values:
            table = _table_identity(values[column], arch_paths)
            if table is None:
                continue
            rest = other_values(axis, column, values)
            if (table, rest) in seen:
                raise fail(where, key, f"{shown(seen[table, rest])} and {shown(values[column])} name tables of the "
                            "same figures (one file, copies of it, or tables that differ only in their name, node_nm "
                            "or sources, which nothing is scaled by): every point would repeat the same numbers",
                            "list each table once, or change the figures of one")
            seen[table, rest] = values[column]


def refuse_dram_aliases(where: str, study: Study) -> None:
    """A DRAM part and another name of it (hw/arch_consistency.py DRAM_PART_ALIASES: dram_commodity is dram_ddr4
    wherever the table has no entry of its own) on one axis would run one point twice under two names."""
    from satasim_atsn.hw.tech import load_tech

    field_name = "dram.energy_table_entry"
    arch_paths = list(study.arch_files.values()) or ([study.arch] if study.arch is not None else [])
    set_tech = next((e.partition("=")[2] for e in study.fixed if e.partition("=")[0] == "technology"), None)
    for axis in study.axes:
        if field_name not in axis.fields or not arch_paths:
            continue
        if "technology" not in axis.fields and any("technology" in other.fields for other in study.axes):
            continue  # the table of a point depends on another axis: each point is checked when built
        column = axis.fields.index(field_name)
        seen: dict[tuple, Any] = {}
        for values in axis.values:
            part = values[column]
            if not isinstance(part, str) or part not in DRAM_PART_ALIASES:
                continue
            tables = [set_tech if set_tech is not None else arch_technology(p) for p in arch_paths]
            if "technology" in axis.fields:
                tables = [values[axis.fields.index("technology")]] * len(arch_paths)
            try:
                aliased = all(not load_tech(str(t), base_dir=p.parent).has(f"{part}_energy_pJ_per_bit")
                              for t, p in zip(tables, arch_paths, strict=True) if t is not None)
            except SatasimError:
                continue  # an unreadable table: the value check says why
            if not aliased:
                continue
            seen[DRAM_PART_ALIASES[part], other_values(axis, column, values)] = part
        for values in axis.values:
            alias = seen.get((values[column], other_values(axis, column, values)))
            if alias is not None:
                key = "vary." + ("zip" if len(axis.fields) > 1 else field_name)
                raise fail(where, key, f"{shown(alias)} is another name of "
                            f"{shown(values[column])} (the table has no entry of its own for it): every point would "
                            "run twice", f"list {values[column]} once")


def check_workload(where: str, study: Study) -> None:
    """The workload must be valid and hold the images the study asks for; a study that gives no ``images``
    runs at most DEFAULT_STUDY_IMAGES, fewer when the workload holds fewer from ``start`` (as `run` runs them all)."""
    from satasim_atsn.workload.format import read_workload

    try:
        workload = read_workload(study.workload)
    except SatasimError as error:
        raise StudyError(f"{where}: workload: {error}") from None
    if study.start >= workload.num_images:
        raise fail(where, "start", f"{study.start} is past the workload's last image ({workload.num_images} images)",
                    f"use start < {workload.num_images}")
    if "images" not in study.raw:
        study.images = min(DEFAULT_STUDY_IMAGES, workload.num_images - study.start)
    if study.start + study.images > workload.num_images:
        raise fail(where, "images", f"start {study.start} + images {study.images} exceeds the workload's "
                    f"{workload.num_images} images", f"use images <= {max(workload.num_images - study.start, 0)}")
    if study.mode == "functional" and workload.is_statistical:
        raise fail(where, "workload", "a functional study needs a trained workload (this one is statistical)",
                    "use mode: engine, or a trained workload")
    if study.mode == "functional":
        _refuse_hardware_rule_metrics(where, study)
    labelled = [m for m in study.metrics if m in ("accuracy", "accuracy_hardware", "accuracy_hw_rule")]
    if labelled and workload.is_statistical:
        raise fail(where, f"metrics: {labelled[0]}", "a statistical workload has no labels, so no accuracy (the "
                    "column would stay empty)", "drop it, or sweep a trained workload")
    if labelled and workload.labels() is None:  # valid: `y` is optional (docs/workload-format.md)
        raise fail(where, f"metrics: {labelled[0]}", f"{Path(study.raw['workload']).name} has no labels (no y "
                    "array), so no accuracy (the column would stay empty)",
                    "drop it, or sweep a workload whose inputs carry their labels")
    if study.mode == "engine" and workload.is_statistical:  # each architecture's exit rule needs its histogram
        from satasim_atsn.hw.arch import read_arch
        from satasim_atsn.traces.exit_histograms import require_histogram

        for arch_path in (list(study.arch_files.values()) or [study.arch]):
            try:
                policy = read_arch(arch_path, study.fixed).policy_name
            except SatasimError:
                continue  # check_values names what is wrong with the architecture
            try:
                require_histogram(workload, policy)
            except SatasimError as error:
                raise fail(where, "workload", f"{Path(study.raw['workload']).name} cannot run on "
                            f"{arch_path.name}: {str(error).split(': ', 2)[-1].split('; ')[0]}",
                            f"rebuild it with --exit-mean {policy}=MEAN, or study another architecture") from None


def check_values(where: str, study: Study) -> None:
    """Every varied value must be one the architecture accepts (each axis value on the base, with `set`).

    With ``vary.arch`` at least one architecture must accept the fixed overrides (the others' points are skipped),
    and each other value must be accepted by at least one of those (combinations an architecture refuses become
    skipped points)."""
    from satasim_atsn.hw.arch_fields import check_value
    from satasim_atsn.hw.arch_overrides import apply_overrides, schema_at

    bases, set_refusal, repairable = _set_bases(where, study) if study.mode == "engine" else ([], None, {})
    for axis in study.axes:
        if axis.fields == ("arch",):
            continue
        key = "vary." + ("zip" if len(axis.fields) > 1 else axis.fields[0])
        for values in axis.values:
            overrides = [f"{f}={yaml_scalar(v, f)}" for f, v in zip(axis.fields, values, strict=True)]
            refused = None
            try:
                if not bases:
                    for fname, value in zip(axis.fields, values, strict=True):
                        check_value("", fname, value, schema_at(fname.split(".")))
            except SatasimError as error:
                refused = error
            errors: dict[Path, str] = {}
            for arch_path, base in bases:
                try:
                    _build_with_technology(apply_overrides(base, overrides), arch_path)
                    refused = None
                    break
                except SatasimError as error:
                    refused, errors[arch_path] = error, str(error)
            if refused is not None and errors and all(repairable.get(path) == text for path, text in errors.items()):
                continue  # each design's set-entry refusal, not this value's, and other points repair it
            if refused is not None and set_refusal is not None and str(refused) == set_refusal[0]:
                raise set_refusal[1]  # refused whatever this value is: the `set` entry is what is wrong
            if refused is not None:
                raise fail(where, key, f"value {shown(values if len(values) > 1 else values[0])} is refused "
                            f"({refused})", "vary over values the architecture accepts" if bases
                            else "vary over values the field accepts") from None
    _refuse_unused_tech_entries(where, study, bases)


def _some_point_builds(study: Study, bases: list[tuple[Path, dict]]) -> bool:
    """Does any point's combination of values make a base (with the study's set) a design that builds? Stops at the
    first that does; a study whose every point is refused tries them all (a few ms each)."""
    from satasim_atsn.hw.arch_overrides import apply_overrides

    for point in study.points():
        values = [f"{f}={yaml_scalar(v, f)}" for f, v in point.items() if f != "arch"]
        for arch_path, base in bases:
            try:
                _build_with_technology(apply_overrides(base, values), arch_path)
                return True
            except SatasimError:
                continue
    return False


HARDWARE_RULE_METRICS = ("accuracy_hw_rule", "avg_timestep_hw_rule", "hw_float_disagreement", "pred_hw_differs")


def _refuse_hardware_rule_metrics(where: str, study: Study) -> None:
    """A functional study whose exit units all decide by the float rule (dt) has no hardware rule: its
    hardware-rule metrics would be empty columns, refused as accuracy on a statistical workload is."""
    from satasim_atsn.hw.exit_units import EXIT_UNITS, ExitUnit

    asked = [m for m in study.metrics if m in HARDWARE_RULE_METRICS]
    if not asked:
        return
    kinds = {str(v[a.fields.index("exit_unit.kind")]) for a in study.axes if "exit_unit.kind" in a.fields
             for v in a.values}
    fixed = dict(e.split("=", 1) for e in study.fixed if "=" in e)
    kinds = kinds or ({fixed["exit_unit.kind"].strip()} if "exit_unit.kind" in fixed else set())
    kinds = kinds or {"at"}  # the functional default
    units = [EXIT_UNITS.get(k) for k in kinds]
    if all(u is not None and type(u).hardware_policy is ExitUnit.hardware_policy for u in units):
        raise fail(where, f"metrics: {asked[0]}", f"exit unit kind {', '.join(sorted(kinds))} decides by the float "
                    "rule itself: there is no hardware rule to measure (the column would stay empty)",
                    "drop it, or study an exit unit with a hardware rule (at)")


def _refuse_unused_tech_entries(where: str, study: Study, bases: list[tuple[Path, dict]]) -> None:
    """Varied tech.<entry> fields that change nothing in any base design (DDR4 figures of an LPDDR4 design, the ADC
    of a digital one), when they are all the study varies besides ``arch``, would make every point repeat the same
    numbers: refused, as a foreign exit-unit field is. Zipped entries and several such axes count too (a zip of
    two unused entries, or two unused-entry axes, ran every point with the same numbers)."""
    axes = [axis for axis in study.axes if axis.fields != ("arch",)]
    if not bases or not axes or any(not f.startswith("tech.") for axis in axes for f in axis.fields):
        return  # another axis may make an entry matter (a DRAM type, an analog PE, a buffer size)
    inert = []
    for axis in axes:
        for index, fname in enumerate(axis.fields):
            values = [value[index] for value in axis.values]
            other = next((v for v in values[1:] if number_or_text(v) != number_or_text(values[0])), None)
            if other is None:
                continue  # one value in this axis: it moves no point
            if _tech_entry_moves(where, fname, values[0], other, bases) is not False:
                return  # it changes the design (or a value check above names what is wrong)
            inert.append(fname)
    if not inert:
        return
    names = ", ".join(path.name for path, _ in bases)
    if len(inert) == 1:
        raise fail(where, f"vary.{inert[0]}", f"changes nothing in {names}: the design does not use this "
                    "technology entry, so every point would repeat the same numbers",
                    "vary an entry the design reads (docs/energy.md: which component reads which entry)")
    raise fail(where, "vary", f"{', '.join(inert)} change nothing in {names}: the design uses none of these "
                "technology entries, so every point would repeat the same numbers",
                "vary an entry the design reads (docs/energy.md: which component reads which entry)")


def _tech_entry_moves(where: str, fname: str, first: Any, other: Any, bases: list[tuple[Path, dict]]) -> bool | None:
    """Does tech.<entry> ``fname`` at ``first`` and at ``other`` give any base design other technology figures?
    None when a value is refused (the value checks name it)."""
    from satasim_atsn.hw.arch import build_arch
    from satasim_atsn.hw.arch_overrides import apply_overrides
    from satasim_atsn.hw.energy import technology_fingerprint

    def figures(path: Path, base: dict, value: Any) -> Any:
        arch = apply_overrides(base, [f"{fname}={yaml_scalar(value, fname)}"])
        return technology_fingerprint(build_arch(arch, where=str(path), base_dir=path.parent, path=path))

    try:
        return any(figures(path, base, first) != figures(path, base, other) for path, base in bases)
    except SatasimError:
        return None


def _set_bases(where: str, study: Study) -> tuple[list[tuple[Path, dict]], tuple[str, StudyError] | None,
                                                dict[Path, str]]:
    """The raw architecture(s) with the study's ``set`` entries applied, why one base refuses them, and the bases
    whose refusal some point's values repair (path -> the refusal's text).

    A base that refuses the entries but that some point repairs (an exit table a larger data memory on an axis
    holds) stays a base: its points that stay refused are skipped rows. With ``vary.arch`` a design that refuses
    itself raises; one that refuses a ``set`` entry no point repairs is left out of the bases (its points become
    skipped rows, docs/studies.md: fields may be set if any of the files has them), and only an entry that every
    design refuses raises, naming it. With one base architecture the refusal (its text, and the error naming the
    entry) is returned, not raised: a point refused for that very reason is blamed on ``set``."""
    from satasim_atsn.hw.arch_files import read_yaml
    from satasim_atsn.hw.arch_overrides import apply_overrides

    bases: list[tuple[Path, dict]] = []
    refusal = None
    set_refusals: list[StudyError] = []
    repairable: dict[Path, str] = {}
    for arch_path in (list(study.arch_files.values()) or [study.arch]):
        try:
            raw = read_yaml(arch_path)
            base = apply_overrides(raw, study.fixed)
        except SatasimError as error:
            raise StudyError(f"{where}: set: {error}") from None
        try:
            _build_with_technology(base, arch_path)
        except SatasimError as error:
            if not study.fixed and study.arch_files:
                raise StudyError(f"{where}: vary.arch: {error}") from None
            if not study.fixed:  # the design's table lacks an entry it reads (a varied value may repair it)
                refusal = (str(error), StudyError(f"{where}: arch: {error}"))
            else:
                refusal = (str(error), _set_refused(where, study.fixed, arch_path, raw, error))
                if study.arch_files and str(refusal[1]).startswith(f"{where}: arch: "):  # refuses itself, set or not
                    raise StudyError(f"{where}: vary.arch: {error}") from None
            if _some_point_builds(study, [(arch_path, base)]):
                repairable[arch_path] = str(error)
            elif study.arch_files:
                set_refusals.append(refusal[1])
                continue
        bases.append((arch_path, base))
    if study.arch_files:
        if not bases:  # no design takes the entries, and no point repairs them: no point could run
            raise set_refusals[0] from None
        refusal = None  # the designs that refuse an entry skip their points, each with its reason
    return bases, refusal, repairable


def _build_with_technology(raw: dict, arch_path: Path) -> Any:
    """The design ``raw`` (an architecture file's fields at ``arch_path``, overridden) built, with every technology
    entry it reads looked up: a table that lacks one is refused before any point runs, as `satasim run` refuses it
    before its first image."""
    from satasim_atsn.hw.arch import build_arch
    from satasim_atsn.hw.energy import check_technology

    arch = build_arch(raw, where=str(arch_path), base_dir=arch_path.parent, path=arch_path)
    check_technology(arch)
    return arch


def _set_refused(where: str, fixed: list[str], arch_path: Path, raw: dict, error: SatasimError) -> StudyError:
    """The error for ``set`` entries the architecture at ``arch_path`` refuses, naming ``set.<field>``.

    The entry is the one whose field the refusal names, else the first whose addition makes the
    architecture invalid (a rule between fields)."""
    from satasim_atsn.hw.arch_overrides import apply_overrides

    text = str(error)
    named = [entry for entry in fixed if f": {entry.partition('=')[0].strip()}:" in text]
    culprit = named[-1] if named else None  # the last one wins, as in apply_overrides
    if culprit is None:
        for count in range(len(fixed) + 1):
            try:
                _build_with_technology(apply_overrides(raw, fixed[:count]), arch_path)
            except SatasimError:
                if count == 0:  # the design refuses itself (its table lacks an entry it reads): no set entry is
                    return StudyError(f"{where}: arch: {text}")  # to blame
                culprit = fixed[count - 1]
                break
    if culprit is None:
        return StudyError.at(where, "set", f"refused ({text})", "fix or remove the set entries")
    fname, _, value = culprit.partition("=")
    return StudyError.at(where, f"set.{fname.strip()}", f"value {shown(value.strip())} is refused ({text})",
                         "fix or remove this set entry")


def refuse_two_dram_spellings(where: str, fixed_names: list[str], varied) -> None:
    """A DRAM rate in cycles and in time units (hw/arch_fields.py DRAM_UNITS) is one rate: a study that varies both, or
    sets one and varies the other, would give every point both (refused per point); refuse it up front.
    ``fixed_names``: the fields set: gives a value (a null only removes the file's spelling)."""
    from satasim_atsn.hw.arch_fields import DRAM_UNITS

    for per_cycle, timed in DRAM_UNITS.items():
        cycles, time = f"dram.{per_cycle}", f"dram.{timed}"
        if cycles in varied and time in varied:
            raise fail(where, f"vary.{time}", f"and vary.{cycles} are one rate in two units (every point would "
                        "give both)", "vary one of them")
        for name, other in ((cycles, time), (time, cycles)):
            if name in fixed_names and other in varied:
                raise fail(where, f"set.{name}", f"is also varied as {other} (one rate in two units)",
                            f"drop it from set, or vary {name} instead of {other}")
