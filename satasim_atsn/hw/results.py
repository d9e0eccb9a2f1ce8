"""Simulation results: the SimResult dataclass, its exact counters, summary text, JSON and CSV writers.

``SimResult.counters()`` returns exactly the counters of docs/microarchitecture.md section 9, as
plain ints and lists, in this shape (what ``hw/reference.py`` returns too)::

    {
      "total_cycles": int,
      "dram_busy_cycles": int,                # cycles the shared DRAM channel is occupied
      "images": {"start_cycle": [..], "end_cycle": [..], "exit_t": [..], "accelerator": [..]},
      "accelerators": [                       # one entry per accelerator, in index order
        {"pe": {"busy": [P ints], "stall_input": [..], "stall_output": [..],
                "stall_memory": [..], "idle": [..]},
         "exit_unit": {"busy": int, "stall_input": int, "idle": int},
         "actions": {name: int for name in ACTIONS}},
      ],
    }
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from satasim_atsn.errors import SatasimError, shown
from satasim_atsn.fileio import atomic_write_text, check_output_path
from satasim_atsn.hw.breakdown import energy_breakdown, utilisation
from satasim_atsn.hw.energy import (
    ACTIONS,
    ENERGY_GROUPS,
    GROUP_COMPONENTS,
    compute_area,
    compute_energy,
    leakage_power_mW,
)
from satasim_atsn.hw.per_image import component_fJ, model_statics, neurobench, neurobench_csv, per_image

CSV_FILES = ("layers.csv", "images.csv", "neurobench.csv")  # what `run --csv DIR` writes
PE_STATES = ("busy", "stall_input", "stall_output", "stall_memory", "idle")
STATISTICAL_NOTE = (
    "NOTE: statistical workload: its spikes are synthesised from per-layer firing rates and exit histograms, "
    "not computed by a trained network."
)

if TYPE_CHECKING:
    from satasim_atsn.hw.arch import Arch
    from satasim_atsn.hw.mapping import Mapping
    from satasim_atsn.workload.format import Workload


def _plain(value: Any) -> Any:
    """numpy scalars/arrays -> plain Python, recursively (JSON-ready)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _digits(value: float, decimals: int) -> str:
    """``value`` with ``decimals`` decimals, or 3 significant digits where those decimals would print a value that
    is not 0 as 0 (0.0024 FPS of a design at 1 kHz is not '0.0 FPS')."""
    text = f"{value:.{decimals}f}"
    return f"{value:.3g}" if value != 0 and float(text) == 0 else text


@dataclass
class AcceleratorTotals:
    """One accelerator's accumulated state counters and action counts (filled by the engine's scheduler)."""

    num_pes: int
    groups: int
    busy: np.ndarray = field(init=False)
    stall_input: np.ndarray = field(init=False)
    stall_memory: int = 0
    exit_busy: int = 0
    exit_stall_input: int = 0
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.busy = np.zeros(self.num_pes, dtype=np.int64)
        self.stall_input = np.zeros(self.num_pes, dtype=np.int64)
        self.counts = np.zeros(len(ACTIONS), dtype=np.int64)


@dataclass(frozen=True)
class RunSummary:
    """What a timing model hands to :meth:`SimResult.build`: per-image cycles and per-accelerator/group totals."""

    total_cycles: int
    start_cycle: np.ndarray
    end_cycle: np.ndarray
    exit_t: np.ndarray
    accelerator: np.ndarray
    accelerators: list[AcceleratorTotals]
    group_cycles: np.ndarray  # [G]
    group_busy: np.ndarray  # [G] PE busy cycles per group
    group_counts: np.ndarray  # [G, len(ACTIONS)]
    dram_busy_cycles: int  # cycles the shared DRAM channel is occupied (latency + transfer of every transaction)


@dataclass
class SimResult:
    """Everything one simulation measured; ``to_dict()`` is deterministic."""

    arch: dict
    workload: dict
    images: int
    start: int
    clock_hz: float
    total_cycles: int
    start_cycle: np.ndarray
    end_cycle: np.ndarray
    exit_t: np.ndarray
    accelerator: np.ndarray
    pred: np.ndarray
    pred_hw: np.ndarray
    labels: np.ndarray | None
    per_accelerator: list[dict]
    layers: list[dict]
    totals: dict[str, int]
    energy: dict
    area_um2: dict
    leakage_mW: dict
    mapping: dict
    statistical: bool = False
    timing: dict = field(default_factory=dict)
    model: list = field(default_factory=list)  # per group: dense connections and parameter bytes (hw/per_image.py)
    dram_busy_cycles: int = 0  # cycles the shared DRAM channel is occupied (docs/microarchitecture.md section 9)
    notes: list[str] = field(default_factory=list)  # what `satasim run` printed as "note: ..." (in the JSON too)

    # --- construction -------------------------------------------------------------------
    @classmethod
    def build(cls, arch: Arch, workload: Workload, mapping: Mapping, start: int, summary: RunSummary,
              pred: np.ndarray, pred_hw: np.ndarray, labels: np.ndarray | None) -> SimResult:
        """Assemble a result from a timing model's run summary (energy from hw.energy)."""
        total = summary.total_cycles
        per_acc = [_accelerator_record(tot, mapping.num_pes, total) for tot in summary.accelerators]
        totals = {name: int(sum(acc["actions"][name] for acc in per_acc)) for name in ACTIONS}
        energy = compute_energy(arch, totals, total)
        layers = [_group_record(arch, g, summary) for g in mapping.groups]
        map_info = {
            "num_pes": mapping.num_pes,
            "capacity_neurons": mapping.capacity_neurons,
            "membranes_resident": mapping.membranes_resident,
            "weights_resident": mapping.weights_resident,
            "total_weight_bytes": mapping.total_weight_bytes,
            "weight_fetch_reads": mapping.weight_fetch_reads,
            "weight_fetch_reads_after_first_step": mapping.weight_fetch_reads_after_first_step,
            "groups": [
                {"name": g.name, "kind": g.kind, "folds": len(g.folds), "weight_bytes": g.weight_bytes}
                for g in mapping.groups
            ],
        }
        return cls(
            arch=arch.to_dict(),
            workload={
                "name": workload.name,
                "kind": workload.kind,
                "dataset": workload.meta.get("dataset"),
                "timesteps": workload.timesteps,
                "num_classes": workload.num_classes,
                "source": Path(workload.source).name,
            },
            images=int(summary.start_cycle.shape[0]),
            start=int(start),
            clock_hz=float(arch.clock_hz),
            total_cycles=total,
            start_cycle=summary.start_cycle,
            end_cycle=summary.end_cycle,
            exit_t=summary.exit_t,
            accelerator=summary.accelerator,
            pred=np.asarray(pred),
            pred_hw=np.asarray(pred_hw),
            labels=None if labels is None else np.asarray(labels),
            per_accelerator=per_acc,
            layers=layers,
            totals=totals,
            energy={
                "dynamic_pJ": _plain(energy.dynamic_pJ),
                "leakage_pJ": _plain(energy.leakage_pJ),
                "total_pJ": float(energy.total_pJ),
            },
            area_um2=_plain(compute_area(arch)),
            leakage_mW=_plain(leakage_power_mW(arch)),
            mapping=map_info,
            statistical=workload.is_statistical,
            model=model_statics(mapping, workload),
            dram_busy_cycles=int(summary.dram_busy_cycles),
        )

    # --- derived metrics ------------------------------------------------------------------
    @property
    def seconds(self) -> float:
        """Makespan in seconds."""
        return self.total_cycles / self.clock_hz

    def metrics(self) -> dict:
        """Headline metrics: FPS, latency, energy per image, power, EDP, utilisation, accuracy."""
        n = self.images
        lat = (self.end_cycle - self.start_cycle).astype(np.float64)
        total_pJ = self.energy["total_pJ"]
        leak_pJ = float(sum(self.energy["leakage_pJ"].values()))
        image_steps = int(self.exit_t.sum())
        busy = sum(int(a["pe"]["busy"].sum()) for a in self.per_accelerator)
        pe_cycles = len(self.per_accelerator) * len(self.per_accelerator[0]["pe"]["busy"]) * self.total_cycles
        stalls = {
            state: int(sum(int(a["pe"][state].sum()) for a in self.per_accelerator))
            for state in ("stall_input", "stall_output", "stall_memory")
        }
        out: dict[str, Any] = {
            "images": n,
            "total_cycles": self.total_cycles,
            "seconds": self.seconds,
            "fps": n / self.seconds if self.total_cycles else 0.0,
            "latency_cycles": {"mean": float(lat.mean()), "min": int(lat.min()), "max": int(lat.max())},
            "latency_ms": {
                "mean": float(lat.mean()) / self.clock_hz * 1e3,
                "min": float(lat.min()) / self.clock_hz * 1e3,
                "max": float(lat.max()) / self.clock_hz * 1e3,
            },
            "avg_timestep": float(self.exit_t.mean()),
            "exit_histogram": np.bincount(self.exit_t, minlength=int(self.workload["timesteps"]) + 1)[1:].tolist(),
            "energy_total_pJ": total_pJ,
            "energy_dynamic_pJ": total_pJ - leak_pJ,
            "energy_leakage_pJ": leak_pJ,
            "energy_per_image_uJ": total_pJ / n * 1e-6,
            "energy_per_image_timestep_uJ": total_pJ / max(image_steps, 1) * 1e-6,
            "average_power_mW": total_pJ * 1e-12 / self.seconds * 1e3 if self.total_cycles else 0.0,
            # energy-delay product of one image (energy per image x mean image latency, as `compare` and
            # docs/studies.md define it), so it does not grow with the number of images run
            "edp_J_s": total_pJ / n * 1e-12 * (float(lat.mean()) / self.clock_hz),
            "area_mm2": float(self.area_um2["total"]) * 1e-6,
            "pe_utilisation": busy / pe_cycles if pe_cycles else 0.0,
            "pe_stall_cycles": stalls,
            "energy_by_component_pJ": {
                comp: float(sum(self.energy["dynamic_pJ"].get(comp, {}).values()))
                + float(self.energy["leakage_pJ"].get(comp, 0.0))
                for comp in sorted(set(self.energy["dynamic_pJ"]) | set(self.energy["leakage_pJ"]))
            },
        }
        if self.labels is not None and (self.pred >= 0).all():
            out["accuracy"] = {
                "software": float((self.pred == self.labels).mean()),
                "hardware": float((self.pred_hw == self.labels).mean()),
                "predictions_differ": int((self.pred != self.pred_hw).sum()),
            }
        return out

    # --- exports --------------------------------------------------------------------------
    def counters(self) -> dict:
        """Exactly the counters of docs/microarchitecture.md section 9 (plain ints/lists)."""
        return _plain(
            {
                "total_cycles": self.total_cycles,
                "dram_busy_cycles": self.dram_busy_cycles,
                "images": {
                    "start_cycle": self.start_cycle,
                    "end_cycle": self.end_cycle,
                    "exit_t": self.exit_t,
                    "accelerator": self.accelerator,
                },
                "accelerators": [
                    {
                        "pe": {state: a["pe"][state] for state in PE_STATES},
                        "exit_unit": dict(a["exit_unit"]),
                        "actions": dict(a["actions"]),
                    }
                    for a in self.per_accelerator
                ],
            }
        )

    def to_dict(self, timing: bool = False) -> dict:
        """Deterministic JSON-ready dict (no dates or wall-clock timings unless ``timing``)."""
        out = {
            "note": STATISTICAL_NOTE if self.statistical else None,
            "notes": list(self.notes),
            "arch": self.arch,
            "workload": self.workload,
            "start": self.start,
            "metrics": self.metrics(),
            "per_image": per_image(self),
            "neurobench": neurobench(self),
            "energy_breakdown": energy_breakdown(self),
            "utilisation": utilisation(self),
            "counters": self.counters(),
            "totals": self.totals,
            "energy": self.energy,
            "area_um2": self.area_um2,
            "leakage_mW": self.leakage_mW,
            "layers": self.layers,
            "mapping": self.mapping,
            "predictions": {"software": self.pred, "hardware": self.pred_hw},
        }
        if timing and self.timing:
            out["timing"] = self.timing
        return _plain(out)

    def to_json(self, timing: bool = False) -> str:
        """The JSON text: sorted keys, stable float repr."""
        return json.dumps(self.to_dict(timing), sort_keys=True, indent=1, allow_nan=False) + "\n"

    def write_json(self, path: str | Path, timing: bool = False) -> None:
        """Write the JSON atomically; a path the CLI's --json would refuse (a folder, ``out/``) is refused alike."""
        _check_api_output(path, "path", is_dir=False)
        atomic_write_text(path, self.to_json(timing))

    def layers_csv(self) -> str:
        """One row per group: cycles, busy cycles, action counts and dynamic energy per component."""
        comps = sorted({c for row in self.layers for c in row["dynamic_energy_pJ"]})
        header = ["group", "name", "kind", "layers", "neurons", "folds", "cycles", "pe_busy_cycles"]
        header += list(ACTIONS) + [f"energy_{c}_pJ" for c in comps]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        for row in self.layers:
            writer.writerow(
                [row["group"], row["name"], row["kind"], "+".join(row["layers"]), row["neurons"], row["folds"]]
                + [row["cycles"], row["pe_busy_cycles"]]
                + [row["counts"][a] for a in ACTIONS]
                + [repr(float(row["dynamic_energy_pJ"].get(c, 0.0))) for c in comps]
            )
        return buf.getvalue()

    def images_csv(self) -> str:
        """One row per image: index, accelerator, start/end cycle, exit step, predictions, label."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["image", "accelerator", "start_cycle", "end_cycle", "exit_t", "pred", "pred_hw", "label"])
        for i in range(self.images):
            label = "" if self.labels is None else int(self.labels[i])
            writer.writerow(
                [
                    self.start + i,
                    int(self.accelerator[i]),
                    int(self.start_cycle[i]),
                    int(self.end_cycle[i]),
                    int(self.exit_t[i]),
                    int(self.pred[i]),
                    int(self.pred_hw[i]),
                    label,
                ]
            )
        return buf.getvalue()

    def csv_files(self, directory: str | Path) -> list[tuple[Path, str]]:
        """(path, text) of layers.csv, images.csv and neurobench.csv (per-layer NeuroBench metrics) in ``directory``."""
        directory = Path(directory)
        texts = [self.layers_csv(), self.images_csv(), neurobench_csv(self)]
        return [(directory / name, text) for name, text in zip(CSV_FILES, texts, strict=True)]

    def write_csv(self, directory: str | Path) -> list[Path]:
        """Write layers.csv, images.csv and neurobench.csv atomically (into ``directory``, made if missing)."""
        _check_api_output(directory, "directory", is_dir=True)
        files = self.csv_files(directory)
        for path, text in files:
            atomic_write_text(path, text)
        return [path for path, _ in files]

    def summary_text(self) -> str:
        """A readable summary; a statistical workload's first line says its spikes are synthesised."""
        m = self.metrics()
        lines = []
        if self.statistical:
            lines.append(STATISTICAL_NOTE)
        lines += [
            f"{self.arch['name']} on {self.workload['name']} ({self.workload['kind']}): {self.images} "
            f"image{'s' if self.images != 1 else ''} from #{self.start}, {len(self.per_accelerator)} accelerator(s) at "
            f"{self.clock_hz / 1e6:g} MHz",
            f"  makespan        {self.total_cycles:,} cycles = {_digits(self.seconds * 1e3, 3)} ms",
            f"  throughput      {_digits(m['fps'], 1)} FPS",
            f"  latency         mean {_digits(m['latency_ms']['mean'], 3)} ms "
            f"(min {_digits(m['latency_ms']['min'], 3)}, max {_digits(m['latency_ms']['max'], 3)})",
            f"  timesteps       mean {m['avg_timestep']:.3f}; exits per t {_exits_shown(m['exit_histogram'])}",
            f"  energy          {m['energy_per_image_uJ']:.2f} uJ/image, "
            f"{m['energy_per_image_timestep_uJ']:.2f} uJ/image-timestep, total {m['energy_total_pJ'] * 1e-12:.4g} J "
            f"(leakage {m['energy_leakage_pJ'] / max(m['energy_total_pJ'], 1e-30) * 100:.1f}%)",
            f"  power           {m['average_power_mW']:.1f} mW average; area {m['area_mm2']:.3f} mm2; "
            f"EDP {m['edp_J_s']:.3e} J*s",
        ]
        lines.append(self._mapping_line())
        lines += self._utilisation_lines()
        if "accuracy" in m:
            acc = m["accuracy"]
            lines.append(
                f"  accuracy        software {acc['software'] * 100:.2f}%, hardware {acc['hardware'] * 100:.2f}% "
                f"({_predictions_differ(acc['predictions_differ'])})"
            )
        nb = neurobench(self)
        syn = nb["SynapticOperations"]
        sparsity = "n/a" if nb["ActivationSparsity"] is None else f"{nb['ActivationSparsity']:.4f}"
        connections = "n/a" if nb["ConnectionSparsity"] is None else f"{nb['ConnectionSparsity']:.4f}"
        lines.append(f"  NeuroBench      per sample: Effective_ACs {syn['Effective_ACs']:,.1f}, "
                     f"Dense {syn['Dense']:,.1f}, MembraneUpdates {nb['MembraneUpdates']:,.1f}; "
                     f"ActivationSparsity {sparsity}; static: Footprint {nb['Footprint']:,} B, "
                     f"ParameterCount {nb['ParameterCount']:,}, ConnectionSparsity {connections}")
        lines += self._energy_table()
        lines.append("  per layer: cycles (all accelerators)")
        for row in self.layers:
            lines.append(f"    {row['name']:<16}{row['kind']:<6}{row['cycles']:>16,}")
        return "\n".join(lines)

    def _mapping_line(self) -> str:
        """Where weights and membranes live, and how many DRAM reads one pass over the weights takes."""
        mp = self.mapping
        buffer_bytes = int(self.arch["global_buffers"]["weight"]["bytes"])
        layer_major = self.arch.get("dataflow") == "layer_major"
        if mp["weights_resident"]:
            weights = f"resident in the {buffer_bytes:,} B weight buffer (loaded once per accelerator)"
        else:
            per = "batch" if layer_major else "batch-timestep"
            banks = int(self.arch["global_buffers"]["weight"]["banks"])
            later = mp.get("weight_fetch_reads_after_first_step", mp["weight_fetch_reads"])
            fewer = "" if layer_major or later == mp["weight_fetch_reads"] else \
                f" ({later:,} after t = 1)"
            weights = (f"not resident: {mp['weight_fetch_reads']:,} DRAM reads of up to {buffer_bytes:,} B "
                       f"per {per}{fewer}, read ahead into {banks} bank{'s' if banks > 1 else ''}")
        port = int(self.arch["global_buffers"]["weight"]["bytes_per_cycle"])
        link = int(self.arch["noc"]["link_bytes_per_cycle"])
        weights += f", streamed at {min(port, link)} B/cycle"
        if link < port:  # section 4 phase 2: the multicast enters the mesh over one link
            weights += f" (the NoC link's width; the weight port gives {port})"
        if mp["membranes_resident"]:
            membranes = "resident"
        elif layer_major:
            membranes = "kept in the PEs for all timesteps of each fold (layer_major)"
        else:
            membranes = "filled from and spilled to DRAM around each fold"
        return f"  mapping         weights {mp['total_weight_bytes']:,} B, {weights}; membranes {membranes}"

    def _utilisation_lines(self) -> list[str]:
        """PE-array states, exit unit, DRAM channel, global-buffer ports and NoC links (docs/results.md)."""
        u = utilisation(self)
        pe, eu = u["pe_array"], u["exit_unit"]
        # a design without an exit tile has no exit unit to be busy (its JSON keeps the key, idle throughout)
        exit_unit = f"exit unit {eu['busy']:.1%}" if int(self.arch["array"]["exit_unit_tiles"]) else "no exit unit"
        return [
            f"  PE utilisation  busy {pe['busy']:.1%}, stall_input {pe['stall_input']:.1%}, stall_output "
            f"{pe['stall_output']:.1%}, stall_memory {pe['stall_memory']:.1%}, idle {pe['idle']:.1%} of PE-cycles",
            f"  unit busy       {exit_unit}; DRAM channel {u['dram_channel_busy']:.1%} "
            f"(bandwidth {u['dram_bandwidth']:.1%}); buffer ports: weight read {u['weight_buffer_read_port']:.1%}, "
            f"spike read {u['input_buffer_read_port']:.1%}, spike write {u['output_buffer_write_port']:.1%}; "
            f"NoC links {u['noc_link_load']:.2%}",
        ]

    def _energy_table(self) -> list[str]:
        """Energy per image by group (components beneath), dynamic / leakage / total / share, and pJ per SOP."""
        eb, n, comps = energy_breakdown(self), self.images, component_fJ(self)
        labels = {"compute": "compute", "on_chip_memory": "on-chip memory", "noc": "NoC",
                  "dram": "DRAM (access, background)"}
        # the largest unit in which an image's energy is at least 1 (uJ for the paper's networks)
        unit, scale = next(((u, f) for u, f in (("uJ", 1e-6), ("nJ", 1e-3)) if eb["per_image"]["total_pJ"] * f >= 1),
                           ("pJ", 1.0))
        rows: list[tuple[str, list[str], float | None]] = []

        def row(label: str, dyn_pJ: float, leak_pJ: float, share: float | None) -> None:
            rows.append((label, [f"{v * scale:.3f}" for v in (dyn_pJ, leak_pJ, dyn_pJ + leak_pJ)], share))

        for g in ENERGY_GROUPS:
            per = eb["groups"][g]["per_image"]
            row(labels[g], per["dynamic_pJ"], per["leakage_pJ"], eb["groups"][g]["share"])
            if len(GROUP_COMPONENTS[g]) > 1:
                for c in GROUP_COMPONENTS[g]:
                    row(f"  {c}", comps[c]["dynamic"] / n * 1e-3, comps[c]["leakage"] / n * 1e-3, None)
        row("total", eb["per_image"]["dynamic_pJ"], eb["per_image"]["leakage_pJ"], 1.0)
        # 10 characters hold every shipped value; a larger one (joules per image) widens its columns, kept aligned
        w = max([10] + [len(cell) for _, cells, _ in rows for cell in cells])
        out = [f"{f'  energy per image ({unit})':<30}" + " ".join(f"{h:>{w}}" for h in ("dynamic", "leakage", "total"))
               + f" {'share':>7}"]
        out += [f"    {label:<26}" + " ".join(f"{cell:>{w}}" for cell in cells)
                + (f" {share:7.1%}" if share is not None else "") for label, cells, share in rows]
        if eb["pJ_per_sop"] is None:
            out.append("  pJ per SOP      n/a (no synaptic operations)")
        else:
            out.append(f"  pJ per SOP      {eb['pJ_per_sop']:.3f} (dynamic {eb['dynamic_pJ_per_sop']:.3f}; on chip "
                       f"{eb['on_chip_pJ_per_sop']:.3f}, on-chip dynamic {eb['on_chip_dynamic_pJ_per_sop']:.3f}); "
                       f"SOP = Effective_ACs, {eb['synaptic_operations_per_image']:,.0f} per image")
        return out


def _accelerator_record(tot: AcceleratorTotals, num_pes: int, total: int) -> dict:
    """One accelerator's PE and exit-unit state cycles and action counts, as SimResult.per_accelerator holds them."""
    stall_memory = np.full(num_pes, tot.stall_memory, dtype=np.int64)
    idle = total - tot.busy - tot.stall_input - stall_memory
    return {
        "pe": {
            "busy": tot.busy.copy(),
            "stall_input": tot.stall_input.copy(),
            "stall_output": np.zeros(num_pes, dtype=np.int64),
            "stall_memory": stall_memory,
            "idle": idle,
        },
        "exit_unit": {
            "busy": int(tot.exit_busy),
            "stall_input": int(tot.exit_stall_input),
            "idle": int(total - tot.exit_busy - tot.exit_stall_input),
        },
        "actions": {name: int(tot.counts[i]) for i, name in enumerate(ACTIONS)},
    }


def _check_api_output(path: object, argument: str, is_dir: bool) -> None:
    """An output path of the Python API checked as the CLI checks its --json and --csv (fileio.check_output_path):
    ``write_json("out/")`` wrote a file named ``out``, ``write_json(None)`` raised a TypeError, and ``write_csv`` onto
    a file said "cannot be written (File exists)" of a file inside it."""
    if not isinstance(path, (str, os.PathLike)):
        raise SatasimError.at(None, argument, f"is a {type(path).__name__} ({shown(path)}), not a path",
                              "give a " + ("directory" if is_dir else "file") + " path")
    check_output_path(path, argument, is_dir=is_dir)


def _group_record(arch, g, summary: RunSummary) -> dict:
    """One group's (layer's) cycles, counts and dynamic energy, as SimResult.layers holds them."""
    counts = {name: int(summary.group_counts[g.index, i]) for i, name in enumerate(ACTIONS)}
    dyn = compute_energy(arch, counts, 0)
    return {
        "group": g.index,
        "name": g.name,
        "kind": g.kind,
        "layers": list(g.layers),
        "neurons": g.neurons if g.kind != "pool" else int(np.prod(g.out_shape)),
        "folds": len(g.folds),  # as mapping.groups[].folds: a max-pool or exit group folds nothing onto the PEs (0)
        "cycles": int(summary.group_cycles[g.index]),
        "pe_busy_cycles": int(summary.group_busy[g.index]),
        "counts": counts,
        "dynamic_energy_pJ": {k: float(sum(v.values())) for k, v in sorted(dyn.dynamic_pJ.items())},
    }


def _predictions_differ(n: int) -> str:
    """How many software and hardware predictions differ, in words that agree with the count."""
    return f"{n} prediction differs" if n == 1 else f"{n} predictions differ"


def _exits_shown(exits: list[int], most: int = 16) -> str:
    """The exit histogram for the summary: every t up to ``most`` timesteps, else the timesteps where images exit
    (t: count), so that T = 1024 stays one readable line (the JSON keeps the whole list)."""
    if len(exits) <= most:
        return str(list(exits))
    used = [f"t={t}: {n}" for t, n in enumerate(exits, start=1) if n]
    shown = used if len(used) <= most else used[: most // 2] + [f"... {len(used) - most} more ..."] + used[-most // 2:]
    return "{" + ", ".join(shown) + "} (the rest 0)"
