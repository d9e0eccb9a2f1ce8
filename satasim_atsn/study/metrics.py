"""Metrics of one simulation, extracted from the engine's SimResult, plus workload notices."""

from __future__ import annotations

import json
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from satasim_atsn.fileio import content_key

if TYPE_CHECKING:
    from satasim_atsn.hw.results import SimResult
    from satasim_atsn.report.progress import Progress


@lru_cache(maxsize=64)
def workload_meta(path: str) -> dict:
    """The meta of a workload file, read without loading its arrays or checking the file.

    For a file already read with :func:`read_cached` (or ``read_workload``): on any other file it raises
    zipfile/JSON errors, not the one-line WorkloadError, so commands validate the workload first.
    """
    with zipfile.ZipFile(path) as archive:
        import numpy as np

        with archive.open("meta.npy") as handle:
            return json.loads(str(np.lib.format.read_array(handle, allow_pickle=False)))


def workload_notice(path: str | Path) -> str:
    """First line of a report on a statistical workload ('' for trained/imported ones)."""
    meta = workload_meta(str(path))
    if meta.get("kind") != "statistical":
        return ""
    prov = meta.get("provenance") or {}
    source = prov.get("rates_source") or prov.get("source") or ""
    extra = f" Rates: {source}." if source else f" Its statistics are {statistics_origin(meta)}"
    if not source:
        fitted = prov.get("fitted_from")
        named = isinstance(fitted, dict) and fitted.get("file")
        extra += f": a twin fitted to {fitted['file']} (satasim workload stats)." if named else "."
    return (f"Statistical workload: {meta.get('name')} ({meta.get('dataset')}) has no trained weights; its spikes are "
            f"drawn from per-layer firing rates and exit-step histograms (docs/statistical.md), so accuracy is not "
            f"simulated and absolute numbers depend on those rates.{extra}")


def statistics_origin(meta: dict) -> str:
    """Where a statistical workload's rates and exit histograms come from, in a few words: "measured" (from a
    trained network: `workload rates`, or a twin of it, `workload stats`), "assumed" (a table of borrowed or
    assumed numbers), or a mix."""
    prov = meta.get("provenance") or {}
    fitted = prov.get("fitted_from")
    if isinstance(fitted, dict):  # a twin (`workload stats`): measured on the trained or imported network it fits
        return "measured"
    sources = prov.get("sources")
    if not isinstance(sources, dict):  # free-form provenance: a user's own file may hold text here
        sources = {}
    rates = "measured" if str(sources.get("rates", "")).startswith("measured") else "assumed"
    hist = prov.get("exit_histograms")
    measured_exits = isinstance(hist, dict) and any(str(v).startswith("given") for v in hist.values())
    borrowed = any(str(k).startswith("datasets.") for k in sources)
    exits = "measured" if measured_exits else "borrowed" if borrowed else "assumed"
    return rates if rates == exits else f"{rates} rates, {exits} exit histograms"


@lru_cache(maxsize=4)
def _read(path: str, key: tuple):  # noqa: ARG001 - the file's content key keys the cache
    from satasim_atsn.workload.format import read_workload

    return read_workload(path)


def read_cached(path: str | Path, argument: str = "") -> Any:
    """read_workload with a small per-process cache (sweeps reuse one workload for every point); ``argument``: as
    read_workload's."""
    from satasim_atsn.workload.format import check_workload_path

    p = Path(path)
    check_workload_path(p, argument)  # before the cache: where the path came from is no part of its key
    # keyed by content (fileio.content_key): a file rewritten keeping its size and time is read anew
    return _read(str(p), content_key(p))  # missing or unreadable: read_workload raises its one-line WorkloadError


def summarize(result: SimResult, arch_path: str | Path = "") -> dict:
    """Everything compare/sweep/reproduce need from one SimResult, per image where it makes sense; the arch
    by its file name only, so JSON does not depend on the working directory (as `satasim run --json`)."""
    import numpy as np

    from satasim_atsn.hw.breakdown import energy_breakdown, utilisation
    from satasim_atsn.hw.per_image import UJ_PLACES, _grid, neurobench, per_image

    n = int(result.images)
    clock = float(result.clock_hz)
    lat = (np.asarray(result.end_cycle) - np.asarray(result.start_cycle)).astype(np.float64)
    exit_t = np.asarray(result.exit_t)
    image_steps = max(int(exit_t.sum()), 1)
    dyn = result.energy["dynamic_pJ"]
    leak = result.energy["leakage_pJ"]
    total_pJ = float(result.energy["total_pJ"])
    seconds = result.total_cycles / clock
    comps = sorted(set(dyn) | set(leak))
    totals = result.totals
    sops = int(totals.get("pe_accumulations", 0)) + int(totals.get("exit_accumulations", 0))
    area = result.area_um2
    area_total_um2 = float(area["total"]) if "total" in area else float(sum(area.values()))
    arch = result.arch
    breakdown, busy, per = energy_breakdown(result), utilisation(result), per_image(result)
    summary = {
        "name": arch.get("name"),
        "kind": arch.get("kind"),
        "arch_path": Path(arch_path).name,
        "accelerators": int(arch.get("accelerators", 1)),
        "clock_hz": clock,
        "images": n,
        "start": int(result.start),
        "total_cycles": int(result.total_cycles),
        "fps": n / seconds if seconds else 0.0,
        "latency_us": per["latency_us"],  # the run JSON's per_image.latency_us
        "cycles_per_image": int(arch.get("accelerators", 1)) * result.total_cycles / n,
        "avg_timestep": float(exit_t.mean()),
        "median_exit_t": float(np.median(exit_t)),
        "exit_hist": np.bincount(exit_t, minlength=int(result.workload["timesteps"]) + 1)[1:].tolist(),
        "energy_per_image_uJ": total_pJ / n * 1e-6,
        "energy_per_image_timestep_uJ": total_pJ / image_steps * 1e-6,
        "energy_10k_images_J": total_pJ / n * 1e-12 * 10000,
        "dynamic_energy_per_image_uJ": per["dynamic_energy_uJ"],  # the run JSON's per_image values (1 fJ grid)
        "leakage_energy_per_image_uJ": per["leakage_energy_uJ"],
        "power_mW": total_pJ * 1e-12 / seconds * 1e3 if seconds else 0.0,
        "area_mm2": area_total_um2 * 1e-6,
        "edp_uJ_ms": total_pJ / n * 1e-6 * float(lat.mean()) / clock * 1e3,
        "sops_per_image": sops / n,
        "pJ_per_sop": breakdown["pJ_per_sop"],
        "dynamic_pJ_per_sop": breakdown["dynamic_pJ_per_sop"],
        "leakage_share": breakdown["leakage_share"],
        "energy_by_group_uJ": {g: {part: _grid(v["per_image"][f"{part}_pJ"] * 1e-6, UJ_PLACES)
                                   for part in ("dynamic", "leakage", "total")}
                               for g, v in breakdown["groups"].items()},
        "utilisation": busy,
        "pe_utilisation": busy["pe_array"]["busy"],
        "dram_channel_busy": busy["dram_channel_busy"],
        "dram_bytes_per_image": (int(totals.get("dram_read_bytes", 0)) + int(totals.get("dram_write_bytes", 0))) / n,
        "weight_fetch_reads": int(result.mapping["weight_fetch_reads"]),  # per pass over the weights; 0: resident
        "pe_busy_share": busy["pe_array"]["busy"],  # the same share as pe_utilisation (older study files name it)
        "memory_stall_share": busy["pe_array"]["stall_memory"],
        **_per_image_views(result),
        "energy_by_component_uJ": per["energy_by_component_uJ"],  # the run JSON's per_image (1 fJ grid)
        "accuracy": None,
        "accuracy_hardware": None,
        "neurobench": {k: v for k, v in neurobench(result).items() if k != "layers"},  # docs/results.md
        "timeline": None,
        "statistical": bool(result.statistical),
    }
    if result.labels is not None and (np.asarray(result.pred) >= 0).all():
        # the software prediction (eq. 10 or eq. 5), and the exit unit's own (the run JSON's metrics.accuracy)
        summary["accuracy"] = float((np.asarray(result.pred) == np.asarray(result.labels)).mean())
        summary["accuracy_hardware"] = float((np.asarray(result.pred_hw) == np.asarray(result.labels)).mean())
    for comp in comps:
        summary[f"energy_{comp}_uJ"] = summary["energy_by_component_uJ"][comp]
    for group, value in per["energy_by_group_uJ"].items():  # = the breakdown's per-image group totals
        summary[f"energy_group_{group}_uJ"] = value
    return summary


def _per_image_views(result: SimResult) -> dict:
    """Per image: energy by component (total, dynamic, leakage), by component and action, dynamic energy by
    layer (each on the run JSON's 1 fJ grid); cycles per layer per image-timestep; every action count."""
    import numpy as np

    from satasim_atsn.hw.per_image import UJ_PLACES, _grid

    n = int(result.images)
    image_steps = max(int(np.asarray(result.exit_t).sum()), 1)
    dyn, leak = result.energy["dynamic_pJ"], result.energy["leakage_pJ"]
    comps = sorted(set(dyn) | set(leak))

    def uj(pJ: float) -> float:  # per image on the run JSON's 1 fJ grid
        return _grid(pJ / n * 1e-6, UJ_PLACES)

    return {
        "dynamic_by_component_uJ": {c: uj(sum(dyn.get(c, {}).values())) for c in comps},
        "leakage_by_component_uJ": {c: uj(leak.get(c, 0.0)) for c in comps},
        "energy_by_action_uJ": {c: {k: uj(v) for k, v in sorted(dyn.get(c, {}).items())} for c in comps},
        "energy_by_layer_uJ": {ly["name"]: uj(sum(ly["dynamic_energy_pJ"].values())) for ly in result.layers},
        "layer_cycles_per_image_timestep": {ly["name"]: ly["cycles"] / image_steps for ly in result.layers},
        "actions_per_image": {k: v / n for k, v in sorted(result.totals.items())},
    }


def run_summary(arch_path: str, overrides: list[str], workload_path: str, images: int, start: int = 0,
                progress: Progress | None = None) -> dict:
    """Load, simulate and summarise one architecture on one workload (``progress``: the engine's hook)."""
    from satasim_atsn.hw.arch import read_arch
    from satasim_atsn.hw.engine import simulate

    arch = read_arch(arch_path, list(overrides))
    workload = read_cached(workload_path)
    result = simulate(arch, workload, images=images, start=start, progress=progress)
    return summarize(result, arch.source)


def simulate_metrics(arch_path: str, overrides: list[str], workload_path: str, images: int, start: int,
                     metrics: list[str]) -> dict:
    """The metrics of one engine study point."""
    summary = run_summary(arch_path, overrides, workload_path, images, start)
    return {m: summary.get(m) for m in metrics}
