"""``satasim compare``: several architectures side by side, with the causes of the differences.

All run one workload, or each its own (``ARCH=WORKLOAD``: e.g. every accelerator on the network trained
for it, the paper's setting), with the same images.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from concurrent.futures import as_completed
from pathlib import Path

import numpy as np

from satasim_atsn.errors import ArchError, StudyError
from satasim_atsn.fileio import (
    atomic_write_text,
    check_outputs,
    expand_home,
    json_default,
    refuse_overwriting_inputs,
    staged_directory,
)
from satasim_atsn.hw.arch import load_arch_with_set, read_arch
from satasim_atsn.hw.arch_files import resolve_arch_path, shipped_arch
from satasim_atsn.hw.arch_overrides import naming_set_values, override_label
from satasim_atsn.report import load_plots
from satasim_atsn.report.document import Document, fmt, md_code, md_text, pct, ratio_text, text_columns, text_table
from satasim_atsn.study.metrics import read_cached, run_summary, workload_notice
from satasim_atsn.study.runner import STUDY_JSON, process_pool
from satasim_atsn.threads import usable_cpus
from satasim_atsn.workload.steps import step_columns

DEFAULT_IMAGES = 100


def _run_one(args: tuple, progress=None) -> dict:
    arch_path, overrides, workload_path, images, start = args
    return run_summary(arch_path, overrides, workload_path, images, start, progress=progress)


class _SharedBar:
    """The engine's progress hook for one architecture of a sequential compare, drawing on one shared bar."""

    def __init__(self, bar, offset: int, name: str, clock_hz: float) -> None:
        self.bar, self.offset, self.name, self.clock_hz = bar, offset, name, clock_hz
        self.first = offset == 0  # the first images of the run carry numba's compilation: no rate from them

    def start(self, total_images: int) -> None:  # noqa: D102 - the engine's hook
        pass

    def update(self, done: int, cycles: int) -> None:  # noqa: D102
        fps = done / (cycles / self.clock_hz) if cycles > 0 else 0.0
        self.bar.set_postfix_str(f"{self.name}: {fps:.1f} simulated FPS", refresh=False)
        if self.first and not self.bar.disable:
            from satasim_atsn.report.progress import time_from

            self.first = False
            time_from(self.bar, self.offset + done)
            return
        self.bar.update(self.offset + done - self.bar.n)

    def finish(self) -> None:  # noqa: D102
        pass


def run_all(arch_paths: list[str], overrides: list[str], workload_path: str | list[str], images: int, start: int,
            jobs: int | None, quiet: bool = True) -> list[dict]:
    """Simulate every architecture (in parallel processes when there are several and cores allow).

    A progress bar (images done over all architectures, simulated FPS, ETA) is shown on a terminal
    unless ``quiet``: image by image when sequential, architecture by architecture when parallel.
    """
    from satasim_atsn.report.progress import progress_bar

    workloads = per_arch_workloads(arch_paths, workload_path)
    tasks = [(a, list(overrides), w, images, start) for a, w in zip(arch_paths, workloads, strict=True)]
    workers = min(len(tasks), jobs or usable_cpus())
    # a refusal at mapping time (in a worker) of a value a --set gave says so
    with naming_set_values(overrides), progress_bar(len(tasks) * images, desc="compare", unit="img",
                                                    quiet=quiet, smoothing=0) as bar:
        if workers <= 1:
            out = []
            for k, task in enumerate(tasks):
                hook = None
                if not bar.disable:
                    arch = read_arch(task[0], task[1])
                    hook = _SharedBar(bar, k * images, arch.name, arch.clock_hz)
                out.append(_run_one(task, hook))
            return out
        with process_pool(workers) as pool:
            futures = {pool.submit(_run_one, t): i for i, t in enumerate(tasks)}
            results: list[dict | None] = [None] * len(tasks)
            for future in as_completed(futures):
                summary = future.result()
                results[futures[future]] = summary
                bar.set_postfix_str(f"{summary['name']}: {summary['fps']:.1f} simulated FPS", refresh=False)
                bar.update(images)
            return [r for r in results if r is not None]


def per_arch_workloads(arch_paths: list[str], workload_path: str | list[str]) -> list[str]:
    """One workload per architecture: the shared one repeated, or the list given (one for each)."""
    if isinstance(workload_path, str):
        return [workload_path] * len(arch_paths)
    if len(workload_path) != len(arch_paths):
        raise StudyError.at(None, "ARCH=WORKLOAD", f"{len(workload_path)} workloads for {len(arch_paths)} "
                            "architectures", "give every architecture a workload, or one shared workload last")
    return list(workload_path)


FILE_NAME_CHARS = 64  # of an architecture's name in a plot's file name


def file_safe(name: str) -> str:
    """An architecture's ``name:`` as one file-name component: path separators, ``..`` and other characters
    outside [A-Za-z0-9._-] become ``_``, so a plot can never land outside the report's directory; at most
    FILE_NAME_CHARS characters (a 300-character name made a file name the file system refused, after the
    simulations). Callers keep names apart by an index."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".")[:FILE_NAME_CHARS]
    return safe or "_"


def _check_names(arch_paths: list[str], names: list[str]) -> None:
    """Refuse two architectures of the same name: the report, the plots and --baseline tell them apart by name."""
    first: dict[str, str] = {}
    for path, name in zip(arch_paths, names, strict=True):
        if name in first and resolve_arch_path(first[name]).resolve() == resolve_arch_path(path).resolve():
            raise StudyError.at(f"{first[name]} and {path}", None, "the same architecture file is given twice",
                                "list it once (to run one design on two workloads, copy its YAML under another "
                                "`name:`)")
        if name in first:
            raise StudyError.at(f"{first[name]} and {path}", "name", f"both are {name!r}",
                                "give one of them another `name:` in its YAML (compare's --set applies to every "
                                "architecture)")
        first[name] = path


def _baseline_index(names: list[str], arch_paths: list[str], baseline: str | None) -> int:
    """The architecture --baseline names: by its (unique) name, its index, or its file (path as given, file name
    or stem; a shipped design's file name)."""
    if baseline is None:
        return 0
    if baseline in names:
        return names.index(baseline)
    if baseline.isdigit() and int(baseline) < len(names):
        return int(baseline)
    # a shipped design given by name ('atsn16x16') is the file atsn16x16.yaml, as results.json's arch_path says
    found = [i for i, a in enumerate(arch_paths) if baseline in (a, expand_home(a), Path(a).name, Path(a).stem,
                                                                 (shipped_arch(a) or Path(a)).name)
             or expand_home(baseline) in (a, expand_home(a))]
    if len(found) > 1:
        raise StudyError.at(None, "--baseline", f"{baseline!r} is ambiguous: it names the files of "
                            f"{[names[i] for i in found]}", "give the architecture's name")
    if not found and baseline.isdigit():
        raise StudyError.at(None, "--baseline", f"index {baseline} is out of range: there are {len(names)} "
                            f"architectures, 0..{len(names) - 1} (0-based, in the order given)",
                            "give an index in that range, or a name")
    if not found:
        raise StudyError.at(None, "--baseline", f"{baseline!r} is none of the architectures {names}",
                            "give one of their names, files or 0-based indices")
    return found[0]


def _output_dir_error(out: Path, error: OSError) -> StudyError:
    """The one-line error `satasim sweep` gives for an -o that cannot be made a directory."""
    return StudyError.at(str(out), "-o", f"cannot be created ({error.strerror or error})",
                         "choose a writable directory")


def _make_output_dir(out: Path) -> None:
    """Create -o (and its parents), or raise the one-line error sweep gives."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _output_dir_error(out, error) from None


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or not b:
        return "n/a"
    return ratio_text(a / b)


def explain_difference(arch: dict, base: dict) -> list[str]:
    """Sentences saying how energy per image and FPS differ from the baseline, and which components cause it."""
    out = []
    e_a, e_b = arch["energy_per_image_uJ"], base["energy_per_image_uJ"]
    delta = e_a - e_b
    word = "less" if delta < 0 else "more"
    share_of_base = f" ({abs(delta) / e_b * 100:.1f}%)" if e_b else ""  # a baseline of zero energy has no share
    spends = (f"spends {fmt(abs(delta))} uJ{share_of_base} {word} energy per image than"
              if delta else "spends the same energy per image as")
    out.append(f"**{arch['name']}** {spends} **{base['name']}** ({fmt(e_a)} vs {fmt(e_b)} uJ) and runs at "
               f"{_ratio(arch['fps'], base['fps'])} its FPS ({fmt(arch['fps'])} vs {fmt(base['fps'])}). "
               "Per image-timestep: "
               f"{fmt(arch['energy_per_image_timestep_uJ'])} vs {fmt(base['energy_per_image_timestep_uJ'])} uJ.")
    comps = sorted(set(arch["energy_by_component_uJ"]) | set(base["energy_by_component_uJ"]))
    diffs = {c: arch["energy_by_component_uJ"].get(c, 0.0) - base["energy_by_component_uJ"].get(c, 0.0) for c in comps}
    ranked = sorted(diffs.items(), key=lambda kv: -abs(kv[1]))
    parts = []
    for comp, d in ranked[:4]:
        if abs(d) < 1e-9 * max(e_b, 1e-12):
            continue
        share = d / delta * 100 if delta else float("nan")
        d_dyn = arch["dynamic_by_component_uJ"].get(comp, 0.0) - base["dynamic_by_component_uJ"].get(comp, 0.0)
        d_leak = arch["leakage_by_component_uJ"].get(comp, 0.0) - base["leakage_by_component_uJ"].get(comp, 0.0)
        actions_a = arch["energy_by_action_uJ"].get(comp, {})
        actions_b = base["energy_by_action_uJ"].get(comp, {})
        act = sorted(set(actions_a) | set(actions_b),
                     key=lambda k: -abs(actions_a.get(k, 0.0) - actions_b.get(k, 0.0)))
        top = ""
        if act and abs(d_dyn) > 0:
            k = act[0]
            top = f"; largest action change `{k}` {actions_b.get(k, 0.0):.4g} -> {actions_a.get(k, 0.0):.4g} uJ"
        parts.append(f"`{comp}` {d:+.4g} uJ ({share:.0f}% of the difference: dynamic {d_dyn:+.4g}, leakage "
                     f"{d_leak:+.4g}{top})")
    if parts:
        out.append("By component (dynamic + leakage, per image): " + "; ".join(parts) + ".")
    out.append(fps_factors(arch, base))
    return out


def fps_factors(arch: dict, base: dict) -> str:
    """FPS = accelerators x clock / accelerator-cycles per image, and those cycles = timesteps x cycles per
    image-timestep: the four ratios, and the one that moves FPS most (it used to be put down to timesteps
    whenever they differed by 5%, even when 2x the accelerators made the difference)."""
    t_a, t_b = arch["avg_timestep"], base["avg_timestep"]
    c_a, c_b = arch["cycles_per_image"], base["cycles_per_image"]
    step_a, step_b = c_a / max(t_a, 1e-12), c_b / max(t_b, 1e-12)
    text = (f"FPS {_ratio(arch['fps'], base['fps'])} = accelerators {arch['accelerators']} vs {base['accelerators']} "
            f"x clock {arch['clock_hz'] / 1e6:g} vs {base['clock_hz'] / 1e6:g} MHz / accelerator-cycles per image "
            f"{fmt(c_a)} vs {fmt(c_b)} ({_ratio(c_a, c_b)}); those cycles are timesteps per image {t_a:.3f} vs "
            f"{t_b:.3f} ({_ratio(t_a, t_b)}) x cycles per image-timestep {fmt(step_a)} vs {fmt(step_b)} "
            f"({_ratio(step_a, step_b)}).")
    if not (t_b and c_b and step_b and base["fps"] and arch["fps"]) or _spread(arch["fps"] / base["fps"]) < 1.01:
        return text
    factors = {
        "the number of accelerators": arch["accelerators"] / base["accelerators"],
        "the clock": arch["clock_hz"] / base["clock_hz"],
        f"running {'fewer' if t_a < t_b else 'more'} timesteps": t_b / t_a if t_a else 1.0,
        f"{'fewer' if step_a < step_b else 'more'} cycles per image-timestep": step_b / step_a if step_a else 1.0,
    }
    cause = max(factors, key=lambda k: _spread(factors[k]))  # divisions only: the same choice on every CPU
    return text + f" So the FPS change comes mostly from {cause} ({ratio_text(factors[cause])} of FPS)."


def _spread(ratio: float) -> float:
    """How far a positive ratio is from 1, either way (2 and 0.5 are equally far)."""
    return max(ratio, 1 / ratio) if ratio > 0 else float("inf")


#: what the workloads of a compare must share for its designs to be judged against each other: the task and the
#: network's shape (own networks of one topology, trained with other recipes, are comparable; a trained network
#: and a statistical twin, or two datasets, are not)
_TASK_KEYS = (("dataset", "dataset"), ("num_classes", "classes"), ("input_shape", "input shape"),
              ("timesteps", "timesteps T"), ("kind", "kind (trained, imported or statistical)"))


def task_differences(metas: list[dict]) -> list[str]:
    """What the workloads' metas differ in, among the task and the layer table (empty: one task and topology)."""
    differ = [label for key, label in _TASK_KEYS if len({repr(m.get(key)) for m in metas}) > 1]
    shapes = {repr([(ly.get("type"), ly.get("out_shape")) for ly in m.get("layers", [])]) for m in metas}
    if len(shapes) > 1:
        differ.append("layers")
    return differ


def paper_direction(summaries: list[dict], same_input: bool = True,
                    task_differs: list[str] | None = None) -> list[str]:
    """Does ATSN spend less energy per image than the conventional design, as the paper says? ``same_input``: both
    ran one workload on one technology table, so a difference comes from the designs alone."""
    kinds: dict[str, dict] = {}
    for s in summaries:  # the first design of each kind, in the order given
        kinds.setdefault(s["kind"], s)
    if "atsn" not in kinds or "conventional" not in kinds:
        return []
    a, c = kinds["atsn"], kinds["conventional"]
    several = sum(s["kind"] in ("atsn", "conventional") for s in summaries) > 2
    if task_differs:
        return [f"Paper's direction (ATSN spends less energy per image than a conventional SNN accelerator): not "
                f"judged here: **{a['name']}** and **{c['name']}** ran workloads that differ in "
                f"{', '.join(task_differs)}, so their difference is not the designs' alone."]
    saving = 1 - a["energy_per_image_uJ"] / c["energy_per_image_uJ"]
    text = [f"Paper's direction (ATSN spends less energy per image than a conventional SNN accelerator), "
            f"**{a['name']}** against **{c['name']}**"
            f"{' (the first ATSN and conventional designs given)' if several else ''}: "
            f"**{'matches' if saving > 0 else 'does not match'}** here — ATSN "
            f"{'saves' if saving >= 0 else 'spends'} {abs(saving) * 100:.1f}% "
            f"{'' if saving >= 0 else 'more '}per image and changes FPS by {pct(a['fps'] / c['fps'] - 1)}."]
    per_ts = 1 - a["energy_per_image_timestep_uJ"] / c["energy_per_image_timestep_uJ"]
    steps = 1 - a["avg_timestep"] / c["avg_timestep"]
    hw = []
    for comp in ("pe_compute", "exit_unit", "adc"):
        ea, ec = a["dynamic_by_component_uJ"].get(comp, 0.0), c["dynamic_by_component_uJ"].get(comp, 0.0)
        ta, tc = ea / max(a["avg_timestep"], 1e-12), ec / max(c["avg_timestep"], 1e-12)
        if ea or ec:
            hw.append(f"`{comp}` {tc:.4g} -> {ta:.4g} uJ per image-timestep")
    text.append(f"Of that, early exit runs {abs(steps) * 100:.1f}% {'fewer' if steps >= 0 else 'more'} timesteps "
                f"per image; per image-timestep ATSN spends {abs(per_ts) * 100:.1f}% "
                f"{'less' if per_ts >= 0 else 'more'}. The compute units' dynamic energy per image-timestep: "
                f"{'; '.join(hw)}. Leakage scales with the makespan, so it follows the timesteps too.")
    if saving <= 0 and not same_input:
        text.append("Why the direction differs cannot be read from this comparison: the two designs ran different "
                    "workloads or technology tables; see the component table above.")
    elif saving <= 0:
        cause = ("the timesteps it saves do not pay for what it spends per timestep" if steps > 0 else
                 "it saves no timesteps on this workload, so its exit unit and decisions only add")
        text.append(f"Why the direction differs: {cause}; see the component table above.")
    return text


def latency_timeline(summary: dict, dataflow: str = "timestep_major",
                     batch: int = 1) -> tuple[list[tuple[str, float, float, str]], str]:
    """Segments (row, start_us, duration_us, group) of one image through layers and timesteps.

    A batch's images share each layer's cycles, so one of them waits their number x the per-image average; a
    layer_major design runs each layer's T timesteps before the next layer (docs/microarchitecture.md 12.3)."""
    if summary.get("timeline"):
        return summary["timeline"], "from the engine's per-slice timing of the image"
    median = float(summary["median_exit_t"])
    exit_t = int(median + 0.5)  # half up: round() took 1.5 to 2 but 2.5 to 2 as well
    cycles = summary["layer_cycles_per_image_timestep"]  # layer -> cycles
    clock = summary["clock_hz"]
    steps = [(layer, t) for t in range(1, exit_t + 1) for layer in cycles]
    if dataflow == "layer_major":
        steps.sort(key=lambda step: list(cycles).index(step[0]))  # stable: each layer's timesteps in order
    images = int(summary["images"])
    share = images / -(-images // batch)  # images per batch on average: the last batch may be short
    segments, now = [], 0.0
    for layer, t in steps:
        dur = cycles[layer] * share / clock * 1e6
        segments.append((layer, now, dur, f"t={t}"))
        now += dur
    how = ("derived from per-layer cycles averaged over the image-timesteps run (the engine reports no "
           f"per-slice timing), for an image exiting at its median step t={exit_t}"
           + ("" if median == exit_t else f" (the median, {fmt(median)}, rounded up)"))
    if share > 1:
        how += (f"; the images of a batch ({fmt(share)} on average) share each layer's cycles, so each waits "
                f"{fmt(share)}x the average")
    return segments, how + ("; layer_major: each layer runs all its timesteps before the next"
                            if dataflow == "layer_major" else "")


def _load_for_compare(arch_path: str, overrides: list[str]):
    """load_arch, except that an exit-unit field given by --set that this architecture's kind does not have says
    that --set reaches every architecture: its own fix ("or --set exit_unit.cl_init=null") would break the others."""
    try:
        return load_arch_with_set(arch_path, overrides)
    except ArchError as error:
        given = {o.split("=", 1)[0].strip() for o in overrides}
        if error.field not in given or "exit unit kind" not in (error.problem or ""):
            raise  # not a --set, or a value no architecture takes: its own fix is right
        raise StudyError.at(str(arch_path), f"--set {error.field}", error.problem,
                            "a --set reaches every architecture of a compare: put the field in the YAML of the "
                            "architectures it fits, or compare them separately") from None


def _prepare(arch_paths: list[str], workloads: list[str], out: Path, baseline: str | None, images: int | None,
             start: int, overrides: list[str],
             json_path: str | None = None) -> tuple[list[dict], list[str], int, int, list[str]]:
    """Check every input before simulating, with the one-line errors `satasim run` gives for the same files.

    Returns each architecture's workload meta, the architectures' names, the baseline's index, the
    image count (by default 100, or all the smallest workload holds from ``start``) and the notes `satasim run`
    prints, per design (hw/notes.py).
    """
    from satasim_atsn.hw.arch_overrides import naming_set_values
    from satasim_atsn.hw.notes import run_notes
    from satasim_atsn.hw.run_checks import check_mappable, image_count
    from satasim_atsn.traces.exit_histograms import require_policy_histogram

    for a in arch_paths:  # a file, or the name of a shipped architecture (as for `satasim run`)
        if not resolve_arch_path(a).is_file():
            raise StudyError.at(a, None, "no such architecture file", "give arch .yaml files, then the workload")
    archs = [_load_for_compare(a, overrides) for a in arch_paths]
    refuse_overwriting_inputs({"--json": json_path}, [f for arch in archs for f in arch.files])  # tables too
    names = [arch.name for arch in archs]
    # the validation `satasim run` does
    given = "compare: the last argument, or the WORKLOAD of an ARCH=WORKLOAD pair"  # named by a refusal's fix
    loaded = {w: read_cached(w, given) for w in dict.fromkeys(workloads)}
    _check_names(arch_paths, names)
    for arch, w in zip(archs, workloads, strict=True):  # a design that cannot map its workload, before any runs
        with naming_set_values(overrides):  # a refusal of a value a --set gave says so
            check_mappable(arch, loaded[w])  # the checks simulate() makes before any image, in its order
        require_policy_histogram(loaded[w], arch.policy_name)  # the exit histogram its exit rule draws from
    b = _baseline_index(names, arch_paths, baseline)
    shortest = min(loaded, key=lambda w: loaded[w].num_images)  # the first given of the shortest
    fewest = loaded[shortest].num_images
    if start >= fewest:
        raise StudyError.at(shortest, "--start", f"{start} is past the last image (the workload holds {fewest})",
                            f"use --start below {fewest}")
    if images is None:
        images = min(DEFAULT_IMAGES, fewest - start)
    for w in loaded.values():  # the refusal `satasim run` gives, before any note is printed
        image_count(w, images, start)
    notes = [f"{name}: {note.removeprefix('note: ')}"
             for name, arch, path, w in zip(names, archs, arch_paths, workloads, strict=True)
             for note in run_notes(arch, path, overrides, loaded[w], images, start=start)]
    differ = task_differences([loaded[w].meta for w in workloads])
    if differ:
        notes.append(f"the architectures' workloads differ in {', '.join(differ)}: the differences between the "
                     "designs are also the networks'")
    return [loaded[w].meta for w in workloads], names, b, images, notes


#: the summary table of a comparison: (label, summary key), in order
_METRIC_ROWS = [
    ("FPS", "fps"), ("latency per image (us)", "latency_us"), ("cycles per image", "cycles_per_image"),
    ("avg timestep", "avg_timestep"), ("energy / image (uJ)", "energy_per_image_uJ"),
    ("energy / image-timestep (uJ)", "energy_per_image_timestep_uJ"),
    ("dynamic / image (uJ)", "dynamic_energy_per_image_uJ"),
    ("leakage / image (uJ)", "leakage_energy_per_image_uJ"), ("power (mW)", "power_mW"),
    ("area (mm2, all accelerators)", "area_mm2"), ("EDP (uJ x ms)", "edp_uJ_ms"),
    ("pJ per synaptic op", "pJ_per_sop"), ("dynamic pJ per synaptic op", "dynamic_pJ_per_sop"),
    ("leakage share (fraction)", "leakage_share"), ("PE busy (fraction)", "pe_utilisation"),
    ("DRAM channel busy (fraction)", "dram_channel_busy"),
    ("accuracy (software prediction)", "accuracy"), ("accuracy (exit unit's prediction)", "accuracy_hardware"),
]
#: the rows of it the terminal shows
TERMINAL_COLUMNS = 120  # the widest summary table headed by the designs' names; wider ones are numbered
_TERMINAL_ROWS = ("FPS", "energy / image (uJ)", "energy / image-timestep (uJ)", "avg timestep",
                  "area (mm2, all accelerators)", "power (mW)", "EDP (uJ x ms)", "pJ per synaptic op",
                  "dynamic pJ per synaptic op", "leakage share (fraction)", "PE busy (fraction)",
                  "DRAM channel busy (fraction)")


COMPARE_FILES = ("report.md", "report.html", "results.json", "*.png")  # what `compare -o DIR` writes


def run_compare(arch_paths: list[str], workload_path: str | list[str], out_dir: str | Path, baseline: str | None = None,
                images: int | None = None, start: int = 0, overrides: list[str] | None = None, jobs: int | None = None,
                json_path: str | None = None, command: str = "", quiet: bool = False, draw_plots: bool = True) -> str:
    """Simulate, write report.md/html, results.json and plots; return the terminal summary table.

    ``workload_path`` is one workload for all, or a list with one per architecture. Without ``draw_plots``
    (`--no-plots`) the report has its tables and no figures: the same numbers in about a second less per figure.
    """
    out = Path(out_dir)
    workloads = per_arch_workloads(arch_paths, workload_path)
    refuse_overwriting_inputs({"-o": out, "--json": json_path}, [resolve_arch_path(a) for a in arch_paths] + workloads)
    # before simulating: a late failure would leave -o half-written, and --json must not replace a report file
    check_outputs({"--json": json_path}, {"-o": (out_dir, COMPARE_FILES)})
    if (out / STUDY_JSON).is_file():  # sweep refuses a compare's directory; the reverse mixed the two reports
        raise StudyError.at(str(out), "-o", f"holds a sweep's results ({STUDY_JSON}): the comparison's report.md "
                            "would replace the sweep's", "use another -o")
    metas, names, b, images, notes = _prepare(arch_paths, workloads, out, baseline, images, start,
                                             list(overrides or []), json_path)
    for note in notes if not quiet else []:
        print(f"note: {note}", file=sys.stderr)
    summaries = run_all(arch_paths, overrides or [], workloads, images, start, jobs, quiet=quiet)
    _make_output_dir(out)
    shared = len(set(workloads)) == 1
    judged = [next((m for m, s in zip(metas, summaries, strict=True) if s["kind"] == kind), None)
              for kind in ("atsn", "conventional")]  # the pair paper_direction judges
    differ = task_differences([m for m in judged if m is not None])
    shown = [md_text(n) for n in names]  # the names as the report's Markdown shows them (plots take them as they are)
    title = f"Comparison on {md_text(metas[0].get('name'))}: " + ", ".join(shown) if shared else (
        "Comparison of " + ", ".join(f"{n} on {md_text(m.get('name'))}" for n, m in zip(shown, metas, strict=True)))
    doc = Document(title,
                   notice=" ".join(dict.fromkeys(n for n in map(workload_notice, workloads) if n)))
    doc.para("Regenerate with:")
    doc.code(command)
    source = _source(shown, workloads, metas, shared)
    for note in notes:
        doc.para(f"**Note:** {md_text(note)}.")
    doc.para(f"{images} images from image {start} {source}; "
             f"baseline for the ratios: **{shown[b]}**. Energy per image = total energy (dynamic + leakage of every "
             "accelerator over the makespan) / images; per image-timestep divides further by the timesteps the "
             "images ran. Power = energy / makespan. EDP = energy per image x mean image latency."
             + ("" if draw_plots else " Figures not drawn (`--no-plots`)."))
    headers = ["metric"] + shown + [f"{n} / {shown[b]}" for i, n in enumerate(shown) if i != b]
    rows = []
    for label, key in _METRIC_ROWS:
        vals = [s.get(key) for s in summaries]
        if all(v is None for v in vals):
            continue
        rows.append([label] + [fmt(v) for v in vals] + [_ratio(v, vals[b]) for i, v in enumerate(vals) if i != b])
    doc.heading("Summary")
    doc.table(headers, rows)
    # out gets the report only once all of it is written; the plots an earlier report here showed go unless shown
    with staged_directory(out, Document.figures_in) as stage:
        figures = stage if draw_plots else None  # where the plots go (None: drawn nowhere, named nowhere)
        _metrics_figure(doc, figures, names, summaries, b)
        _energy_sections(doc, figures, names, summaries)
        tables = {(read_arch(a, list(overrides or [])).technology) for a in arch_paths}
        _why_section(doc, summaries, b, shared and len(tables) == 1, differ)
        # latency timeline and exit histogram
        _latency_sections(doc, figures, summaries, arch_paths, list(overrides or []))
        labels = [override_label(o) for o in overrides or []]  # a technology table by file name
        results = {"workload": Path(workloads[0]).name if shared else None, "images": images, "start": start,
                   "baseline": names[b], "overrides": labels, "architectures": summaries, "notes": notes}
        if not shared:  # by file name only, as "workload": the bytes do not depend on the directory
            results["workloads"] = {n: Path(w).name for n, w in zip(names, workloads, strict=True)}
        text = json.dumps(results, indent=2, sort_keys=True, default=json_default) + "\n"
        atomic_write_text(stage / "results.json", text)
        doc.write(stage)
    if json_path:
        atomic_write_text(json_path, text)
    term_rows = [r for r in rows if r[0] in _TERMINAL_ROWS]  # the terminal shows the names as written, unescaped
    return terminal_summary(names, b, term_rows) + f"\n-> {out}/report.md"


def terminal_summary(names: list[str], b: int, rows: list[list]) -> str:
    """The terminal's summary table, headed by the designs' names as written, or, when they would make a line
    wider than TERMINAL_COLUMNS (long names: 150 characters made lines of 600 to over 1000), by [1], [2], ...
    with each full name listed once above the table."""
    table = text_table(["metric"] + names + [f"{n} / {names[b]}" for i, n in enumerate(names) if i != b], rows)
    if max(text_columns(line) for line in table.splitlines()) <= TERMINAL_COLUMNS:
        return table
    tags = [f"[{i + 1}]" for i in range(len(names))]
    legend = [f"{tag} {name}{' (baseline)' if i == b else ''}" for i, (tag, name) in enumerate(zip(tags, names,
                                                                                                   strict=True))]
    return "\n".join(legend) + "\n" + text_table(
        ["metric"] + tags + [f"{t} / {tags[b]}" for i, t in enumerate(tags) if i != b], rows)



def _why_section(doc: Document, summaries: list[dict], b: int, same_input: bool, differ: list[str]) -> None:
    """"Why they differ": each design against the baseline, and the paper's direction; nothing for one design."""
    if len(summaries) < 2:
        return  # no heading over an empty section
    doc.heading("Why they differ")
    for i, s in enumerate(summaries):
        if i != b:
            for sentence in explain_difference(_md_named(s), _md_named(summaries[b])):
                doc.para(sentence)
    for sentence in paper_direction([_md_named(s) for s in summaries], same_input=same_input, task_differs=differ):
        doc.para(sentence)


def _source(shown: list[str], workloads: list[str], metas: list[dict], shared: bool) -> str:
    """The workload(s) the designs ran, for the report: one workload's file and dataset, or each design's own."""
    if shared:
        return f"of {md_code(Path(workloads[0]).name)} ({md_text(metas[0].get('dataset'))})"
    return "of each architecture's own workload (" + "; ".join(
        f"**{n}**: {md_code(Path(w).name)} ({md_text(m.get('dataset'))})"
        for n, w, m in zip(shown, workloads, metas, strict=True)
    ) + "). The differences therefore include the networks' spikes and exit steps, not only the hardware"


def _md_named(summary: dict) -> dict:
    """A summary whose name is escaped for the report's Markdown (the sentences about it quote it)."""
    return {**summary, "name": md_text(summary["name"])}


def _figure(doc: Document, out: Path | None, name: str, caption: str, draw: Callable[[Path], object]) -> None:
    """Draw the figure ``name`` into ``out`` and show it in ``doc`` with ``caption``; neither when ``out`` is None
    (`--no-plots`)."""
    if out is None:
        return
    draw(out / name)
    doc.figure(name, caption)


def _metrics_figure(doc: Document, out: Path | None, names: list[str], summaries: list[dict], b: int) -> None:
    """FPS, energy per image, area, power, EDP and energy per image-timestep side by side, annotated with the
    ratio to the baseline ``b``."""
    _figure(doc, out, "metrics.png", f"FPS, energy per image, area, power, EDP and energy per image-timestep; bars "
            f"annotated with the ratio to {md_text(names[b])}", lambda path: load_plots().metric_bars(path, names, [
                ("FPS", [s["fps"] for s in summaries]),
                ("energy per image (uJ)", [s["energy_per_image_uJ"] for s in summaries]),
                ("area (mm2)", [s["area_mm2"] for s in summaries]),
                ("power (mW)", [s["power_mW"] for s in summaries]),
                ("EDP (uJ x ms)", [s["edp_uJ_ms"] for s in summaries]),
                ("energy per image-timestep (uJ)", [s["energy_per_image_timestep_uJ"] for s in summaries]),
            ], b))


def _energy_sections(doc: Document, out: Path | None, names: list[str], summaries: list[dict]) -> None:
    """Where the energy goes: per group (plot and table), per component, per action, per layer; unit utilisation."""
    _group_section(doc, out, names, summaries)
    comps = sorted({c for s in summaries for c in s["energy_by_component_uJ"]})
    doc.heading("Where the energy goes")
    _figure(doc, out, "energy_by_component.png", "energy per image by component",
            lambda path: load_plots().stacked_bars(
                path, names, {c: [s["energy_by_component_uJ"].get(c, 0.0) for s in summaries] for c in comps},
                "energy per image by component (dynamic + leakage)", "uJ per image"))
    comp_rows = []
    for c in comps:
        comp_rows.append([c] + [fmt(s["energy_by_component_uJ"].get(c, 0.0)) for s in summaries] +
                         [fmt(s["leakage_by_component_uJ"].get(c, 0.0)) for s in summaries])
    shown = [md_text(n) for n in names]
    doc.table(["component"] + [f"{n} total uJ" for n in shown] + [f"{n} leakage uJ" for n in shown], comp_rows,
              caption="energy per image by component")
    action_rows = []
    for c in comps:
        acts = sorted({k for s in summaries for k in s["energy_by_action_uJ"].get(c, {})})
        for k in acts:
            vals = [s["energy_by_action_uJ"].get(c, {}).get(k, 0.0) for s in summaries]
            if any(vals):
                action_rows.append([c, k] + [fmt(v) for v in vals])
    doc.table(["component", "action"] + shown, action_rows, caption="dynamic energy per image by action (uJ)")
    _layer_section(doc, out, names, summaries)


#: the stack of energy_by_layer.png that is in no layer (docs/results.md, `layers`)
WEIGHT_LOAD = "initial weight load (no layer)"


def outside_layers_uJ(summary: dict) -> float:
    """Dynamic energy per image in no layer: the initial weight load (resident weights) of DRAM reads and
    weight-buffer writes; 0.0 when the difference is within the rounding of the per-image values (1 fJ each)."""
    dynamic, layers = summary["dynamic_by_component_uJ"], summary["energy_by_layer_uJ"]
    gap = sum(dynamic.values()) - sum(layers.values())
    noise = (len(dynamic) + len(layers) + 1) * 1e-9 + 1e-12 * abs(sum(dynamic.values()))
    return gap if gap > noise else 0.0


def _layer_section(doc: Document, out: Path | None, names: list[str], summaries: list[dict]) -> None:
    """energy_by_layer.png: dynamic energy per layer, and the initial weight load (in no layer) on top of them, so
    each bar is the dynamic energy per image; the caption gives the load's share in uJ."""
    layers = list(dict.fromkeys(k for s in summaries for k in s["energy_by_layer_uJ"]))
    if not layers:
        return
    stacks = {ly: [s["energy_by_layer_uJ"].get(ly, 0.0) for s in summaries] for ly in layers}
    loads = [outside_layers_uJ(s) for s in summaries]
    caption = "dynamic energy per image by layer (group)"
    if any(loads):
        stacks[WEIGHT_LOAD] = loads
        caption += (f", and on top the {WEIGHT_LOAD.removesuffix(' (no layer)')}, which belongs to no layer: "
                    + ", ".join(f"{md_text(n)} {fmt(v)} uJ" for n, v in zip(names, loads, strict=True))
                    + " per image; each bar adds up to the dynamic energy per image")
    _figure(doc, out, "energy_by_layer.png", caption, lambda path: load_plots().stacked_bars(
        path, names, stacks, "dynamic energy per image by layer", "uJ per image"))


GROUP_LABELS = {"compute": "compute", "on_chip_memory": "on-chip memory", "noc": "NoC", "dram": "DRAM"}
UNIT_ROWS = (  # (label, key path in the summary's "utilisation") -- definitions: docs/results.md
    ("PE array busy", ("pe_array", "busy")), ("PE array stall_input", ("pe_array", "stall_input")),
    ("PE array stall_memory", ("pe_array", "stall_memory")), ("PE array idle", ("pe_array", "idle")),
    ("exit unit busy", ("exit_unit", "busy")), ("DRAM channel busy", ("dram_channel_busy",)),
    ("DRAM bandwidth", ("dram_bandwidth",)), ("weight buffer read port", ("weight_buffer_read_port",)),
    ("spike (input) buffer read port", ("input_buffer_read_port",)),
    ("spike (output) buffer write port", ("output_buffer_write_port",)), ("NoC link load", ("noc_link_load",)),
)


def _percent(value: float) -> str:
    """A fraction as an unsigned percentage with 3 significant digits."""
    return f"{value * 100:.3g}%"


def _share(part: float, total: float) -> str:
    """``part`` as a share of ``total``; n/a for a design whose energy is 0 (a table of zeros is allowed)."""
    return _percent(part / total) if total else "n/a"


def _group_section(doc: Document, out: Path | None, names: list[str], summaries: list[dict]) -> None:
    """Energy per image in four groups (dynamic hatched, leakage solid), pJ per SOP, and each unit's utilisation."""
    groups = list(summaries[0]["energy_by_group_uJ"])
    doc.heading("Energy at a glance")
    doc.para("Energy per image in four groups (docs/energy.md, \"Groups\"): compute (PE arithmetic, ADCs, the exit "
             "unit), on-chip memory (PE data memories, spike buffers, global buffers), NoC, and DRAM. Each is split "
             "into dynamic energy and leakage; for DRAM, into access energy and background power (standby and "
             "refresh over the makespan), its static part. pJ per synaptic operation = energy / NeuroBench's "
             "Effective_ACs (pe_accumulations + exit_accumulations).")
    _figure(doc, out, "energy_by_group.png", "energy per image by group: leakage solid, dynamic hatched",
            lambda path: load_plots().energy_groups(
                path, names, {GROUP_LABELS.get(g, g): ([s["energy_by_group_uJ"][g]["dynamic"] for s in summaries],
                                                       [s["energy_by_group_uJ"][g]["leakage"] for s in summaries])
                              for g in groups}, "energy per image by group", "uJ per image"))
    rows = []
    for g in groups:
        for part in ("dynamic", "leakage"):
            shown = {"dynamic": "access", "leakage": "background"}[part] if g == "dram" else part
            rows.append([f"{GROUP_LABELS.get(g, g)} {shown}"]
                        + [fmt(s["energy_by_group_uJ"][g][part]) for s in summaries]
                        + [_share(s["energy_by_group_uJ"][g][part], s["energy_per_image_uJ"]) for s in summaries])
    rows.append(["total"] + [fmt(s["energy_per_image_uJ"]) for s in summaries]
                + ["100%" if s["energy_per_image_uJ"] else "n/a" for s in summaries])
    rows.append(["pJ per synaptic op (dynamic only)"]
                + [f"{fmt(s['pJ_per_sop'])} ({fmt(s['dynamic_pJ_per_sop'])})" for s in summaries] + [""] * len(names))
    shown = [md_text(n) for n in names]
    doc.table(["group"] + [f"{n} uJ" for n in shown] + [f"{n} share" for n in shown], rows,
              caption="energy per image by group, dynamic and leakage, with each part's share of the total")
    unit_rows = []
    for label, path in UNIT_ROWS:
        values = []
        for s in summaries:
            value = s["utilisation"]
            for key in path:
                value = value[key]
            values.append(_percent(value))
        unit_rows.append([label] + values)
    doc.table(["unit"] + shown, unit_rows,
              caption="utilisation of each unit over the makespan (definitions: docs/results.md, \"utilisation\")")


def _latency_sections(doc: Document, out: Path | None, summaries: list[dict], arch_paths: list[str],
                      overrides: list[str]) -> None:
    """Latency and exit steps: each design's timeline of one image, and the exit-step histograms."""
    if out is None:  # both are figures only (their numbers are in results.json)
        return
    doc.heading("Latency and exit steps")
    for i, (s, path) in enumerate(zip(summaries, arch_paths, strict=True)):
        arch = read_arch(path, overrides)
        segments, how = latency_timeline(s, arch.dataflow, int(arch.images_per_batch))
        name = f"timeline_{i}_{file_safe(s['name'])}.png"
        load_plots().timeline(out / name, segments, f"{s['name']}: one image through layers and timesteps", "time (us)")
        doc.figure(name, f"{md_text(s['name'])}: latency timeline of one image, {how}")
    exit_histogram_plot(out / "exit_histogram.png", summaries)
    doc.figure("exit_histogram.png", "number of images exiting at each timestep")


def exit_histogram_plot(path: Path, summaries: list[dict]) -> None:
    """The designs' exit-step histograms (``name``, ``exit_hist`` of each summary): bars up to T = 9, then one line
    per design, so the figure keeps its size at any T."""
    T = max(len(s["exit_hist"]) for s in summaries)
    title = "exit timestep histogram"
    if len(step_columns(T)) == T:
        load_plots().grouped_bars(path, [str(t) for t in range(1, T + 1)],
                           {s["name"]: list(np.pad(np.asarray(s["exit_hist"], float), (0, T - len(s["exit_hist"]))))
                            for s in summaries}, title, "exit timestep", "images", counts=True)
    else:  # one bar per step and design grew the figure 0.6 inch each: 7,870 px wide at T = 64 for two designs
        load_plots().lines(path, {s["name"]: (list(range(1, len(s["exit_hist"]) + 1)),
                                              [float(v) for v in s["exit_hist"]]) for s in summaries},
                           "exit timestep", "images", title)


