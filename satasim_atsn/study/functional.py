"""Functional (algorithm-only) evaluation of exit policies on trained workloads.

One full-T integer forward per (workload, image range) gives every image's output at every
timestep and its synaptic operations per timestep; any exit policy is then evaluated after the
fact (``evaluate_policies``), which is what makes 625-point CL_init x tau_CL maps cheap.

Complexity (eq. 19) is counted per image by the integer forward (``ForwardResult.sops_per_image``,
``snn/complexity.py``): for every weighted layer, each input spike costs the number of weights it
reaches (exact at borders); a direct-encoded image's first layer is counted once per image as
bit-serial accumulations (one per set pixel bit in a receptive field), as the accelerator computes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from satasim_atsn.errors import StudyError
from satasim_atsn.hw.exit_units import EXIT_UNITS
from satasim_atsn.snn.complexity import ops_until_exit
from satasim_atsn.snn.exit_policies import ExitPolicy, FixedPolicy
from satasim_atsn.snn.forward import ForwardResult, predictions_at, run_forward
from satasim_atsn.workload.format import Workload, read_workload


@dataclass
class FullRun:
    """A full-T forward of a trained workload plus per-image synaptic operations per timestep."""

    workload: Workload
    result: ForwardResult
    labels: np.ndarray | None
    sops: np.ndarray  # [N, T] int64, synaptic ops of image n at timestep t (eq. 19 terms)

    @property
    def T(self) -> int:
        return self.workload.timesteps

    @property
    def mode(self) -> str:
        return str(self.workload.layers[-1]["output_mode"])

    def fixed_t_accuracy(self) -> list[float | None]:
        """Accuracy if every image stopped at t = 1..T."""
        n = self.result.num_images
        out: list[float | None] = []
        for t in range(1, self.T + 1):
            pred = predictions_at(self.result, np.full(n, t, dtype=np.int64), self.mode)
            out.append(None if self.labels is None else float((pred == self.labels).mean()))
        return out

    def sops_per_image(self, exit_t: np.ndarray) -> float:
        """Mean synaptic ops per image when image n stops at exit_t[n]."""
        return ops_until_exit(self.sops, exit_t) / max(len(exit_t), 1)

    def evaluate(self, policy: ExitPolicy) -> dict:
        """Accuracy, average timestep and complexity (relative to fixed T) under ``policy``."""
        exit_t = policy.exit_steps(self.result.logits, self.result.out_membrane, self.result.scale_per_t)
        pred = predictions_at(self.result, exit_t, self.mode)
        full = self.sops_per_image(np.full(self.result.num_images, self.T))
        return {
            "exit_t": exit_t,
            "accuracy": None if self.labels is None else float((pred == self.labels).mean()),
            "avg_timestep": float(exit_t.mean()),
            "complexity": self.sops_per_image(exit_t) / full if full else float("nan"),
            "pred": pred,
        }


_CACHE: dict[tuple, FullRun] = {}


def full_run(workload_path: str | Path, start: int = 0, images: int | None = None, chunk: int = 200) -> FullRun:
    """The full-T forward of images [start, start+images) of a trained workload (cached per process)."""
    path = Path(workload_path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, start, images)
    if key in _CACHE:
        return _CACHE[key]
    workload = read_workload(path)
    if workload.is_statistical:
        raise StudyError.at(str(path), "meta.kind", "is statistical: it has no outputs to evaluate exit policies on",
                            "use a trained workload (e.g. workloads/vgg_small_fmnist_atsn.npz)")
    if not workload.has_output:
        raise StudyError.at(str(path), f"layers ({workload.layers[-1]['name']})", "ends in a spiking layer (no "
                            "output layer): exit policies have no output to evaluate", "use a workload whose "
                            "network ends in an output layer")
    total = workload.num_images
    count = total - start if images is None else min(images, total - start)
    if count <= 0:
        raise StudyError.at(str(path), "images", f"start {start} is past the {total} images of the workload",
                            "lower start")
    results, sops = [], []
    for lo in range(start, start + count, chunk):
        hi = min(lo + chunk, start + count)
        x = workload.inputs(lo, hi)
        res = run_forward(workload, x, policy=FixedPolicy())
        sops.append(res.sops_per_image.astype(np.int64))
        results.append(res)
    merged = _merge(results)
    labels = workload.labels()
    run = FullRun(workload=workload, result=merged, labels=None if labels is None else labels[start: start + count],
                  sops=np.concatenate(sops, axis=0))
    _CACHE.clear()
    _CACHE[key] = run
    return run


def _merge(results: list[ForwardResult]) -> ForwardResult:
    first = results[0]
    if len(results) == 1:
        return first
    cat = lambda name: np.concatenate([getattr(r, name) for r in results], axis=0)  # noqa: E731
    return ForwardResult(
        out_membrane=cat("out_membrane"), logits=cat("logits"), exit_t=cat("exit_t"), pred=cat("pred"),
        pred_hw=cat("pred_hw"), scale_per_t=first.scale_per_t,
        spike_counts={k: sum(r.spike_counts[k] for r in results) for k in first.spike_counts},
        sops={k: sum(r.sops[k] for r in results) for k in first.sops}, neurons=first.neurons, policy=first.policy,
    )


def policies_for(params: dict) -> tuple[ExitPolicy, ExitPolicy | None]:
    """(float rule, hardware rule or None) from exit-unit fields (kind, cl_init, tau_cl, theta, exp_lut_entries)."""
    kind = params.get("exit_unit.kind", "at")
    unit = EXIT_UNITS.get(kind)
    if unit is None:
        raise StudyError.at(None, "exit_unit.kind", f"unknown kind {kind!r}", f"use {', '.join(EXIT_UNITS)}")
    fields = {k.removeprefix("exit_unit."): v for k, v in params.items() if k.startswith("exit_unit.")}
    return unit.software_policy(fields), unit.hardware_policy(fields)


def functional_metrics(workload_path: str | Path, start: int, images: int, params: dict, metrics: list[str]) -> dict:
    """The functional metrics of one study point (exit-unit parameters ``params``)."""
    run = full_run(workload_path, start, images)
    soft, hard = policies_for(params)
    sw = run.evaluate(soft)
    values = {"accuracy": sw["accuracy"], "avg_timestep": sw["avg_timestep"], "complexity": sw["complexity"]}
    if hard is not None:
        hw = run.evaluate(hard)
        values["accuracy_hw_rule"] = hw["accuracy"]
        values["avg_timestep_hw_rule"] = hw["avg_timestep"]
        values["hw_float_disagreement"] = float((hw["exit_t"] != sw["exit_t"]).mean())
        rows = np.arange(run.result.num_images)
        pred_hw = run.result.out_membrane[rows, sw["exit_t"] - 1].argmax(axis=-1)
        values["pred_hw_differs"] = float((pred_hw != sw["pred"]).mean())
    else:
        for name in ("accuracy_hw_rule", "avg_timestep_hw_rule", "hw_float_disagreement", "pred_hw_differs"):
            values[name] = None
    return {m: values[m] for m in metrics}
