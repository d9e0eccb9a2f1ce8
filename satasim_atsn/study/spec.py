"""Study files (``studies/*.yaml``): parse, validate strictly, expand into points.

A study is a base architecture and workload, the fields to vary and the metrics to collect::

    name: atsn_buffers
    description: spike buffer and data-memory sizes
    mode: engine                    # engine (simulate) | functional (exit policies only)
    arch: ../archs/atsn16x16.yaml   # paths are relative to the study file
    workload: ../workloads/vgg16_cifar10.npz
    images: 200                     # images per point (from `start`)
    set: [accelerators=4]           # fixed overrides applied to every point
    vary:                           # one axis per key; the points are the product of the axes
      pe.input_spike_buffer_bytes: [64, 128, 256]                 # a list
      pe.data_memory_bytes: {start: 512, stop: 2048, factor: 2}   # a range (stop inclusive; step or factor)
      zip:                          # groups of fields that move together (equal lengths)
        - {array.rows: [8, 16], array.cols: [8, 16]}
    metrics: [fps, energy_per_image_uJ, area_mm2]
    plots: [{x: area_mm2, y: energy_per_image_uJ}]   # trade-off plots, Pareto front marked

Everything is validated before anything runs; mistakes raise :class:`StudyError` naming the file,
the field and the fix (with a "did you mean" suggestion for misspelt names).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from satasim_atsn.errors import SatasimError, StudyError, closest, did_you_mean, file_count, shown
from satasim_atsn.fileio import (
    content_key,
    file_sha256,
    is_link_loop,
    load_yaml,
    real_path,
    starts_as_zip,
    yaml_syntax_fix,
)
from satasim_atsn.hw import MODEL_VERSION
from satasim_atsn.hw.arch import DRAM_PART_ALIASES
from satasim_atsn.hw.energy import ENERGY_GROUPS
from satasim_atsn.hw.tech import TECH_DIR, to_float
from satasim_atsn.workload.network_file import YAML_FILE_KINDS, yaml_file_kind

DEFAULT_STUDY_IMAGES = 100  # images per point of a study that gives none (fewer if the workload holds fewer)
TOP_KEYS = ("name", "description", "mode", "arch", "workload", "images", "start", "set", "vary", "metrics", "plots")
MODES = ("engine", "functional")
PACKAGE_PARENT = TECH_DIR.parents[2]  # the folder holding satasim_atsn/: shipped files are named from it

#: metrics of engine points (see study.metrics.engine_metrics); ``energy_<component>_uJ`` too
ENGINE_METRICS = (
    "fps",
    "latency_us",
    "cycles_per_image",
    "energy_per_image_uJ",
    "energy_per_image_timestep_uJ",
    "energy_10k_images_J",
    "dynamic_energy_per_image_uJ",
    "leakage_energy_per_image_uJ",
    "power_mW",
    "area_mm2",
    "edp_uJ_ms",
    "avg_timestep",
    "accuracy",
    "accuracy_hardware",
    "sops_per_image",
    "pJ_per_sop",
    "dynamic_pJ_per_sop",
    "leakage_share",
    "pe_utilisation",
    "dram_channel_busy",
    "dram_bytes_per_image",
    "weight_fetch_reads",
    "pe_busy_share",
    "memory_stall_share",
)
COMPONENTS = ("pe_compute", "pe_memory", "spike_buffers", "exit_unit", "noc", "global_buffer", "dram", "adc")
ENGINE_METRICS_ALL = (ENGINE_METRICS + tuple(f"energy_{c}_uJ" for c in COMPONENTS)
                      + tuple(f"energy_group_{g}_uJ" for g in ENERGY_GROUPS))
FUNCTIONAL_METRICS = (
    "accuracy",
    "avg_timestep",
    "complexity",
    "accuracy_hw_rule",
    "avg_timestep_hw_rule",
    "hw_float_disagreement",
    "pred_hw_differs",
)
#: fields a functional study may vary: the exit unit's parameters
FUNCTIONAL_FIELDS = (
    "exit_unit.kind",
    "exit_unit.cl_init",
    "exit_unit.tau_cl",
    "exit_unit.theta",
    "exit_unit.exp_lut_entries",
    "exit_unit.exp_frac_bits",
)
#: metrics for which higher is better (Pareto fronts maximise them)
MAXIMISE = ("fps", "accuracy", "accuracy_hardware", "accuracy_hw_rule", "pe_utilisation", "pe_busy_share")


@dataclass
class Axis:
    """One axis of the study: one field, or several zipped fields moving together."""

    fields: tuple[str, ...]
    values: list[tuple[Any, ...]]


@dataclass
class Study:
    """A validated study."""

    path: Path
    name: str
    description: str
    mode: str
    arch: Path | None
    workload: Path
    images: int
    start: int
    fixed: list[str]
    axes: list[Axis]
    metrics: list[str]
    plots: list[dict]
    raw: dict = field(default_factory=dict)
    arch_files: dict[str, Path] = field(default_factory=dict)  # vary.arch: value as written -> resolved file

    def point_arch(self, point: dict[str, Any]) -> Path | None:
        """The architecture file of a point: its ``arch`` value when the study varies it, else the base."""
        return self.arch_files[str(point["arch"])] if "arch" in point else self.arch

    @property
    def fields(self) -> list[str]:
        """Varied field paths in axis order."""
        return [f for axis in self.axes for f in axis.fields]

    def points(self) -> list[dict[str, Any]]:
        """Every point (field -> value), in product order of the axes; index = position."""
        out = []
        for combo in itertools.product(*[axis.values for axis in self.axes]):
            point: dict[str, Any] = {}
            for axis, values in zip(self.axes, combo, strict=False):
                point.update(zip(axis.fields, values, strict=False))
            out.append(point)
        return out

    def base_identity(self) -> dict:
        """What every point's result depends on besides its own values (file contents, not paths, and for an
        engine study the hardware model's version)."""
        model = {"model_version": MODEL_VERSION} if self.mode == "engine" else {}
        return {
            **model,
            "mode": self.mode,
            "arch": None if self.arch is None else _file_digest(self.arch),
            "workload": _file_digest(self.workload),
            "images": self.images,
            "start": self.start,
            "fixed": list(self.fixed),
            "metrics": sorted(self.metrics),  # a row holds its metrics by name: their order changes no result
        }

    def point_key(self, point: dict[str, Any], base: dict | None = None) -> str:
        """A content key for a point: equal keys mean equal results, so rows can be reused."""
        base = base if base is not None else self.base_identity()
        if "arch" in point:  # a varied architecture: its file's contents, not its path
            base = {**base, "arch": _file_digest(self.arch_files[str(point["arch"])])}
        table = _user_table_digest(self.point_arch(point), self.fixed, point) if self.mode == "engine" else None
        if table is not None:  # a technology table of the user's: its contents too (a shipped one is the tool's)
            base = {**base, "technology_table": table}
        items = sorted((fname, key_value(fname, value)) for fname, value in point.items())
        payload = json.dumps({"base": base, "point": items}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def identity(self) -> dict:
        """The identity stored in the output directory (study.json)."""
        base = self.base_identity()
        points = self.points()
        return {
            "name": self.name,
            "study_file": self.path.name,
            "mode": self.mode,
            "fields": self.fields,
            "metrics": self.metrics,
            "points": len(points),
            **({"model_version": MODEL_VERSION} if self.mode == "engine" else {}),
            "digest": hashlib.sha256(
                json.dumps([self.point_key(p, base) for p in points]).encode()
            ).hexdigest()[:16],
        }


_DIGESTS: dict[tuple, str] = {}


def point_refusal(arch_path: str, overrides: list[str], workload_path: str, shown_arch: str,
                  varied: Iterable[str] = (), shown_workload: str | None = None) -> str | None:
    """Why the architecture at ``arch_path`` with ``overrides`` refuses to map the workload (None: it accepts).

    The architecture file is named ``shown_arch`` and the workload ``shown_workload`` (as the study names them),
    the design's technology table as the design names it and the shipped files from the package's folder, so a
    report is the same from any directory and wherever the files lie; its fixes respect the ``varied`` fields (see
    :func:`in_study_terms`). Runs in the worker that would simulate the point (a few ms per point: a 9,001-point
    study checked them all up front, serially, for 34 s before its first point ran)."""
    from satasim_atsn.hw.arch import read_arch
    from satasim_atsn.hw.run_checks import check_mappable
    from satasim_atsn.study.metrics import read_cached

    arch = None
    try:
        arch = read_arch(arch_path, list(overrides))
        workload = read_cached(workload_path)
        check_mappable(arch, workload)  # the checks simulate makes before any image (membrane widths too)
    except SatasimError as error:
        shown_as = {arch_path: shown_arch, workload_path: shown_workload or Path(workload_path).name}
        if arch is not None:
            shown_as[str(arch.tech.path)] = arch.tech.ref or arch.tech.path.name
        else:  # refused while the design was read (a table entry it reads at build): its table as the file names it
            shown_as.update(_technology_as_named(Path(arch_path), overrides))
        shown_as[str(PACKAGE_PARENT) + os.sep] = ""  # a shipped file: satasim_atsn/data/...
        text = str(error)
        for path in sorted(shown_as, key=len, reverse=True):  # a longer path first: it may hold a shorter one
            text = text.replace(path, shown_as[path])
        return in_study_terms(text, varied)
    return None


def _technology_as_named(arch_path: Path, overrides: Iterable[str]) -> dict[str, str]:
    """{resolved path of the design's technology table: the name its file (or a ``technology=`` override) gives}, or
    {} when it cannot be resolved (the refusal then says why)."""
    from satasim_atsn.hw.tech import resolve_tech_path

    name = _arch_technology(arch_path)
    for entry in overrides:
        field_name, _, value = entry.partition("=")
        if field_name.strip() == "technology":
            name = value.strip()
    try:
        return {str(resolve_tech_path(str(name), arch_path.parent)): str(name)} if name else {}
    except (SatasimError, OSError):
        return {}


_SET_ITEM = r"--set (?:[\w.]+=[^\s;,()]+|\w+(?:\.\w+)+)"  # a field=value, or a field path
_SET_RUN = re.compile(f"{_SET_ITEM}(?: {_SET_ITEM})*")


_UNSET = re.compile(r"remove it \(or --set ([\w.]+)=null\)")


def in_study_terms(text: str, varied: Iterable[str] = ()) -> str:
    """A message of `satasim run` for a sweep's report: the study's ``set``/``vary`` values play the part of
    ``--set``, which a study has not (``--set a=1 --set b=2`` -> ``a=1, b=2 in the study's set``, ``--set tech.e``
    -> ``the study's tech.e``, ``drop the --set`` -> ``drop the study's value``), so its fixes can be followed.

    A field among ``varied`` cannot also be in ``set`` (refused) and a vary list takes no null, so its
    ``--set f=1`` reads ``1 among vary.f's values`` and "remove it (or --set f=null)" says the design takes no f."""
    varied = set(varied)
    text = text.removeprefix("--set: ").replace("drop the --set", "drop the study's value")
    text = text.replace("comes from --set ", "comes from the study's ")

    def unset(match: re.Match) -> str:
        name = match.group(1)
        if name in varied:
            return (f"this design takes no {name}, so its points of vary.{name} are skipped (vary {name} in a study "
                    "of the designs that take it)")
        if "arch" in varied:  # a set entry that another design of vary.arch takes
            return (f"this design takes no {name}, which the study's set gives every design, so its points are "
                    f"skipped (set {name} in a study of the designs that take it)")
        return match.group(0)

    def said(match: re.Match) -> str:
        items = match.group(0).replace("--set ", "").split(" ")
        if not all("=" in item for item in items):
            return f"the study's {', '.join(items)}"
        fixed = [item for item in items if item.split("=", 1)[0] not in varied]
        parts = [f"{', '.join(fixed)} in the study's set"] if fixed else []
        parts += [f"{value} among vary.{name}'s values" for name, value in
                  (item.split("=", 1) for item in items if item.split("=", 1)[0] in varied)]
        return " and ".join(parts)

    return _SET_RUN.sub(said, _UNSET.sub(unset, text))


def _user_table_digest(arch_path: Path | None, fixed: list[str], point: dict[str, Any]) -> str | None:
    """sha256 of the technology table a point runs with when it is the user's file (None for a table shipped
    with the package, which is part of the tool like the engine, or when the name cannot be resolved: the
    architecture check reports that)."""
    from satasim_atsn.hw.tech import TECH_DIR, resolve_tech_path

    if arch_path is None:
        return None
    name = _arch_technology(arch_path)
    for entry in fixed:
        field_name, _, value = entry.partition("=")
        if field_name.strip() == "technology":
            name = value.strip()
    name = point.get("technology", name)
    try:
        path = resolve_tech_path(str(name), arch_path.parent)
        if path.resolve().parent == TECH_DIR.resolve() or not path.is_file():
            return None
        return _file_digest(path)
    except (SatasimError, OSError):
        return None


def _arch_technology(arch_path: Path) -> str | None:
    """The ``technology`` an architecture file names (None if it cannot be read: its check says why)."""
    try:
        arch_path.stat()
        return _technology_named(str(arch_path), content_key(arch_path))
    except OSError:
        return None


@functools.lru_cache(maxsize=256)
def _technology_named(path: str, key: tuple) -> str | None:  # noqa: ARG001 - the content key keys the cache
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return raw.get("technology") if isinstance(raw, dict) else None


def _file_digest(path: Path) -> str:
    """sha256 of a file's bytes (cached by fileio.content_key: a file rewritten keeping its size and time is read)."""
    path.stat()  # a missing file: the OSError callers handle
    key = content_key(path)
    if key not in _DIGESTS:
        _DIGESTS[key] = file_sha256(path)[:16]
    return _DIGESTS[key]


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
_MISSING_FIX = {
    "name": "add it: a one-line name for the study, e.g. name: my_buffers",
    "workload": ("add it: the workload .npz, relative to the study file, e.g. "
                 "workload: ../workloads/vgg16_cifar10.npz"),
    "vary": ("add it: each varied field with its values, one per line, e.g. 'vary: {pe.data_memory_bytes: [512, 1024], "
             "pe.input_spike_buffer_bytes: {start: 32, stop: 256, factor: 2}}'"),
    "metrics": "add it: the metrics to collect, e.g. metrics: [fps, energy_per_image_uJ, area_mm2]",
}


def _fail(where: str, key: str, problem: str, fix: str) -> StudyError:
    return StudyError.at(where, key, problem, fix)


def _scalar(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool)) and value is not None


def as_number(value: Any) -> int | float | None:
    """``value`` as a number, or None: ints and floats as they are, numeric text as a float.

    PyYAML (YAML 1.1) reads an exponent without a dot, ``1e8``, as the text '1e8'; the architecture's fields
    and technology entries accept such text (``float(text.replace("_", ""))``, see hw.arch._number), so list
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
def _field_kind(fname: str) -> str | None:
    """'int' or 'float' for a numeric architecture field (every tech.<entry> is a float), else None."""
    from satasim_atsn.hw.arch import _schema_at

    if fname.startswith("tech."):
        return "float"
    try:
        spec = _schema_at(fname.split("."))
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
    kind = _field_kind(fname) if isinstance(value, str) or numeric else None
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
            raise _fail(where, f"{key}.{name}", "unknown range key", suggest(str(name), allowed))
    if "start" not in spec or "stop" not in spec:
        raise _fail(where, key, "a range needs start and stop", "write {start: A, stop: B, step: S}")
    if ("step" in spec) == ("factor" in spec):
        raise _fail(where, key, "a range needs exactly one of step or factor", "e.g. step: 64 or factor: 2")
    spec = dict(spec)
    for name in ("start", "stop", "step", "factor"):
        value = spec.get(name, 1)
        number = as_number(value)  # 1e8 is text to YAML; lists and --set accept it, so ranges do too
        if number is None:
            raise _fail(where, f"{key}.{name}", f"must be a number, got {shown(value)}", "write a number")
        if not math.isfinite(to_float(number)) or abs(number) > 1e15:  # to_float: no OverflowError
            raise _fail(where, f"{key}.{name}", f"must be a finite number of sane size, got {shown(value)}",
                        "write a number")
        if name in spec:
            spec[name] = number
    start, stop = spec["start"], spec["stop"]
    is_int = all(isinstance(spec.get(n, 1), int) for n in ("start", "stop", "step"))
    values: list = []
    if "step" in spec:
        step = spec["step"]
        if step <= 0 or start > stop:
            raise _fail(where, key, f"empty range (start {start}, stop {stop}, step {step})",
                        "use start <= stop and a positive step")
        count = int((stop - start) / step + 1e-9) + 1
        if count > 100000:
            raise _fail(where, key, f"{count} values", "use a coarser step")
        values = [start + i * step if is_int else _clean_number(start + i * step) for i in range(count)]
    else:
        factor = spec["factor"]
        if factor <= 1 or start <= 0 or start > stop:
            raise _fail(where, key, f"empty range (start {start}, stop {stop}, factor {factor})",
                        "use 0 < start <= stop and factor > 1")
        count = int(math.floor(math.log(stop * (1 + 1e-12) / start) / math.log(factor))) + 1
        if count > 100000:
            raise _fail(where, key, f"{count} values", "use a larger factor")
        value = start
        while value <= stop * (1 + 1e-12):
            values.append(int(round(value)) if isinstance(start, int) and isinstance(factor, int) else
                          _clean_number(value))
            value *= factor
    if len(values) > 100000:
        raise _fail(where, key, f"{len(values)} values", "use a coarser step")
    return values


def _axis_values(value: Any, where: str, key: str) -> list:
    if isinstance(value, list):
        if not value:
            raise _fail(where, key, "empty list of values", "give at least one value")
        for item in value:
            if item is None:
                raise _fail(where, key, "a null value sets nothing", "use numbers, strings or booleans")
            if not _scalar(item):
                raise _fail(where, key, f"value {shown(item)} is not a scalar", "use numbers, strings or booleans")
        return list(value)
    if isinstance(value, dict):
        values = expand_range(value, where, key)
        field_name = key.split("].", 1)[1] if key.startswith("vary.zip[") else key.removeprefix("vary.")
        if _field_kind(field_name) == "int" and all(float(v).is_integer() for v in values):
            values = [int(v) for v in values]  # {start: 64, stop: 256, step: 64.0} of an integer field: 64, not 64.0
        return values
    if _scalar(value):
        return [value]
    raise _fail(where, key, f"cannot vary over {shown(value)}", "give a list or a range {start, stop, step}")


def _study_archs(where: str, path: Path, raw: dict, mode: str) -> tuple[Path | None, dict[str, Path]]:
    """The study's base architecture file and its vary.arch files (value as written -> file)."""
    if mode == "functional" and "arch" in raw:  # its fields would be silently ignored, yet named in the report
        raise _fail(where, "arch", "a functional study reads no architecture file: the exit rules take their fields "
                    "from set: and vary: (defaults: the AT unit's)",
                    "drop arch, and give the exit unit's fields in set:, e.g. set: [exit_unit.cl_init=0.99]")
    _refuse_zipped_arch(where, raw.get("vary"))
    arch_files = _varied_archs(where, path.parent, raw, mode)
    if mode == "engine" and "arch" not in raw and not arch_files:
        raise _fail(where, "arch", "missing", "an engine study needs a base architecture (or vary.arch)")
    arch = _resolve_file(where, path.parent, raw, "arch") if "arch" in raw else None
    if arch is not None and arch_files and arch.resolve() not in {f.resolve() for f in arch_files.values()}:
        # the points run vary.arch's designs only, yet the report named arch: as the base
        raise _fail(where, "arch", f"{shown(raw['arch'])} is not one of vary.arch's designs, the study's only "
                    "architectures: it would run nowhere", "list it in vary.arch, or drop arch:")
    return (arch if arch is not None or not arch_files else next(iter(arch_files.values()))), arch_files


def _refuse_zipped_arch(where: str, vary: Any) -> None:
    """`arch` inside a zip group was refused as 'no such architecture field', or as a missing `arch:`."""
    groups = vary.get("zip") if isinstance(vary, dict) else None
    for g_index, group in enumerate(groups if isinstance(groups, list) else [groups]):
        if isinstance(group, dict) and "arch" in group:
            raise _fail(where, f"vary.zip[{g_index}].arch", "architectures are not zipped with other fields: "
                        "vary.arch is an axis of its own", "move arch: [...] out of the zip, directly under vary")


def load_study(path: str | Path) -> Study:
    """Read and validate a study file; raise StudyError naming the field and the fix."""
    path = Path(path)
    where = str(path)
    raw = _read_study_yaml(path, where)
    kind = yaml_file_kind(raw)
    if kind not in (None, "study"):  # another of the tool's files given to sweep: say what it is, not its first key
        raise StudyError.at(where, None, f"is {YAML_FILE_KINDS[kind]}, not a study",
                            "give satasim sweep a study file (docs/studies.md), whose arch: names the architecture")
    for key in raw:
        if key not in TOP_KEYS:
            raise _fail(where, str(key), "unknown field", suggest(str(key), TOP_KEYS))
    for key in ("name", "workload", "vary", "metrics"):
        if key not in raw:
            raise _fail(where, key, "missing", _MISSING_FIX[key])
    mode = raw.get("mode", "engine")
    if mode not in MODES:
        raise _fail(where, "mode", f"unknown mode {shown(mode)}", f"use one of {', '.join(MODES)}")
    arch, arch_files = _study_archs(where, path, raw, mode)
    workload = _resolve_file(where, path.parent, raw, "workload")
    images = raw.get("images", DEFAULT_STUDY_IMAGES)  # without it: at most that many (_check_workload)
    start = raw.get("start", 0)
    for key, value, low in (("images", images, 1), ("start", start, 0)):
        count = file_count(value)  # 2.0 and '1e3' are whole numbers, as in architecture files
        if count is None or count < low:
            raise _fail(where, key, f"must be an integer >= {low}, got {shown(value)}", "fix the value")
    images, start = file_count(images), file_count(start)
    fixed = _study_set(where, raw)
    # fields
    if mode == "functional":
        known: dict[str, Any] = {f: None for f in FUNCTIONAL_FIELDS}
    else:
        known = {}
        for arch_path in (list(arch_files.values()) or [arch]):
            known.update(arch_field_paths(arch_path, "one of the study's vary.arch architectures" if arch_files
                                          else "the study's base architecture"))
        if arch_files:
            known["arch"] = None
    names = [item.split("=", 1)[0].strip() for item in fixed]
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        raise _fail(where, f"set.{twice}", "is given twice, and the last value would win", "give each field once")
    for item in fixed:
        fname = item.split("=", 1)[0].strip()
        if fname not in known:
            raise _fail(where, f"set: {fname}", *_unknown_field(fname, known, mode))
    axes, seen = _study_axes(where, raw["vary"], known, mode)
    for item in fixed:
        fname = item.split("=", 1)[0].strip()
        if fname in seen:
            raise _fail(where, f"set.{fname}", "is also varied, and the varied values would win",
                        "drop it from set, or from vary")
    _refuse_two_dram_spellings(where, [item.split("=", 1)[0].strip() for item in fixed
                                       if item.partition("=")[2].strip() not in ("null", "~", "")], seen)
    if mode == "functional":
        params = functional_set_params(where, fixed)
        if "exit_unit.kind" not in seen:  # one kind for the whole study: a field of another kind is a mistake
            foreign = _foreign_exit_field({**params, **{f: None for f in seen}}, None)
            if foreign is not None:
                raise _fail(where, ("vary." if foreign[0] in seen else "set.") + foreign[0], foreign[1],
                            "drop it, or set (or vary) exit_unit.kind to the kind it belongs to")
    metrics = _study_metrics(where, raw["metrics"], mode)
    plots = _study_plots(where, raw.get("plots"), mode, metrics, seen)
    name = raw["name"]
    if not isinstance(name, str) or not name:
        raise _fail(where, "name", "must be a non-empty string", "name the study")
    _refuse_text_that_breaks_the_report(where, name, raw.get("description"))
    fixed_entries = [f"{k.strip()}={v.strip()}" for k, _, v in (entry.partition("=") for entry in fixed)]
    study = Study(path=path.resolve(), name=name, description=str(raw.get("description") or ""), mode=mode, arch=arch,
                  workload=workload, images=images, start=start, fixed=fixed_entries, axes=axes,
                  metrics=list(metrics), plots=plots, raw=raw, arch_files=arch_files)
    count = math.prod(len(axis.values) for axis in axes)
    if count > 10000:
        raise _fail(where, "vary", f"{count} points", "split the study; 10000 points at most")
    _check_workload(where, study)
    _check_values(where, study)
    _refuse_same_tables(where, study)
    _refuse_dram_aliases(where, study)
    return study


def _study_set(where: str, raw: dict) -> list[str]:
    """The study's ``set:`` entries, each a FIELD=VALUE string with a field name."""
    fixed = raw.get("set", []) or []
    if not isinstance(fixed, list) or not all(isinstance(s, str) and "=" in s for s in fixed):
        raise _fail(where, "set", "must be a list of 'path.to.field=value' strings", "e.g. set: [accelerators=4]")
    nameless = next((i for i, item in enumerate(fixed) if not item.split("=", 1)[0].strip()), None)
    if nameless is not None:
        raise _fail(where, f"set[{nameless}]", f"{shown(fixed[nameless])} has no field name before '='",
                    "write FIELD=VALUE, e.g. set: [accelerators=4]")
    return fixed


def _refuse_text_that_breaks_the_report(where: str, name: str, description: Any) -> None:
    """The name heads the report and the terminal's summary line, so it is one line of text; the description is
    text (a list or mapping was shown as its Python repr)."""
    if any((ord(ch) < 32 and ch != "\t") or ord(ch) == 127 for ch in name):
        raise _fail(where, "name", f"must be one line of text, got {shown(name)}",
                    "remove the line breaks and control characters")
    if description is not None and not isinstance(description, (str, int, float)):
        raise _fail(where, "description", f"must be text, got a {type(description).__name__} {shown(description)}",
                    "write it as one string (description: >- followed by indented lines for a long one)")


def _read_study_yaml(path: Path, where: str) -> dict:
    """The study file's YAML mapping (one-line errors for a missing, unreadable or non-mapping file)."""
    if os.path.isdir(path):  # os.path: False on any OSError (Path.is_dir raised on a name too long)
        raise StudyError.at(where, None, "is a directory, not a study file", "give the study's .yaml file")
    if not os.path.isfile(path):
        raise StudyError.at(where, None, "no such file", "check the path (shipped studies are in the checkout's "
                            "studies/, which a pip-installed package does not include)")
    try:
        with open(path, encoding="utf-8") as handle:
            raw = load_yaml(handle, where, StudyError)
    except (UnicodeDecodeError, RecursionError, OSError) as error:
        if starts_as_zip(path):  # a workload .npz given where the study goes
            raise StudyError.at(where, None, "is a workload (.npz), not a study",
                                "give satasim sweep a study file (docs/studies.md), whose workload: names it") from None
        raise StudyError.at(where, None, f"not a readable YAML text file ({type(error).__name__})",
                            "save it as UTF-8 YAML") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark else None
        text = path.read_text(encoding="utf-8", errors="replace")
        raise StudyError.at(where, line, f"not valid YAML ({getattr(error, 'problem', error)})",
                            yaml_syntax_fix(text, error, "fix the syntax")) from None
    if not isinstance(raw, dict):
        raise StudyError.at(where, None, "must be a mapping of fields",
                            "write 'name:', 'arch:', 'workload:', 'vary:' and 'metrics:' lines (a study's format)")
    return raw


def _varied_archs(where: str, base: Path, raw: dict, mode: str) -> dict[str, Path]:
    """``vary.arch``: architecture files (relative to the study file) as one axis; value as written -> file."""
    vary = raw.get("vary")
    if not isinstance(vary, dict) or "arch" not in vary:
        return {}
    if mode != "engine":
        raise _fail(where, "vary.arch", "only an engine study varies the architecture", "use mode: engine")
    values = vary["arch"]
    if not isinstance(values, list) or not values:
        raise _fail(where, "vary.arch", "must be a list of architecture files", "e.g. [../archs/atsn16x16.yaml]")
    files: dict[str, Path] = {}
    for value in values:
        target = _resolve_file(where, base, {"vary.arch": value}, "vary.arch")
        same = next((written for written, other in files.items() if other.resolve() == target.resolve()), None)
        if same is not None:
            problem = (f"value {shown(value)} is given twice" if same == str(value)
                       else f"{shown(value)} and {shown(same)} name the same file")
            raise _fail(where, "vary.arch", problem, "list each architecture once")
        copy = next((written for written, other in files.items() if _same_design(other, target)), None)
        if copy is not None:  # one point twice under one key, with the same numbers
            raise _fail(where, "vary.arch", f"{shown(value)} and {shown(copy)} are files of the same contents and "
                        "technology table: every point would repeat the same numbers", "list each architecture once")
        files[str(value)] = target
    return files


def _same_design(one: Path, other: Path) -> bool:
    """Two architecture files of the same bytes whose technology tables are one (a shipped table, or user tables
    of the same contents): the same design, whatever the files' names."""
    try:
        if _file_digest(one) != _file_digest(other):
            return False
    except OSError:
        return False  # the architecture checks say why it cannot be read
    tables = [_technology_as_named(path, []) for path in (one, other)]
    if not all(table and all(os.path.isfile(found) for found in table) for table in tables):
        return False  # a table that cannot be found: the architecture checks say so, not "the same design"
    return _user_table_digest(one, [], {}) == _user_table_digest(other, [], {})


def _resolve_file(where: str, base: Path, raw: dict, key: str) -> Path:
    """The existing file named by field ``key``, relative to the study file's folder ``base`` (or ``~``, the home)."""
    value = raw[key]
    if not isinstance(value, str) or not value:
        raise _fail(where, key, "must be a path", "give a path relative to the study file")
    given = Path(value).expanduser()  # ~/x.yaml: no shell expands it in a YAML file (technology: expands it too)
    target = real_path(base / given) if not given.is_absolute() else given
    if is_link_loop(target):
        raise _fail(where, key, f"{shown(value)} is a loop of symbolic links", "point it at a real file")
    is_file = os.path.isfile(target)  # os.path: False on any OSError (Path.is_file raised on a name too long)
    if not is_file and key in ("arch", "vary.arch"):
        from satasim_atsn.hw.arch import shipped_arch

        shipped = shipped_arch(value)  # a shipped architecture's name, as run and compare take it
        if shipped is not None:
            return shipped
    if os.path.isdir(target):
        raise _fail(where, key, f"{shown(value)} is a folder, not a file", "name a file in it")
    if not is_file:
        hint = ""
        if key in ("arch", "vary.arch"):
            from satasim_atsn.hw.arch import available_archs

            close = closest(value, available_archs())  # a shipped name mistyped, as run says of it
            hint = (f" (did you mean the shipped {shown(close)}?)" if close is not None and "/" not in value else
                    " (or give a shipped architecture's name, e.g. atsn16x16)")
        raise _fail(where, key, f"{shown(value)} does not exist (looked at {target})", "fix the path" + hint)
    return target


def _unknown_field(fname: str, known: dict[str, Any], mode: str) -> tuple[str, str]:
    """(problem, fix) for a field no design of the study has: a tech.<entry> is matched against the table's entries
    alone (listing architecture fields for it did not help)."""
    what = "no such field for a functional study" if mode == "functional" else "no such architecture field"
    if fname.startswith("tech.") and mode != "functional":
        entries = [k for k in known if k.startswith("tech.")]
        close = closest(fname, entries)
        return ("no such entry in the design's technology table",
                f"did you mean {shown(close)}?" if close else "use an entry under 'entries:' of the technology table "
                "(docs/energy.md lists them)")
    return what, suggest(fname, known)


def _study_axes(where: str, vary: Any, known: dict[str, Any], mode: str) -> tuple[list[Axis], set[str]]:
    """The ``vary`` section as axes (a zipped group is one axis), and the set of varied fields."""
    if not isinstance(vary, dict) or not vary:
        raise _fail(where, "vary", "must be a non-empty mapping of field -> values", _MISSING_FIX["vary"])
    axes: list[Axis] = []
    seen: set[str] = set()

    def check_field(fname: str, key: str) -> None:
        if fname in seen:
            raise _fail(where, key, f"field {shown(fname)} is varied twice", "vary each field once")
        if fname not in known:
            raise _fail(where, key, *_unknown_field(fname, known, mode))
        seen.add(fname)

    for fname, value in vary.items():
        fname = str(fname)
        if fname == "zip":
            groups = value if isinstance(value, list) else [value]
            if not groups:
                raise _fail(where, "vary.zip", "is empty: it varies nothing", "give it fields to vary together, or "
                            "remove it")
            for g_index, group in enumerate(groups):
                gkey = f"vary.zip[{g_index}]"
                if not isinstance(group, dict) or len(group) < 1:
                    raise _fail(where, gkey, "must be a mapping of field -> values", "e.g. {array.rows: [8, 16], "
                                "array.cols: [8, 16]}")
                columns = []
                for gname, gvalue in group.items():
                    check_field(str(gname), f"{gkey}.{gname}")
                    columns.append(_axis_values(gvalue, where, f"{gkey}.{gname}"))
                lengths = {len(c) for c in columns}
                if len(lengths) != 1:
                    raise _fail(where, gkey, f"zipped fields have different lengths {sorted(lengths)}",
                                "give every zipped field the same number of values")
                if [str(g) for g in group] == ["name"]:
                    _refuse_name_axis(where, f"{gkey}.name")
                axes.append(Axis(tuple(str(g) for g in group), [tuple(v) for v in zip(*columns, strict=False)]))
                _refuse_duplicates(where, gkey, axes[-1], any(isinstance(v, dict) for v in group.values()))
                axes[-1] = _numbers_as_numbers(axes[-1])
            continue
        if fname not in known and isinstance(value, dict) and any(f"{fname}.{k}" in known for k in value):
            inner = next(str(k) for k in value if f"{fname}.{k}" in known)
            raise _fail(where, f"vary.{fname}", "is a section, and vary takes one field per key, dotted",
                        f"write vary: {{{fname}.{inner}: [...]}}")
        check_field(fname, f"vary.{fname}")
        if fname == "name":
            _refuse_name_axis(where, "vary.name")
        axes.append(Axis((fname,), [(v,) for v in _axis_values(value, where, f"vary.{fname}")]))
        _refuse_duplicates(where, f"vary.{fname}", axes[-1], isinstance(value, dict))
        axes[-1] = _numbers_as_numbers(axes[-1])
    return axes, seen


def _refuse_name_axis(where: str, key: str) -> None:
    """Refuse an axis of design names alone: a name labels results and changes no hardware, so its points would
    be one design run again under other labels (zipped with a hardware field, it labels that field's points)."""
    raise _fail(where, key, "a design's name changes no hardware: every point would run the same design",
                "vary a hardware field (zip name with it to label its points), or give each design its own file and "
                "vary arch: [a.yaml, b.yaml]")


def _numbers_as_numbers(axis: Axis) -> Axis:
    """Numeric text of a numeric field (YAML 1.1 reads 250e6 as text) as the number it spells, so that points.csv,
    the report and the plots label it as they label 250.0e+6 (the point's key already read it so); other values
    as written."""
    values = [tuple(key_value(f, v) if isinstance(v, str) else v for f, v in zip(axis.fields, row, strict=True))
              for row in axis.values]
    return Axis(axis.fields, values)


def _value_identity(fname: str, value: Any) -> tuple[str, Any]:
    """What makes two values of field ``fname`` the same point: equal numbers (1e8 and 1.0e+8, 1 and 1.0)
    are one value, text is compared as written, booleans are not numbers."""
    if isinstance(value, bool):
        return ("bool", value)
    value = key_value(fname, value)
    return ("number", value) if isinstance(value, (int, float)) else ("text", value)


def _refuse_duplicates(where: str, key: str, axis: Axis, ranged: bool) -> None:
    """Each value of an axis once (a zipped group: each combination once): a repeated value would be the
    same point twice, under one key."""
    labelled = "name" in axis.fields and len(axis.fields) > 1  # a zipped name labels its points' hardware
    hardware = [i for i, f in enumerate(axis.fields) if not (labelled and f == "name")]
    first: dict[tuple, tuple] = {}
    for values in axis.values:
        identity = tuple(_value_identity(axis.fields[i], values[i]) for i in hardware)
        if identity not in first:
            first[identity] = values
            continue
        if labelled and first[identity] != values:
            label = axis.fields.index("name")
            raise _fail(where, key, f"names {shown(first[identity][label])} and {shown(values[label])} label the "
                        "same hardware (a name changes none): the one design would run twice",
                        "give each name its own hardware values, or drop one")
        one, other = (shown(v if len(v) > 1 else v[0]) for v in (first[identity], values))
        problem = f"value {other} is given twice" if one == other else f"values {one} and {other} are the same"
        fix = "use a coarser step (range values keep 12 significant digits)" if ranged else "list each value once"
        raise _fail(where, key, problem, fix)
    if labelled:  # two hardware points under one label: points.csv and the plots could not tell them apart
        label = axis.fields.index("name")
        names = [values[label] for values in axis.values]
        twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
        if twice is not None:
            raise _fail(where, key, f"name {shown(twice)} labels two different points", "give each point its own name")


def _table_identity(value: Any, arch_paths: list[Path]) -> tuple | None:
    """What a ``technology`` value reads for each of the study's architecture files: (resolved file, its digest),
    so a name and a path of one table, or two copies of it, compare equal (None if a file cannot be read: the
    value check says why)."""
    from satasim_atsn.hw.tech import resolve_tech_path

    found = []
    for arch_path in arch_paths:
        try:
            path = real_path(resolve_tech_path(str(value), arch_path.parent))
            found.append(_file_digest(path))
        except (SatasimError, OSError):
            return None
    return tuple(found)


def _other_values(axis: Axis, column: int, values: tuple) -> tuple:
    """A zipped point's values but the one in ``column``, as point identities: two tables (or a DRAM part and its
    other name) are one point twice only beside equal other values."""
    return tuple(_value_identity(f, v) for i, (f, v) in enumerate(zip(axis.fields, values, strict=True)) if i != column)


def _refuse_same_tables(where: str, study: Study) -> None:
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
            rest = _other_values(axis, column, values)
            if (table, rest) in seen:
                raise _fail(where, key, f"{shown(seen[table, rest])} and {shown(values[column])} name the same "
                            "technology table (the same file, or files of the same contents): every point would "
                            "repeat the same numbers", "list each table once")
            seen[table, rest] = values[column]


def _refuse_dram_aliases(where: str, study: Study) -> None:
    """A DRAM part and another name of it (hw/arch.py DRAM_PART_ALIASES: dram_commodity is dram_ddr4 wherever the
    table has no entry of its own) on one axis would run one point twice under two names."""
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
            tables = [set_tech if set_tech is not None else _arch_technology(p) for p in arch_paths]
            if "technology" in axis.fields:
                tables = [values[axis.fields.index("technology")]] * len(arch_paths)
            try:
                aliased = all(not load_tech(str(t), base_dir=p.parent).has(f"{part}_energy_pJ_per_bit")
                              for t, p in zip(tables, arch_paths, strict=True) if t is not None)
            except SatasimError:
                continue  # an unreadable table: the value check says why
            if not aliased:
                continue
            seen[DRAM_PART_ALIASES[part], _other_values(axis, column, values)] = part
        for values in axis.values:
            alias = seen.get((values[column], _other_values(axis, column, values)))
            if alias is not None:
                key = "vary." + ("zip" if len(axis.fields) > 1 else field_name)
                raise _fail(where, key, f"{shown(alias)} is another name of "
                            f"{shown(values[column])} (the table has no entry of its own for it): every point would "
                            "run twice", f"list {values[column]} once")


def _study_metrics(where: str, metrics: Any, mode: str) -> list:
    """The ``metrics`` list: known for the mode, each once."""
    allowed = FUNCTIONAL_METRICS if mode == "functional" else ENGINE_METRICS_ALL
    if not isinstance(metrics, list) or not metrics:
        raise _fail(where, "metrics", "must be a non-empty list", f"e.g. [{', '.join(allowed[:3])}]")
    for metric in metrics:
        if metric not in allowed:
            article = "an" if mode[:1] in "aeiou" else "a"
            raise _fail(where, f"metrics: {metric}", f"unknown metric for {article} {mode} study",
                        suggest(str(metric), allowed))
    twice = next((m for i, m in enumerate(metrics) if m in metrics[:i]), None)
    if twice is not None:  # named: in a long list the user should not have to hunt for it
        raise _fail(where, "metrics", f"lists {twice} twice", f"list each metric once (drop the second {twice})")
    return metrics


def _study_plots(where: str, plots: Any, mode: str, metrics: list, seen: set[str]) -> list:
    """The ``plots`` list (default: the mode's), each {x, y[, color]} of collected metrics or varied fields."""
    if plots is None:
        plots = _default_plots(mode, metrics)
    if not isinstance(plots, list):
        raise _fail(where, "plots", "must be a list of {x: metric, y: metric}", "e.g. [{x: area_mm2, y: fps}]")
    for p_index, plot in enumerate(plots):
        unknown = sorted(str(k) for k in set(plot) - {"x", "y", "color"}) if isinstance(plot, dict) else []
        if unknown:  # `colour:` was refused with the whole form alone, no word on which key
            raise _fail(where, f"plots[{p_index}].{unknown[0]}", "unknown key",
                        suggest(unknown[0], ["x", "y", "color"]))
        if not isinstance(plot, dict) or not {"x", "y"} <= set(plot):
            raise _fail(where, f"plots[{p_index}]", "must be {x: metric, y: metric[, color: field]}",
                        "e.g. {x: area_mm2, y: energy_per_image_uJ}")
        for axis_key in ("x", "y", "color"):
            if axis_key in plot and not isinstance(plot[axis_key], str):
                raise _fail(where, f"plots[{p_index}].{axis_key}", f"{shown(plot[axis_key])} is not a name",
                            "give a metric (or, for color, a varied field) by name")
        for axis_key in ("x", "y"):
            if plot[axis_key] not in metrics:
                raise _fail(where, f"plots[{p_index}].{axis_key}",
                            f"{shown(plot[axis_key])} is not a collected metric",
                            suggest(str(plot[axis_key]), metrics))
        if "color" in plot and plot["color"] not in seen and plot["color"] not in metrics:
            raise _fail(where, f"plots[{p_index}].color",
                        f"{shown(plot['color'])} is neither a varied field nor a metric",
                        suggest(str(plot["color"]), list(seen) + list(metrics)))
        _refuse_pointless_plot(where, plots, p_index, metrics)
    return plots


def _refuse_pointless_plot(where: str, plots: list, p_index: int, metrics: list) -> None:
    """Refuse a plot of a metric against itself (a diagonal line, every point on its Pareto front) or one that
    repeats an earlier plot (the report would show the same figure twice)."""
    plot = plots[p_index]
    if plot["x"] == plot["y"]:
        others = [m for m in metrics if m != plot["x"]]
        fix = f"give y another metric (e.g. {others[0]})" if others else "collect a second metric to plot against it"
        raise _fail(where, f"plots[{p_index}]", f"x and y are both {shown(plot['x'])}: a metric against itself is a "
                    "diagonal line", fix)
    for earlier, other in enumerate(plots[:p_index]):
        if all(other.get(key) == plot.get(key) for key in ("x", "y", "color")):
            raise _fail(where, f"plots[{p_index}]", f"repeats plots[{earlier}] (the report would show it twice)",
                        "delete one of them, or give it another color")


def _check_workload(where: str, study: Study) -> None:
    """The workload must be valid and hold the images the study asks for; a study that gives no ``images``
    runs at most DEFAULT_STUDY_IMAGES, fewer when the workload holds fewer from ``start`` (as `run` runs them all)."""
    from satasim_atsn.workload.format import read_workload

    try:
        workload = read_workload(study.workload)
    except SatasimError as error:
        raise StudyError(f"{where}: workload: {error}") from None
    if study.start >= workload.num_images:
        raise _fail(where, "start", f"{study.start} is past the workload's last image ({workload.num_images} images)",
                    f"use start < {workload.num_images}")
    if "images" not in study.raw:
        study.images = min(DEFAULT_STUDY_IMAGES, workload.num_images - study.start)
    if study.start + study.images > workload.num_images:
        raise _fail(where, "images", f"start {study.start} + images {study.images} exceeds the workload's "
                    f"{workload.num_images} images", f"use images <= {max(workload.num_images - study.start, 0)}")
    if study.mode == "functional" and workload.is_statistical:
        raise _fail(where, "workload", "a functional study needs a trained workload (this one is statistical)",
                    "use mode: engine, or a trained workload")
    if study.mode == "functional":
        _refuse_hardware_rule_metrics(where, study)
    labelled = [m for m in study.metrics if m in ("accuracy", "accuracy_hardware", "accuracy_hw_rule")]
    if labelled and workload.is_statistical:
        raise _fail(where, f"metrics: {labelled[0]}", "a statistical workload has no labels, so no accuracy (the "
                    "column would stay empty)", "drop it, or sweep a trained workload")
    if labelled and workload.labels() is None:  # valid: `y` is optional (docs/workload-format.md)
        raise _fail(where, f"metrics: {labelled[0]}", f"{Path(study.raw['workload']).name} has no labels (no y "
                    "array), so no accuracy (the column would stay empty)",
                    "drop it, or sweep a workload whose inputs carry their labels")
    if study.mode == "engine" and workload.is_statistical:  # each architecture's exit rule needs its histogram
        from satasim_atsn.hw.arch import read_arch
        from satasim_atsn.traces.statistical import require_histogram

        for arch_path in (list(study.arch_files.values()) or [study.arch]):
            try:
                policy = read_arch(arch_path, study.fixed).policy_name
            except SatasimError:
                continue  # _check_values names what is wrong with the architecture
            try:
                require_histogram(workload, policy)
            except SatasimError as error:
                raise _fail(where, "workload", f"{Path(study.raw['workload']).name} cannot run on "
                            f"{arch_path.name}: {str(error).split(': ', 2)[-1].split('; ')[0]}",
                            f"rebuild it with --exit-mean {policy}=MEAN, or study another architecture") from None


def _check_values(where: str, study: Study) -> None:
    """Every varied value must be one the architecture accepts (each axis value on the base, with `set`).

    With ``vary.arch`` at least one architecture must accept the fixed overrides (the others' points are skipped),
    and each other value must be accepted by at least one of those (combinations an architecture refuses become
    skipped points)."""
    from satasim_atsn.hw.arch import _schema_at, apply_overrides, check_value

    bases, set_refusal, repairable = _set_bases(where, study) if study.mode == "engine" else ([], None, {})
    for axis in study.axes:
        if axis.fields == ("arch",):
            continue
        key = "vary." + ("zip" if len(axis.fields) > 1 else axis.fields[0])
        for values in axis.values:
            overrides = [f"{f}={_yaml_scalar(v, f)}" for f, v in zip(axis.fields, values, strict=True)]
            refused = None
            try:
                if not bases:
                    for fname, value in zip(axis.fields, values, strict=True):
                        check_value("", fname, value, _schema_at(fname.split(".")))
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
                raise _fail(where, key, f"value {shown(values if len(values) > 1 else values[0])} is refused "
                            f"({refused})", "vary over values the architecture accepts") from None
    _refuse_unused_tech_entries(where, study, bases)


def _some_point_builds(study: Study, bases: list[tuple[Path, dict]]) -> bool:
    """Does any point's combination of values make a base (with the study's set) a design that builds? Stops at the
    first that does; a study whose every point is refused tries them all (a few ms each)."""
    from satasim_atsn.hw.arch import apply_overrides

    for point in study.points():
        values = [f"{f}={_yaml_scalar(v, f)}" for f, v in point.items() if f != "arch"]
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
        raise _fail(where, f"metrics: {asked[0]}", f"exit unit kind {', '.join(sorted(kinds))} decides by the float "
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
            other = next((v for v in values[1:] if _number_or_text(v) != _number_or_text(values[0])), None)
            if other is None:
                continue  # one value in this axis: it moves no point
            if _tech_entry_moves(where, fname, values[0], other, bases) is not False:
                return  # it changes the design (or a value check above names what is wrong)
            inert.append(fname)
    if not inert:
        return
    names = ", ".join(path.name for path, _ in bases)
    if len(inert) == 1:
        raise _fail(where, f"vary.{inert[0]}", f"changes nothing in {names}: the design does not use this "
                    "technology entry, so every point would repeat the same numbers",
                    "vary an entry the design reads (docs/energy.md: which component reads which entry)")
    raise _fail(where, "vary", f"{', '.join(inert)} change nothing in {names}: the design uses none of these "
                "technology entries, so every point would repeat the same numbers",
                "vary an entry the design reads (docs/energy.md: which component reads which entry)")


def _number_or_text(value: Any) -> Any:
    """A value compared as the number it spells (1e8 as text too), else as text."""
    number = as_number(value)
    return str(value) if number is None else number


def _tech_entry_moves(where: str, fname: str, first: Any, other: Any, bases: list[tuple[Path, dict]]) -> bool | None:
    """Does tech.<entry> ``fname`` at ``first`` and at ``other`` give any base design other technology figures?
    None when a value is refused (the value checks name it)."""
    from satasim_atsn.hw.arch import apply_overrides, build_arch
    from satasim_atsn.hw.energy import technology_fingerprint

    def figures(path: Path, base: dict, value: Any) -> Any:
        arch = apply_overrides(base, [f"{fname}={_yaml_scalar(value, fname)}"])
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
    from satasim_atsn.hw.arch import _read_yaml, apply_overrides

    bases: list[tuple[Path, dict]] = []
    refusal = None
    set_refusals: list[StudyError] = []
    repairable: dict[Path, str] = {}
    for arch_path in (list(study.arch_files.values()) or [study.arch]):
        try:
            raw = _read_yaml(arch_path)
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
    from satasim_atsn.hw.arch import apply_overrides

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


def _default_plots(mode: str, metrics: list[str]) -> list[dict]:
    """Trade-off plots for the metrics collected."""
    if mode == "functional":
        return [{"x": "avg_timestep", "y": "accuracy"}] if {"avg_timestep", "accuracy"} <= set(metrics) else []
    pairs = [("area_mm2", "energy_per_image_uJ"), ("energy_per_image_uJ", "fps"), ("area_mm2", "fps")]
    return [{"x": x, "y": y} for x, y in pairs if x in metrics and y in metrics]


def functional_set_params(where: str, fixed: list[str]) -> dict[str, Any]:
    """A functional study's ``set`` entries as exit-unit parameters: each value parsed as YAML and checked against
    the architecture schema (the functional rules read no architecture file, so nothing else would check them)."""
    from satasim_atsn.hw.arch import _schema_at, check_value, parse_override

    params: dict[str, Any] = {}
    for item in fixed:
        fname = item.split("=", 1)[0].strip()
        try:
            path, value = parse_override(item)
            params[".".join(path)] = check_value("", fname, value, _schema_at(path))
        except SatasimError as error:
            raise _fail(where, f"set.{fname}", f"value {shown(item.split('=', 1)[1].strip())} is refused ({error})",
                        "fix or remove this set entry") from None
    return params


def _foreign_exit_field(params: dict[str, Any], varied: Iterable[str] | None) -> tuple[str, str] | None:
    """(field, why) for the first exit-unit field among ``varied`` (default: all of ``params``) that the kind in
    ``params`` does not have; None when they all fit."""
    from satasim_atsn.hw.exit_units import EXIT_UNITS

    kind = params.get("exit_unit.kind", "at")
    if kind not in EXIT_UNITS:
        return None  # policies_for names the unknown kind
    for key in params if varied is None else varied:
        name = key.removeprefix("exit_unit.")
        if key.startswith("exit_unit.") and name != "kind" and name not in EXIT_UNITS[kind].fields:
            owner = next((k for k, unit in EXIT_UNITS.items() if name in unit.fields), None)
            return key, (f"only meaningful for exit unit kind {shown(owner)}, not {shown(kind)}" if owner
                         else f"not a field of exit unit kind {shown(kind)}")
    return None


def functional_refusal(params: dict[str, Any], varied: Iterable[str] | None = None) -> str | None:
    """Why a functional point's exit-unit fields (the ``varied`` ones; default all) do not fit its kind (None: they
    do), as an engine study's architecture check says it: a field of another kind changes nothing, so the points
    that vary it would repeat one another."""
    foreign = _foreign_exit_field(params, varied)
    if foreign is None:
        return None
    key, why = foreign
    owner = next((k for k, unit in _exit_units().items() if key.removeprefix("exit_unit.") in unit.fields), None)
    fix = (f"; the points of this kind are skipped (vary {key} in a study of exit_unit.kind {shown(owner)}, one study "
           "per kind)") if owner else ""
    return f"{key}: {why}{fix}"


def _exit_units() -> dict:
    """hw.exit_units.EXIT_UNITS (imported late, as the rest of this module's hardware lookups)."""
    from satasim_atsn.hw.exit_units import EXIT_UNITS

    return EXIT_UNITS


def point_params(study: Study, point: dict[str, Any]) -> dict[str, Any]:
    """The exit-unit parameters of a functional study's point: the study's ``set`` entries, then the point's values."""
    return {**functional_set_params(str(study.path), study.fixed), **point}


def _refuse_two_dram_spellings(where: str, fixed_names: list[str], varied) -> None:
    """A DRAM rate in cycles and in time units (hw/arch.py DRAM_UNITS) is one rate: a study that varies both, or
    sets one and varies the other, would give every point both (refused per point); refuse it up front.
    ``fixed_names``: the fields set: gives a value (a null only removes the file's spelling)."""
    from satasim_atsn.hw.arch import DRAM_UNITS

    for per_cycle, timed in DRAM_UNITS.items():
        cycles, time = f"dram.{per_cycle}", f"dram.{timed}"
        if cycles in varied and time in varied:
            raise _fail(where, f"vary.{time}", f"and vary.{cycles} are one rate in two units (every point would "
                        "give both)", "vary one of them")
        for name, other in ((cycles, time), (time, cycles)):
            if name in fixed_names and other in varied:
                raise _fail(where, f"set.{name}", f"is also varied as {other} (one rate in two units)",
                            "drop it from set, or vary the spelling set: gives")


def point_overrides(study: Study, point: dict[str, Any]) -> list[str]:
    """The --set overrides of a point: the study's fixed ones, then the point's values."""
    out = list(study.fixed)
    for fname, value in point.items():
        if fname == "arch" and study.arch_files:
            continue
        out.append(f"{fname}={_yaml_scalar(value, fname)}")
    return out


def _yaml_scalar(value: Any, fname: str = "") -> str:
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
    from satasim_atsn.hw.arch import _schema_at

    if fname.startswith("tech."):
        return False
    try:
        spec = _schema_at(fname.split("."))
    except SatasimError:
        return False
    return isinstance(spec, tuple) and (spec[0] == "str" or isinstance(spec[0], (tuple, list)))


def _reads_back_as(text: str) -> Any:
    """What YAML reads ``text`` as, or None when it cannot read it."""
    try:
        return yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        return None
