"""Values a user can compare: per-image figures and NeuroBench's metrics, from a run's own counters.

``model_statics(mapping, workload)`` fixes, once per run, what the counters cannot tell: each
group's dense synaptic connections and its parameter bytes. ``per_image(result)`` and
``neurobench(result)`` then divide the run's counters by the number of images (NeuroBench's
per-sample normalisation). How each NeuroBench metric maps onto the counters, and where this
hardware's counting differs from a NeuroBench harness, is docs/results.md. Every float derived
from a float sum is rounded to a fixed decimal grid, so the JSON bytes cannot move with summation
order; counts divided by the number of images are exact quotients of integers.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from satasim_atsn.hw.energy import COMPONENTS, ENERGY_GROUPS, GROUP_COMPONENTS
from satasim_atsn.workload.schema import WEIGHTED_TYPES, is_spiking

if TYPE_CHECKING:
    from satasim_atsn.hw.mapping import Mapping
    from satasim_atsn.workload.format import Workload

#: bit planes of a direct-encoded uint8 image: the first layer runs them as 8 binary spike planes
IMAGE_BITS = 8
#: the per-layer columns (NeuroBench's names), in CSV order
LAYER_METRICS = ("Effective_MACs", "Effective_ACs", "Dense", "ActivationSparsity", "MembraneUpdates", "Footprint")
UJ_PLACES = 9  # energies in uJ on a 1e-9 uJ (1 fJ) grid
RATIO_PLACES = 12


def _grid(value: float, places: int) -> float:
    """``value`` rounded to ``places`` decimals (correctly rounded: the same bytes on any machine)."""
    return float(round(float(value), places)) + 0.0  # + 0.0 turns -0.0 into 0.0


def _axis_coverage(size_in: int, size_out: int, kernel: int, stride: int, padding: int) -> int:
    """Sum over input positions of the output positions whose window holds them (one axis, borders exact)."""
    out = np.arange(size_out)[:, None] * stride - padding + np.arange(kernel)[None, :]
    return int(((out >= 0) & (out < size_in)).sum())


def _connections(inp, out_shape: tuple[int, ...]) -> int:
    """Synapses from every position of one group input to the group's neurons (zero weights included)."""
    neurons = int(np.prod(out_shape))
    if inp.coverage == "identity":
        return neurons
    if inp.coverage == "conv":
        (h_in, w_in), cout = inp.spatial, int(out_shape[0])
        h_out, w_out = (int(out_shape[1]), int(out_shape[2])) if len(out_shape) == 3 else (1, 1)
        return (int(inp.shape[0]) * cout * _axis_coverage(h_in, h_out, inp.kernel, inp.stride, inp.padding)
                * _axis_coverage(w_in, w_out, inp.kernel, inp.stride, inp.padding))
    return inp.size * neurons  # linear / output: every input reaches every neuron


def _parameters(layer: dict, workload) -> dict[str, int | None]:
    """A layer's parameters as the workload format stores them (int8 weights, int32 biases and thresholds):
    their count, bytes, weights and zero weights. A statistical workload counts what a trained one of its
    topology stores, and has no weight values (``zero_weights`` None)."""
    name, channels = layer["name"], int(layer["out_shape"][0])
    if not workload.is_statistical:
        arrays = [workload.arrays[key] for key in (f"w/{name}", f"b/{name}", f"vth/{name}") if key in workload.arrays]
        weights = workload.arrays.get(f"w/{name}")
        return {"count": sum(int(a.size) for a in arrays), "bytes": sum(int(a.nbytes) for a in arrays),
                "weights": 0 if weights is None else int(weights.size),
                "zero_weights": 0 if weights is None else int(np.count_nonzero(weights == 0))}
    weights = stored = 0
    if layer["type"] in WEIGHTED_TYPES:
        from satasim_atsn.workload.schema import weight_shape

        weights = int(np.prod(weight_shape(layer)))
    if is_spiking(layer) or layer["type"] == "output":
        stored += channels  # bias currents
    if is_spiking(layer):
        stored += channels  # thresholds
    return {"count": weights + stored, "bytes": weights + 4 * stored, "weights": weights, "zero_weights": None}


def model_statics(mapping: Mapping, workload: Workload) -> list[dict]:
    """Per group (mapping order): dense connections per timestep, per image (bit-serial image inputs), bytes."""
    by_name = {ly["name"]: ly for ly in workload.layers}
    out = []
    for group in mapping.groups:
        per_step = per_image = 0
        if group.kind != "pool":  # NeuroBench counts no pooling operations
            for inp in group.inputs:
                conn = _connections(inp, tuple(group.out_shape))
                if inp.encoding == "image":  # computed once per image, as 8 binary bit planes
                    per_image += IMAGE_BITS * conn
                else:
                    per_step += conn
        params = [_parameters(by_name[n], workload) for n in group.layers]
        out.append({
            "group": group.index,
            "dense_per_timestep": int(per_step),
            "dense_per_image": int(per_image),
            "parameter_bytes": sum(p["bytes"] for p in params),
            "parameters": sum(p["count"] for p in params),
            "weights": sum(p["weights"] for p in params),
            "zero_weights": None if any(p["zero_weights"] is None for p in params) else
            sum(p["zero_weights"] for p in params),
            "spiking": bool(group.spiking),  # False: the output layer on the PEs (updates, never spikes)
        })
    return out


#: the counters whose sum is the synaptic operations (NeuroBench's Effective_ACs, docs/results.md)
SOP_ACTIONS = ("pe_accumulations", "exit_accumulations")


def synaptic_operations(totals: dict[str, int]) -> int:
    """Synaptic operations of a run: every accumulation of a weight into a membrane (NeuroBench's Effective_ACs)."""
    return sum(int(totals.get(name, 0)) for name in SOP_ACTIONS)


FJ_PER_PJ = 1000
PARTS = ("dynamic", "leakage")


def component_fJ(result) -> dict[str, dict[str, int]]:
    """Dynamic and leakage energy of every component in whole fJ (missing components count 0)."""
    dyn, leak = result.energy["dynamic_pJ"], result.energy["leakage_pJ"]
    return {c: {"dynamic": round(float(sum(dyn.get(c, {}).values())) * FJ_PER_PJ),
                "leakage": round(float(leak.get(c, 0.0)) * FJ_PER_PJ)} for c in COMPONENTS}


def group_fJ(result) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """Per energy group, its dynamic and leakage energy in whole fJ over the run, and per image (each part divided
    by the images and rounded, ties to even): the one rounding that ``per_image`` and ``energy_breakdown`` share,
    so their per-image group energies are the same numbers."""
    n = int(result.images)
    comps = component_fJ(result)
    run = {g: {part: sum(comps[c][part] for c in GROUP_COMPONENTS[g]) for part in PARTS} for g in ENERGY_GROUPS}
    per = {g: {part: round(Fraction(v, n)) for part, v in parts.items()} for g, parts in run.items()}
    return run, per


def _component_pJ(result) -> dict[str, float]:
    dyn, leak = result.energy["dynamic_pJ"], result.energy["leakage_pJ"]
    return {c: float(sum(dyn.get(c, {}).values())) + float(leak.get(c, 0.0)) for c in sorted(set(dyn) | set(leak))}


def per_image(result) -> dict[str, Any]:
    """Per-image values beside the run's totals: energy (total, dynamic, leakage, per component and per
    group), latency, accelerator-cycles, timesteps, synaptic operations, DRAM bytes and every action count."""
    n = int(result.images)
    total_pJ = float(result.energy["total_pJ"])
    leak_pJ = float(sum(result.energy["leakage_pJ"].values()))
    comps = _component_pJ(result)
    _, groups_fJ = group_fJ(result)
    lat = np.asarray(result.end_cycle, dtype=np.int64) - np.asarray(result.start_cycle, dtype=np.int64)
    totals = result.totals
    accelerators = len(result.per_accelerator)

    def uj(pJ: float) -> float:
        return _grid(pJ / n * 1e-6, UJ_PLACES)

    return {
        "images": n,
        "energy_uJ": uj(total_pJ),
        "dynamic_energy_uJ": uj(total_pJ - leak_pJ),
        "leakage_energy_uJ": uj(leak_pJ),
        "energy_by_component_uJ": {c: uj(v) for c, v in comps.items()},
        "energy_by_group_uJ": {g: _grid(Fraction(parts["dynamic"] + parts["leakage"], 10**9), UJ_PLACES)
                               for g, parts in groups_fJ.items()},  # = energy_breakdown's per-image group totals
        "latency_cycles": int(lat.sum()) / n,
        "latency_us": _grid(int(lat.sum()) / n / result.clock_hz * 1e6, 9),
        "accelerator_cycles": accelerators * int(result.total_cycles) / n,
        "timesteps": int(np.asarray(result.exit_t).sum()) / n,
        "sops": synaptic_operations(totals) / n,
        "dram_bytes": (int(totals.get("dram_read_bytes", 0)) + int(totals.get("dram_write_bytes", 0))) / n,
        "actions": {k: int(v) / n for k, v in sorted(totals.items())},
    }


def _group_counts(result) -> list[dict[str, int]]:
    """Integer totals per group over the run: ACs, dense operations, membrane updates, neuron-steps, spikes."""
    n = int(result.images)
    steps = int(np.asarray(result.exit_t).sum())
    out = []
    for row, static in zip(result.layers, result.model, strict=True):
        counts = row["counts"]
        out.append({
            "acs": int(counts["pe_accumulations"]) + int(counts["exit_accumulations"]),
            "image_acs": int(counts["pe_accumulations"]) if static["dense_per_image"] else 0,
            "dense": static["dense_per_timestep"] * steps + static["dense_per_image"] * n,
            "updates": int(counts["pe_fire_updates"]) + int(counts["exit_updates"]),
            # spiking neurons x timesteps they ran (not the output layer's updates on the PEs)
            "neuron_steps": int(counts["pe_fire_updates"]) if static["spiking"] else 0,
            "spikes": int(counts["pe_spikes_out"]),
            "bytes": int(static["parameter_bytes"]),
        })
    return out


def _connection_sparsity(statics: list[dict]) -> float | None:
    """NeuroBench's ConnectionSparsity: the share of zero weights over every weighted layer (None without
    weight values: a statistical workload)."""
    weights = sum(int(s["weights"]) for s in statics)
    if not weights or any(s["zero_weights"] is None for s in statics):
        return None
    return _grid(sum(int(s["zero_weights"]) for s in statics) / weights, RATIO_PLACES)


def _sparsity(spikes: int, neuron_steps: int) -> float | None:
    return _grid(1.0 - spikes / neuron_steps, RATIO_PLACES) if neuron_steps else None


def neurobench_layers(result) -> list[dict[str, Any]]:
    """One row per group with NeuroBench's metric names, per sample (sparsity is a ratio, Footprint bytes)."""
    n = int(result.images)
    return [
        {
            "group": row["group"],
            "name": row["name"],
            "kind": row["kind"],
            "Effective_MACs": 0.0,
            "Effective_ACs": c["acs"] / n,
            "Dense": c["dense"] / n,
            "ActivationSparsity": _sparsity(c["spikes"], c["neuron_steps"]),
            "MembraneUpdates": c["updates"] / n,
            "Footprint": c["bytes"],
        }
        for row, c in zip(result.layers, _group_counts(result), strict=True)
    ]


def neurobench(result) -> dict[str, Any]:
    """NeuroBench's workload and static metrics of the run, per sample (docs/results.md says how each is counted)."""
    n = int(result.images)
    groups = _group_counts(result)

    def total(key: str) -> int:
        return sum(c[key] for c in groups)

    out: dict[str, Any] = {
        "samples": n,
        "SynapticOperations": {"Effective_MACs": 0.0, "Effective_ACs": total("acs") / n, "Dense": total("dense") / n},
        "ActivationSparsity": _sparsity(total("spikes"), total("neuron_steps")),
        "MembraneUpdates": total("updates") / n,
        "Footprint": total("bytes"),
        "ParameterCount": sum(int(s["parameters"]) for s in result.model),
        "ConnectionSparsity": _connection_sparsity(result.model),
        "ClassificationAccuracy": None,
        "bit_serial_input_ACs": total("image_acs") / n,
        "layers": neurobench_layers(result),
    }
    labels = result.labels
    if labels is not None and (np.asarray(result.pred_hw) >= 0).all():
        correct = int((np.asarray(result.pred_hw) == np.asarray(labels)).sum())
        out["ClassificationAccuracy"] = correct / n
    return out


def neurobench_csv(result) -> str:
    """The per-layer NeuroBench rows as CSV (one row per group, then a ``total`` row)."""
    import csv
    import io

    block = neurobench(result)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["group", "name", "kind", *LAYER_METRICS])

    def cell(value) -> str:
        return "" if value is None else repr(value) if isinstance(value, float) else str(value)

    for row in block["layers"]:
        writer.writerow([row["group"], row["name"], row["kind"], *(cell(row[m]) for m in LAYER_METRICS)])
    syn = block["SynapticOperations"]
    writer.writerow(["total", "", "", cell(syn["Effective_MACs"]), cell(syn["Effective_ACs"]), cell(syn["Dense"]),
                     cell(block["ActivationSparsity"]), cell(block["MembraneUpdates"]), cell(block["Footprint"])])
    return buf.getvalue()
