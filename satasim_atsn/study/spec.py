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
the field and the fix (with a "did you mean" suggestion for misspelt names). This module parses the file and
expands its points; the parsed study is :mod:`study.spec_types`, its fields and values :mod:`study.spec_fields`,
its designs' tables and digests :mod:`study.spec_designs`, the checks of the whole study :mod:`study.spec_checks`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from satasim_atsn.errors import SatasimError, StudyError, closest, file_count, shown
from satasim_atsn.fileio import (
    is_link_loop,
    load_yaml,
    real_path,
    starts_as_zip,
    yaml_syntax_fix,
)
from satasim_atsn.hw.energy import ENERGY_GROUPS
from satasim_atsn.hw.tech import TECH_DIR
from satasim_atsn.study.spec_checks import (
    check_values,
    check_workload,
    refuse_dram_aliases,
    refuse_same_tables,
    refuse_two_dram_spellings,
)
from satasim_atsn.study.spec_designs import same_design, technology_as_named
from satasim_atsn.study.spec_fields import (
    DEFAULT_STUDY_IMAGES,
    MISSING_FIX,
    arch_field_paths,
    axis_values,
    fail,
    key_value,
    suggest,
    value_identity,
    yaml_scalar,
)
from satasim_atsn.study.spec_types import Axis, Study
from satasim_atsn.workload.network_file import YAML_FILE_KINDS, yaml_file_kind

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
            shown_as.update(technology_as_named(Path(arch_path), overrides))
        shown_as[str(PACKAGE_PARENT) + os.sep] = ""  # a shipped file: satasim_atsn/data/...
        # one pass, a longer path first (it may hold a shorter one); a replacement is never replaced again (a
        # workload the study names by its absolute path in the package's folder stayed that path)
        paths = re.compile("|".join(re.escape(path) for path in sorted(shown_as, key=len, reverse=True) if path))
        text = paths.sub(lambda match: shown_as[match.group(0)], str(error))
        return in_study_terms(text, varied)
    return None


_SET_ITEM = r"--set (?:[\w.]+=[^\s;,()]+|\w+(?:\.\w+)+)"  # a field=value, or a field path
_SET_RUN = re.compile(f"{_SET_ITEM}(?: {_SET_ITEM})*")


_UNSET = re.compile(r"remove it \(or --set ([\w.]+)=null\)")
_NULLED = re.compile(r", ([\w.]+): null")  # a fix's list of fields to clear ("..., exit_unit.cl_init: null")


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

    text = _SET_RUN.sub(said, _UNSET.sub(unset, text))
    # a varied field cannot be cleared (set refuses a varied field, a vary list takes no null): the fix's list of
    # fields to set to null leaves it out and says the design takes none of its values (h2, session 47)
    nulled = [name for name in _NULLED.findall(text) if name in varied]
    if nulled:
        text = _NULLED.sub(lambda m: "" if m.group(1) in varied else m.group(0), text)
        text += (f" (that design takes no {', '.join(nulled)}, which the study varies: vary "
                 f"{'it' if len(nulled) == 1 else 'them'} in a study of the designs that take "
                 f"{'it' if len(nulled) == 1 else 'them'})")
    return text


def _study_archs(where: str, path: Path, raw: dict, mode: str) -> tuple[Path | None, dict[str, Path]]:
    """The study's base architecture file and its vary.arch files (value as written -> file)."""
    if mode == "functional" and "arch" in raw:  # its fields would be silently ignored, yet named in the report
        raise fail(where, "arch", "a functional study reads no architecture file: the exit rules take their fields "
                    "from set: and vary: (defaults: the AT unit's)",
                    "drop arch, and give the exit unit's fields in set:, e.g. set: [exit_unit.cl_init=0.99]")
    _refuse_zipped_arch(where, raw.get("vary"))
    arch_files = _varied_archs(where, path.parent, raw, mode)
    if mode == "engine" and "arch" not in raw and not arch_files:
        raise fail(where, "arch", "missing", "an engine study needs a base architecture (or vary.arch)")
    arch = _resolve_file(where, path.parent, raw, "arch") if "arch" in raw else None
    if arch is not None and arch_files and arch.resolve() not in {f.resolve() for f in arch_files.values()}:
        # the points run vary.arch's designs only, yet the report named arch: as the base
        raise fail(where, "arch", f"{shown(raw['arch'])} is not one of vary.arch's designs, the study's only "
                    "architectures: it would run nowhere", "list it in vary.arch, or drop arch:")
    return (arch if arch is not None or not arch_files else next(iter(arch_files.values()))), arch_files


def _refuse_zipped_arch(where: str, vary: Any) -> None:
    """`arch` inside a zip group was refused as 'no such architecture field', or as a missing `arch:`."""
    groups = vary.get("zip") if isinstance(vary, dict) else None
    for g_index, group in enumerate(groups if isinstance(groups, list) else [groups]):
        if isinstance(group, dict) and "arch" in group:
            raise fail(where, f"vary.zip[{g_index}].arch", "architectures are not zipped with other fields: "
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
            raise fail(where, str(key), "unknown field", suggest(str(key), TOP_KEYS))
    for key in ("name", "workload", "vary", "metrics"):
        if key not in raw:
            raise fail(where, key, "missing", MISSING_FIX[key])
    mode = raw.get("mode", "engine")
    if mode not in MODES:
        raise fail(where, "mode", f"unknown mode {shown(mode)}", f"use one of {', '.join(MODES)}")
    arch, arch_files = _study_archs(where, path, raw, mode)
    workload = _resolve_file(where, path.parent, raw, "workload")
    images = raw.get("images", DEFAULT_STUDY_IMAGES)  # without it: at most that many (check_workload)
    start = raw.get("start", 0)
    for key, value, low in (("images", images, 1), ("start", start, 0)):
        count = file_count(value)  # 2.0 and '1e3' are whole numbers, as in architecture files
        if count is None or count < low:
            raise fail(where, key, f"must be an integer >= {low}, got {shown(value)}", "fix the value")
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
        raise fail(where, f"set.{twice}", "is given twice, and the last value would win", "give each field once")
    for item in fixed:
        fname = item.split("=", 1)[0].strip()
        if fname not in known:
            raise fail(where, f"set: {fname}", *_unknown_field(fname, known, mode))
    axes, seen = _study_axes(where, raw["vary"], known, mode)
    for item in fixed:
        fname = item.split("=", 1)[0].strip()
        if fname in seen:
            raise fail(where, f"set.{fname}", "is also varied, and the varied values would win",
                        "drop it from set, or from vary")
    refuse_two_dram_spellings(where, [item.split("=", 1)[0].strip() for item in fixed
                                       if item.partition("=")[2].strip() not in ("null", "~", "")], seen)
    if mode == "functional":
        params = functional_set_params(where, fixed)
        if "exit_unit.kind" not in seen:  # one kind for the whole study: a field of another kind is a mistake
            foreign = _foreign_exit_field({**params, **{f: None for f in seen}}, None)
            if foreign is not None:
                raise fail(where, ("vary." if foreign[0] in seen else "set.") + foreign[0], foreign[1],
                            "drop it, or set (or vary) exit_unit.kind to the kind it belongs to")
    metrics = _study_metrics(where, raw["metrics"], mode)
    plots = _study_plots(where, raw.get("plots"), mode, metrics, seen)
    name = raw["name"]
    if not isinstance(name, str) or not name:
        raise fail(where, "name", "must be a non-empty string", "name the study")
    _refuse_text_that_breaks_the_report(where, name, raw.get("description"))
    fixed_entries = [f"{k.strip()}={v.strip()}" for k, _, v in (entry.partition("=") for entry in fixed)]
    study = Study(path=path.resolve(), name=name, description=str(raw.get("description") or ""), mode=mode, arch=arch,
                  workload=workload, images=images, start=start, fixed=fixed_entries, axes=axes,
                  metrics=list(metrics), plots=plots, raw=raw, arch_files=arch_files)
    count = math.prod(len(axis.values) for axis in axes)
    if count > 10000:
        raise fail(where, "vary", f"{count} points", "split the study; 10000 points at most")
    check_workload(where, study)
    check_values(where, study)
    refuse_same_tables(where, study)
    refuse_dram_aliases(where, study)
    return study


def _study_set(where: str, raw: dict) -> list[str]:
    """The study's ``set:`` entries, each a FIELD=VALUE string with a field name."""
    fixed = raw.get("set", []) or []
    if not isinstance(fixed, list) or not all(isinstance(s, str) for s in fixed):
        raise fail(where, "set", "must be a list of 'path.to.field=value' strings", "e.g. set: [accelerators=4]")
    valueless = next((i for i, item in enumerate(fixed) if "=" not in item), None)
    if valueless is not None:  # a list of strings, one without '=': 'must be a list of strings' said nothing of it
        raise fail(where, f"set[{valueless}]", f"{shown(fixed[valueless])} has no '=value'",
                   f"write FIELD=VALUE, e.g. set: [{fixed[valueless].strip() or 'accelerators'}=4]")
    nameless = next((i for i, item in enumerate(fixed) if not item.split("=", 1)[0].strip()), None)
    if nameless is not None:
        raise fail(where, f"set[{nameless}]", f"{shown(fixed[nameless])} has no field name before '='",
                    "write FIELD=VALUE, e.g. set: [accelerators=4]")
    return fixed


def _refuse_text_that_breaks_the_report(where: str, name: str, description: Any) -> None:
    """The name heads the report and the terminal's summary line, so it is one line of text; the description is
    text (a list or mapping was shown as its Python repr)."""
    if any((ord(ch) < 32 and ch != "\t") or ord(ch) == 127 for ch in name):
        raise fail(where, "name", f"must be one line of text, got {shown(name)}",
                    "remove the line breaks and control characters")
    if description is not None and not isinstance(description, (str, int, float)):
        raise fail(where, "description", f"must be text, got a {type(description).__name__} {shown(description)}",
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
        raise fail(where, "vary.arch", "only an engine study varies the architecture", "use mode: engine")
    values = vary["arch"]
    if not isinstance(values, list) or not values:
        raise fail(where, "vary.arch", "must be a list of architecture files", "e.g. [../archs/atsn16x16.yaml]")
    files: dict[str, Path] = {}
    for value in values:
        target = _resolve_file(where, base, {"vary.arch": value}, "vary.arch")
        same = next((written for written, other in files.items() if other.resolve() == target.resolve()), None)
        if same is not None:
            problem = (f"value {shown(value)} is given twice" if same == str(value)
                       else f"{shown(value)} and {shown(same)} name the same file")
            raise fail(where, "vary.arch", problem, "list each architecture once")
        copy = next((written for written, other in files.items() if same_design(other, target)), None)
        if copy is not None:  # one point twice under one key, with the same numbers
            raise fail(where, "vary.arch", f"{shown(value)} and {shown(copy)} are files of the same contents and "
                        "technology table: every point would repeat the same numbers", "list each architecture once")
        files[str(value)] = target
    return files


def _resolve_file(where: str, base: Path, raw: dict, key: str) -> Path:
    """The existing file named by field ``key``, relative to the study file's folder ``base`` (or ``~``, the home)."""
    value = raw[key]
    if not isinstance(value, str) or not value:
        raise fail(where, key, "must be a path", "give a path relative to the study file")
    given = Path(value).expanduser()  # ~/x.yaml: no shell expands it in a YAML file (technology: expands it too)
    target = real_path(base / given) if not given.is_absolute() else given
    if is_link_loop(target):
        raise fail(where, key, f"{shown(value)} is a loop of symbolic links", "point it at a real file")
    is_file = os.path.isfile(target)  # os.path: False on any OSError (Path.is_file raised on a name too long)
    if not is_file and key in ("arch", "vary.arch"):
        from satasim_atsn.hw.arch_files import shipped_arch

        shipped = shipped_arch(value)  # a shipped architecture's name, as run and compare take it
        if shipped is not None:
            return shipped
    if os.path.isdir(target):
        raise fail(where, key, f"{shown(value)} is a folder, not a file", "name a file in it")
    if not is_file:
        hint = ""
        if key in ("arch", "vary.arch"):
            from satasim_atsn.hw.arch_files import available_archs

            close = closest(value, available_archs())  # a shipped name mistyped, as run says of it
            hint = (f" (did you mean the shipped {shown(close)}?)" if close is not None and "/" not in value else
                    " (or give a shipped architecture's name, e.g. atsn16x16)")
        raise fail(where, key, f"{shown(value)} does not exist (looked at {target})", "fix the path" + hint)
    if key in ("arch", "vary.arch") and starts_as_zip(target):  # the command line's argument-order advice fits not
        raise fail(where, key, f"{shown(value)} is a workload (.npz), not an architecture YAML",
                   "give an architecture file (or a shipped name, e.g. atsn16x16) here, and the workload under "
                   "workload:")
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
        raise fail(where, "vary", "must be a non-empty mapping of field -> values", MISSING_FIX["vary"])
    axes: list[Axis] = []
    seen: set[str] = set()

    def check_field(fname: str, key: str) -> None:
        if fname in seen:
            raise fail(where, key, f"field {shown(fname)} is varied twice", "vary each field once")
        if fname not in known:
            raise fail(where, key, *_unknown_field(fname, known, mode))
        seen.add(fname)

    for fname, value in vary.items():
        fname = str(fname)
        if fname == "zip":
            groups = value if isinstance(value, list) else [value]
            if not groups:
                raise fail(where, "vary.zip", "is empty: it varies nothing", "give it fields to vary together, or "
                            "remove it")
            for g_index, group in enumerate(groups):
                gkey = f"vary.zip[{g_index}]"
                if not isinstance(group, dict) or len(group) < 1:
                    raise fail(where, gkey, "must be a mapping of field -> values", "e.g. {array.rows: [8, 16], "
                                "array.cols: [8, 16]}")
                columns = []
                for gname, gvalue in group.items():
                    check_field(str(gname), f"{gkey}.{gname}")
                    columns.append(axis_values(gvalue, where, f"{gkey}.{gname}"))
                lengths = {len(c) for c in columns}
                if len(lengths) != 1:
                    raise fail(where, gkey, f"zipped fields have different lengths {sorted(lengths)}",
                                "give every zipped field the same number of values")
                if [str(g) for g in group] == ["name"]:
                    _refuse_name_axis(where, f"{gkey}.name")
                axes.append(Axis(tuple(str(g) for g in group), [tuple(v) for v in zip(*columns, strict=False)]))
                _refuse_duplicates(where, gkey, axes[-1], any(isinstance(v, dict) for v in group.values()))
                axes[-1] = _numbers_as_numbers(axes[-1])
            continue
        if fname not in known and isinstance(value, dict) and any(f"{fname}.{k}" in known for k in value):
            inner = next(str(k) for k in value if f"{fname}.{k}" in known)
            raise fail(where, f"vary.{fname}", "is a section, and vary takes one field per key, dotted",
                        f"write vary: {{{fname}.{inner}: [...]}}")
        check_field(fname, f"vary.{fname}")
        if fname == "name":
            _refuse_name_axis(where, "vary.name")
        axes.append(Axis((fname,), [(v,) for v in axis_values(value, where, f"vary.{fname}")]))
        _refuse_duplicates(where, f"vary.{fname}", axes[-1], isinstance(value, dict))
        axes[-1] = _numbers_as_numbers(axes[-1])
    return axes, seen


def _refuse_name_axis(where: str, key: str) -> None:
    """Refuse an axis of design names alone: a name labels results and changes no hardware, so its points would
    be one design run again under other labels (zipped with a hardware field, it labels that field's points)."""
    raise fail(where, key, "a design's name changes no hardware: every point would run the same design",
                "vary a hardware field (zip name with it to label its points), or give each design its own file and "
                "vary arch: [a.yaml, b.yaml]")


def _numbers_as_numbers(axis: Axis) -> Axis:
    """Numeric text of a numeric field (YAML 1.1 reads 250e6 as text) as the number it spells, so that points.csv,
    the report and the plots label it as they label 250.0e+6 (the point's key already read it so); other values
    as written."""
    values = [tuple(key_value(f, v) if isinstance(v, str) else v for f, v in zip(axis.fields, row, strict=True))
              for row in axis.values]
    return Axis(axis.fields, values)


def _refuse_duplicates(where: str, key: str, axis: Axis, ranged: bool) -> None:
    """Each value of an axis once (a zipped group: each combination once): a repeated value would be the
    same point twice, under one key."""
    labelled = "name" in axis.fields and len(axis.fields) > 1  # a zipped name labels its points' hardware
    hardware = [i for i, f in enumerate(axis.fields) if not (labelled and f == "name")]
    first: dict[tuple, tuple] = {}
    for values in axis.values:
        identity = tuple(value_identity(axis.fields[i], values[i]) for i in hardware)
        if identity not in first:
            first[identity] = values
            continue
        if labelled and first[identity] != values:
            label = axis.fields.index("name")
            raise fail(where, key, f"names {shown(first[identity][label])} and {shown(values[label])} label the "
                        "same hardware (a name changes none): the one design would run twice",
                        "give each name its own hardware values, or drop one")
        one, other = (shown(v if len(v) > 1 else v[0]) for v in (first[identity], values))
        problem = f"value {other} is given twice" if one == other else f"values {one} and {other} are the same"
        fix = "use a coarser step (range values keep 12 significant digits)" if ranged else "list each value once"
        raise fail(where, key, problem, fix)
    if labelled:  # two hardware points under one label: points.csv and the plots could not tell them apart
        label = axis.fields.index("name")
        names = [values[label] for values in axis.values]
        twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
        if twice is not None:
            raise fail(where, key, f"name {shown(twice)} labels two different points", "give each point its own name")


def _study_metrics(where: str, metrics: Any, mode: str) -> list:
    """The ``metrics`` list: known for the mode, each once."""
    allowed = FUNCTIONAL_METRICS if mode == "functional" else ENGINE_METRICS_ALL
    if not isinstance(metrics, list) or not metrics:
        raise fail(where, "metrics", "must be a non-empty list", f"e.g. [{', '.join(allowed[:3])}]")
    for metric in metrics:
        if metric not in allowed:
            article = "an" if mode[:1] in "aeiou" else "a"
            raise fail(where, f"metrics: {metric}", f"unknown metric for {article} {mode} study",
                        suggest(str(metric), allowed))
    twice = next((m for i, m in enumerate(metrics) if m in metrics[:i]), None)
    if twice is not None:  # named: in a long list the user should not have to hunt for it
        raise fail(where, "metrics", f"lists {twice} twice", f"list each metric once (drop the second {twice})")
    return metrics


def _study_plots(where: str, plots: Any, mode: str, metrics: list, seen: set[str]) -> list:
    """The ``plots`` list (default: the mode's), each {x, y[, color]} of collected metrics or varied fields."""
    if plots is None:
        plots = _default_plots(mode, metrics)
    if not isinstance(plots, list):
        raise fail(where, "plots", "must be a list of {x: metric, y: metric}", "e.g. [{x: area_mm2, y: fps}]")
    for p_index, plot in enumerate(plots):
        unknown = sorted(str(k) for k in set(plot) - {"x", "y", "color"}) if isinstance(plot, dict) else []
        if unknown:  # `colour:` was refused with the whole form alone, no word on which key
            raise fail(where, f"plots[{p_index}].{unknown[0]}", "unknown key",
                        suggest(unknown[0], ["x", "y", "color"]))
        if not isinstance(plot, dict) or not {"x", "y"} <= set(plot):
            raise fail(where, f"plots[{p_index}]", "must be {x: metric, y: metric[, color: field]}",
                        "e.g. {x: area_mm2, y: energy_per_image_uJ}")
        for axis_key in ("x", "y", "color"):
            if axis_key in plot and not isinstance(plot[axis_key], str):
                raise fail(where, f"plots[{p_index}].{axis_key}", f"{shown(plot[axis_key])} is not a name",
                            "give a metric (or, for color, a varied field) by name")
        for axis_key in ("x", "y"):
            if plot[axis_key] not in metrics:
                raise fail(where, f"plots[{p_index}].{axis_key}",
                            f"{shown(plot[axis_key])} is not a collected metric",
                            suggest(str(plot[axis_key]), metrics))
        if "color" in plot and plot["color"] not in seen and plot["color"] not in metrics:
            raise fail(where, f"plots[{p_index}].color",
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
        raise fail(where, f"plots[{p_index}]", f"x and y are both {shown(plot['x'])}: a metric against itself is a "
                    "diagonal line", fix)
    for earlier, other in enumerate(plots[:p_index]):
        if all(other.get(key) == plot.get(key) for key in ("x", "y", "color")):
            raise fail(where, f"plots[{p_index}]", f"repeats plots[{earlier}] (the report would show it twice)",
                        "delete one of them, or give it another color")


def _default_plots(mode: str, metrics: list[str]) -> list[dict]:
    """Trade-off plots for the metrics collected."""
    if mode == "functional":
        return [{"x": "avg_timestep", "y": "accuracy"}] if {"avg_timestep", "accuracy"} <= set(metrics) else []
    pairs = [("area_mm2", "energy_per_image_uJ"), ("energy_per_image_uJ", "fps"), ("area_mm2", "fps")]
    return [{"x": x, "y": y} for x, y in pairs if x in metrics and y in metrics]


def functional_set_params(where: str, fixed: list[str]) -> dict[str, Any]:
    """A functional study's ``set`` entries as exit-unit parameters: each value parsed as YAML and checked against
    the architecture schema (the functional rules read no architecture file, so nothing else would check them)."""
    from satasim_atsn.hw.arch_fields import check_value
    from satasim_atsn.hw.arch_overrides import parse_override, schema_at

    params: dict[str, Any] = {}
    for item in fixed:
        fname = item.split("=", 1)[0].strip()
        try:
            path, value = parse_override(item)
            params[".".join(path)] = check_value("", fname, value, schema_at(path))
        except SatasimError as error:
            raise fail(where, f"set.{fname}", f"value {shown(item.split('=', 1)[1].strip())} is refused ({error})",
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


def point_overrides(study: Study, point: dict[str, Any]) -> list[str]:
    """The --set overrides of a point: the study's fixed ones, then the point's values."""
    out = list(study.fixed)
    for fname, value in point.items():
        if fname == "arch" and study.arch_files:
            continue
        out.append(f"{fname}={yaml_scalar(value, fname)}")
    return out
