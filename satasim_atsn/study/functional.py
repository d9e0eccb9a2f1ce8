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

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from satasim_atsn.errors import StudyError
from satasim_atsn.fileio import content_key
from satasim_atsn.hw.exit_units import EXIT_UNITS
from satasim_atsn.report.progress import progress_bar
from satasim_atsn.snn.complexity import ops_until_exit
from satasim_atsn.snn.exit_policies import ExitPolicy, FixedPolicy
from satasim_atsn.snn.forward import ForwardResult, predictions_at, run_forward
from satasim_atsn.workload.datasets import balanced_sample, with_test_split
from satasim_atsn.workload.format import Workload, read_workload


@dataclass
class FullRun:
    """A full-T forward of a trained workload plus per-image synaptic operations per timestep."""

    workload: Workload
    result: ForwardResult
    labels: np.ndarray | None
    sops: np.ndarray  # [N, T] int64, synaptic ops of image n at timestep t (eq. 19 terms)
    inputs: str = "embedded in the workload"  # or "the whole test split" of a dataset, or a sample of it

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
        """Accuracy, average timestep and complexity (relative to fixed T; None when the images do no synaptic
        operation at all, as a sweep's empty cell) under ``policy``."""
        exit_t = policy.exit_steps(self.result.logits, self.result.out_membrane, self.result.scale_per_t)
        pred = predictions_at(self.result, exit_t, self.mode)
        full = self.sops_per_image(np.full(self.result.num_images, self.T))
        return {
            "exit_t": exit_t,
            "accuracy": None if self.labels is None else float((pred == self.labels).mean()),
            "avg_timestep": float(exit_t.mean()),
            "complexity": self.sops_per_image(exit_t) / full if full else None,
            "pred": pred,
        }


@dataclass(frozen=True)
class TestSplit:
    """A dataset's whole test split, evaluated in place of a workload's embedded test images."""

    dataset: str
    data_dir: str | None = None
    image_size: int | None = None


# A reproduce run reads the same three networks in several parts (Table 1, 4, 5, figures). A cached
# forward holds its outputs and per-image counts (a few MB per 10,000 images) and its workload, with
# the test split's pixels when it runs on one (31 MB for CIFAR-10's), so a few stay cached.
_CACHE_ENTRIES = 4
_CACHE: dict[tuple, FullRun] = {}


def full_run(workload_path: str | Path, start: int = 0, images: int | None = None, chunk: int = 200,
             test_split: TestSplit | None = None, quiet: bool = True) -> FullRun:
    """The full-T forward of images [start, start+images) of a trained workload (cached per process).

    With ``test_split`` the images are that dataset's test split (``with_test_split``), not the inputs
    embedded in the workload: all of it, or with ``images`` a seeded class-balanced sample of that many
    (a dataset's test split may be sorted by class). A progress bar shows on a terminal unless ``quiet``.
    """
    path = Path(workload_path)
    path.stat()  # a missing file: the OSError callers name
    key = (content_key(path), start, images, test_split)  # a file rewritten keeping its size and time is read anew
    if key in _CACHE:
        return _CACHE[key]
    workload = read_workload(path)
    inputs = "embedded in the workload"
    if test_split is not None and not workload.is_statistical:
        workload, inputs = _on_test_split(workload, test_split, images)
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
    if test_split is None or workload.is_statistical:
        inputs += _fewer_than_asked(images, total - start)
    results, sops = [], []
    with progress_bar(count, desc=f"forward {path.name}", unit="img", quiet=quiet) as bar:
        for lo in range(start, start + count, chunk):
            hi = min(lo + chunk, start + count)
            x = workload.inputs(lo, hi)
            res = run_forward(workload, x, policy=FixedPolicy())
            sops.append(res.sops_per_image.astype(np.int64))
            results.append(res)
            bar.update(hi - lo)
    merged = _merge(results)
    labels = workload.labels(start, start + count)
    run = FullRun(workload=workload, result=merged, labels=labels,
                  sops=np.concatenate(sops, axis=0),
                  inputs=inputs)
    while len(_CACHE) >= _CACHE_ENTRIES:  # the oldest forward goes first
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = run
    return run


def _fewer_than_asked(images: int | None, available: int) -> str:
    """'; --images 5000 asked for more: all 1000 used' when a report would otherwise show fewer without a word."""
    if images is None or images <= available:
        return ""
    return f"; --images {images} asked for more: all {available} used"


def _on_test_split(workload: Workload, split: TestSplit, images: int | None) -> tuple[Workload, str]:
    """The workload on a dataset's test split (a seeded class-balanced sample of ``images``), and its label."""
    workload = with_test_split(workload, split.dataset, split.data_dir, split.image_size)
    total = workload.num_images
    if images is None or images >= total:
        return workload, "the whole test split" + _fewer_than_asked(images, total)
    idx = balanced_sample(workload.arrays["y"], images, seed=0)
    arrays = dict(workload.arrays, x=workload.arrays["x"][idx], y=workload.arrays["y"][idx])
    return (Workload(dict(workload.meta), arrays, workload.source),
            f"a seeded class-balanced sample of the {total}-image test split")


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
    """(float rule, hardware rule or None) from exit-unit fields (kind, cl_init, tau_cl, theta, exp_lut_entries,
    exp_frac_bits)."""
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


ALGORITHMS = ("SNN", "DTSNN", "ATSN")
DEFAULT_TRAINED_SET = "vgg_small_fmnist"
# How the shipped Fashion-MNIST set was trained; another set's hint names its files (workloads/README.md).
_FMNIST_HINT = "satasim train --model vgg_small --dataset fashion-mnist --method {method} -o {out}"


@dataclass(frozen=True)
class TrainedSet:
    """The trained networks the accuracy parts read (``PREFIX_{snn,dtsnn,atsn}.npz``) and their test images.

    ``test_split`` evaluates on a dataset's whole test split instead of the images embedded in each
    workload (a CIFAR-10 workload embeds at most 256).
    """

    prefix: str = DEFAULT_TRAINED_SET
    test_split: TestSplit | None = None
    quiet: bool = True
    #: '<file>: --images N asked for more: all M used' of the networks run since the caller last cleared it, for
    #: the terminal and results.json (the report says it in its data label)
    notes: list[str] = field(default_factory=list, compare=False, hash=False, repr=False)

    def file(self, algo: str) -> str:
        """The workload file name of one algorithm's network."""
        return f"{self.prefix}_{algo.lower()}.npz"

    def hint(self, algo: str, workload_dir: Path) -> str:
        """The command that trains the missing network of ``algo``."""
        if self.prefix == DEFAULT_TRAINED_SET:
            return _FMNIST_HINT.format(method=algo.lower(), out=(workload_dir / self.file(algo)).as_posix())
        return (f"satasim train --method {algo.lower()} [the --model, --width, --dataset and --epochs of the other "
                f"networks of this set] -o {workload_dir / self.file(algo)}")

    def run(self, path: Path, images: int | None) -> FullRun:
        """The full-T forward of one workload of the set on its test images."""
        run = full_run(path, 0, images, test_split=self.test_split, quiet=self.quiet)
        fewer = run.inputs.partition("; ")[2]
        if fewer and f"{path.name}: {fewer}" not in self.notes:
            self.notes.append(f"{path.name}: {fewer}")
        return run
