"""Statistical workloads: paper-scale networks described by firing rates and exit-step histograms.

This module builds them (from per-layer rates, or from a network file and one rate; a rate table is read in
rate_table.py); twin_fit.py fits a twin of a trained workload, exit_histograms.py shapes their exit steps and
statistical_draw.py draws their spikes into the same Trace a trained forward produces. The file contents and the
draw order (a contract that reproduces every spike) are in docs/statistical.md.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from satasim_atsn.errors import WorkloadError, shown
from satasim_atsn.snn.exit_policies import (
    CL_INIT_DEFAULT,
    TAU_CL_DEFAULT,
    THETA_DEFAULT,
)
from satasim_atsn.traces.exit_histograms import exit_histograms
from satasim_atsn.workload.format import Workload, validate
from satasim_atsn.workload.network_file import NetworkSpec
from satasim_atsn.workload.pool_windows import (
    has_window_cores,
)
from satasim_atsn.workload.schema import (
    EXIT_STEPS,
    INPUT_ROW_BITS,
    SPIKE_ROWS,
    has_output_layer,
    is_spiking,
    output_neurons,
)

DEFAULT_NUM_IMAGES = 10000
SEED_MAX = 2**63 - 1  # a workload stores its draw seed as int64


# ------------------------------------------------------------------------------------------
# building
# ------------------------------------------------------------------------------------------
def spiking_layers(layers: list[dict]) -> list[dict]:
    """The layers that need a ``rate/<name>``: spiking conv/linear and add, in order."""
    return [layer for layer in layers if is_spiking(layer)]


def pooled_layers(layers: list[dict]) -> list[dict]:
    """Max-pool layers that may carry their own rate: windows with neurons of their own (kernel < 2 x stride) over a
    spiking layer that the pool alone reads."""
    spiking = {layer["name"] for layer in spiking_layers(layers)}
    consumers: dict[str, int] = {}
    for layer in layers:
        for src in layer["inputs"]:
            consumers[src] = consumers.get(src, 0) + 1
    return [
        layer
        for layer in layers
        if layer["type"] == "maxpool"
        and has_window_cores(layer["kernel"], layer["stride"])
        and layer["inputs"][0] in spiking
        and consumers.get(layer["inputs"][0], 0) == 1
    ]


def build_statistical(
    *,
    name: str,
    dataset: str,
    num_classes: int,
    layers: list[dict],
    timesteps: int,
    rates: dict[str, np.ndarray],
    exit_hist: dict[str, np.ndarray],
    input_bit_density: list[float] | None,
    seed: int,
    num_images: int = DEFAULT_NUM_IMAGES,
    input_shape: list[int] | None = None,
    input_encoding: str = "direct",
    input_rate: np.ndarray | None = None,
    input_row_bits: np.ndarray | None = None,
    spike_rows: dict[str, np.ndarray] | None = None,
    exit_steps: dict[str, np.ndarray] | None = None,
    neuron: dict | None = None,
    quant: dict | None = None,
    exit_policy: dict | None = None,
    provenance: dict | None = None,
    extra_meta: dict | None = None,
    source: str | None = None,
) -> Workload:
    """Assemble and validate a statistical workload from its parts (rates keyed by layer name, ``exit_steps`` by
    policy); ``source`` (the network file it comes from) is what a validation error names."""
    if not isinstance(num_images, int) or num_images < 1:
        raise WorkloadError.at(None, "num_images", f"{shown(num_images)} must be a positive integer", "fix the value")
    meta: dict = {
        "name": name,
        "kind": "statistical",
        "dataset": dataset,
        "num_classes": int(num_classes),
        "input_shape": list(input_shape or layers[0]["in_shape"]),
        "input_encoding": input_encoding,
        "timesteps": int(timesteps),
        "num_images": int(num_images),
        "neuron": neuron or {"tau": 0.5, "decay_shifts": [1], "v_th": 1.0},
        "quant": quant or {"weight_bits": 8, "vmem_bits": 16, "input_shift": 0},
        "layers": copy.deepcopy(layers),
        "exit_policy": exit_policy or {"cl_init": CL_INIT_DEFAULT, "tau_cl": TAU_CL_DEFAULT, "theta": THETA_DEFAULT},
        "provenance": provenance or {},
    }
    if input_bit_density is not None:
        meta["input_bit_density"] = [float(d) for d in input_bit_density]
    if input_encoding == "spike_frames":
        meta["input_width"] = int(meta["input_shape"][-1])
    meta.update(extra_meta or {})
    arrays: dict[str, np.ndarray] = {"seed": np.array(int(seed), dtype=np.int64)}
    names = {layer["name"] for layer in spiking_layers(layers)} | {layer["name"] for layer in pooled_layers(layers)}
    unknown = sorted(set(rates) - names)
    if unknown:
        raise WorkloadError.at(
            None, "rates", f"no spiking layer named {shown(unknown[0])}",
            f"spiking layers are {', '.join(sorted(names))}"
        )
    for layer_name, rate in rates.items():
        arrays[f"rate/{layer_name}"] = np.asarray(rate, dtype=np.float64)
    for policy, hist in exit_hist.items():
        arrays[f"exit_hist/{policy}"] = np.asarray(hist, dtype=np.float64)
    if input_rate is not None:
        arrays["rate/input"] = np.asarray(input_rate, dtype=np.float64)
    if input_row_bits is not None:
        arrays[INPUT_ROW_BITS] = np.asarray(input_row_bits)
    for layer_name, counts in (spike_rows or {}).items():
        arrays[f"{SPIKE_ROWS}/{layer_name}"] = np.asarray(counts)
    for policy, steps in (exit_steps or {}).items():
        arrays[f"{EXIT_STEPS}/{policy}"] = np.asarray(steps)
    return validate(Workload(meta=meta, arrays=arrays, source=source or f"<statistical {name}>"))


def mean_rate_per_t(rate: np.ndarray) -> list[float]:
    """A stored rate ([T], or [T, C] per channel) as its mean at each timestep."""
    rate = np.asarray(rate, dtype=np.float64)
    return [float(v) for v in (rate.mean(axis=1) if rate.ndim == 2 else rate)]


def rates_summary(workload: Workload) -> dict[str, list[float]]:
    """Per spiking (or rate-carrying max-pool) layer, the mean firing rate at each timestep."""
    return {layer["name"]: mean_rate_per_t(workload.arrays[f"rate/{layer['name']}"])
            for layer in workload.layers if f"rate/{layer['name']}" in workload.arrays}


# ------------------------------------------------------------------------------------------
# a statistical workload from a network file and one firing rate (the quick start)
# ------------------------------------------------------------------------------------------
def output_classes(net: NetworkSpec, layers: list[dict], num_classes: int | None, flag: str) -> int:
    """The classes of a built network: ``num_classes`` for an output layer; for a network ending in a spiking layer,
    that layer's neurons (its spike counts are the output), which a given ``num_classes`` (``flag``) must equal."""
    if has_output_layer(layers):
        return int(num_classes if num_classes is not None else layers[-1]["out_shape"][0])
    neurons = output_neurons(layers)
    if num_classes is not None and int(num_classes) != neurons:
        last = layers[-1]["name"]
        raise WorkloadError.at(net.source, flag, f"gives {num_classes} classes but the network ends in the spiking "
                               f"layer {last!r} of {neurons} neurons, whose spike counts are the output",
                               f"give the last layer {num_classes} neurons, or end the network with an output layer")
    return neurons


def fixed_only(net: NetworkSpec, policies: Iterable[str], flag: str, where: str | None = None) -> None:
    """A network without an output layer runs all T timesteps: no exit histogram but ``fixed`` (one line naming
    ``flag`` otherwise)."""
    other = sorted(p for p in policies if p != "fixed")
    if not net.has_output and other:
        last = net.layers[-1]["name"]
        raise WorkloadError.at(where, flag,
                               f"the network ends in the spiking layer {last!r} (no output layer), so it runs all "
                               f"T timesteps; the {other[0]} exit rule needs an output layer",
                               "drop it, or end the network with an output layer")


def build_with_rate(net: NetworkSpec, *, rate: float, timesteps: int, dataset: str | None = None,
                    num_classes: int | None = None, exit_means: dict[str, float] | None = None,
                    num_images: int = 10000, seed: int = 0) -> Workload:
    """A statistical workload in which every spiking layer fires at ``rate`` at every timestep (an assumption).

    Exit histograms: ``fixed`` always, plus a maximum-entropy one for each policy given a mean exit
    timestep in ``exit_means`` (``dtsnn``, ``atsn``); input pixels uniform (0.5 per bit plane).
    """
    from satasim_atsn.workload.networks import IDENTITY_SHORTCUT_GAIN

    if not (isinstance(rate, (int, float)) and 0.0 <= float(rate) <= 1.0):
        raise WorkloadError.at(None, "--rate", f"{rate!r} is not a firing rate in [0, 1]", "e.g. --rate 0.15")
    if not (isinstance(timesteps, int) and 1 <= timesteps <= 1024):
        raise WorkloadError.at(None, "--timesteps", f"{timesteps!r} is not in 1..1024", "e.g. --timesteps 10")
    means = dict(exit_means or {})
    fixed_only(net, means, "--exit-mean")
    hist = exit_histograms(means, timesteps, None, "--exit-mean")

    def build():
        layers = net.build(num_classes, identity_gain=IDENTITY_SHORTCUT_GAIN)
        rates = {ly["name"]: np.full(timesteps, float(rate)) for ly in spiking_layers(layers)}
        label = dataset or "unspecified"
        return build_statistical(
            name=f"{net.name}-{label}-statistical" if dataset else f"{net.name}-statistical",
            dataset=label,
            num_classes=output_classes(net, layers, num_classes or net.num_classes,
                                       "--dataset" if num_classes else "num_classes"),
            layers=layers,
            timesteps=timesteps,
            rates=rates,
            exit_hist=hist,
            input_bit_density=[0.5] * 8,
            seed=seed,
            num_images=num_images,
            input_shape=list(net.input_shape),
            source=net.source,
            provenance={
                "generator": "satasim workload build --rate",
                "network_file": Path(net.source).name,
                "rates": f"assumed: every spiking layer fires at {float(rate)} at every timestep (--rate)",
                "input_bit_density": "assumed: uniform 8-bit pixels, 0.5 per bit plane",
                "exit_histograms": "fixed: all images at T; "
                + ("maximum-entropy distributions with the given means (assumed, --exit-mean): "
                   + ", ".join(f"{p} {float(m)}" for p, m in sorted(means.items())) if means else "no other policy"),
                "accuracy": None,
                "note": "statistical workload: independent Bernoulli spikes, no weights, no labels, no accuracy",
            },
        )

    try:
        return build()
    except WorkloadError as error:  # name layers as the network file does
        raise net.relabel(error) from None
