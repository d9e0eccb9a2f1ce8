"""Fitting a statistical twin of a trained workload (docs/statistical.md): its measured firing rates per layer
and timestep, pooled rates, exit histograms per policy, and optionally each fitted image's row profiles and exit
steps."""


from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from satasim_atsn.errors import WorkloadError, whole_count
from satasim_atsn.snn.exit_policies import (
    ATSN_FRAC_BITS,
    LUT_ENTRIES_DEFAULT,
    AtsnPolicy,
    DtsnnPolicy,
    FixedPolicy,
    exit_settings,
)
from satasim_atsn.snn.forward import run_forward
from satasim_atsn.traces.exit_histograms import histogram_key
from satasim_atsn.traces.statistical import build_statistical, pooled_layers, spiking_layers
from satasim_atsn.workload.format import Workload, require_validated
from satasim_atsn.workload.pool_windows import (
    pool_rate_bounds,
    pool_rate_problem_of,
    windows_tile,
)
from satasim_atsn.workload.schema import (
    INPUT_FRAMES,
    grid_histogram,
)
from satasim_atsn.workload.statistical_checks import row_profile_layers


# ------------------------------------------------------------------------------------------
# fitting a statistical twin of a trained workload
# ------------------------------------------------------------------------------------------
def twin_policies(workload: Workload, cl_init: float | None = None, tau_cl: float | None = None,
                  theta: float | None = None,
                  lut_entries: int = LUT_ENTRIES_DEFAULT, frac_bits: int = ATSN_FRAC_BITS) -> dict:
    """The three policies a twin's histograms come from (defaults from ``meta.exit_policy``)."""
    cl, tau, th = exit_settings(workload.meta, cl_init, tau_cl, theta)
    return {
        "fixed": FixedPolicy(),
        "dtsnn": DtsnnPolicy(theta=th),
        "atsn": AtsnPolicy(cl_init=cl, tau_cl=tau, hardware=True, lut_entries=lut_entries, frac_bits=frac_bits),
    }


def fit_statistical_twin(
    trained_workload: Workload,
    images: int | None = None,
    *,
    per_channel: bool = False,
    rates_policy: str = "atsn",
    cl_init: float | None = None,
    tau_cl: float | None = None,
    theta: float | None = None,
    seed: int = 0,
    batch_size: int = 128,
    lut_entries: int = LUT_ENTRIES_DEFAULT,
    frac_bits: int = ATSN_FRAC_BITS,
    input_rows: bool = True,
    spike_rows: bool = True,
    exit_steps: bool = True,
) -> Workload:
    """Fit rates, exit histograms and input densities of a trained workload into a statistical twin.

    ``input_rows`` (direct [C, H, W] images): also keep every fitted image's set bits per bit plane, channel and
    row (``input_row_bits``), which twin image i draws its planes from (docs/statistical.md, step 3).
    ``spike_rows``: also keep every fitted image's spikes per timestep, channel and row of each spiking conv/add
    layer and rated max-pool (``spike_rows/<layer>``; not a layer drawn with a pool whose windows do not tile its
    map), which twin image i draws them from (step 4).
    ``exit_steps``: also keep every fitted image's exit step under each policy (``exit_steps/<policy>``, the steps
    the histograms count), at which twin image i exits (step 2; M = the fitted images, with or without profiles).

    The functional forward runs all T timesteps once (record_spikes); each policy's exit steps
    come from its logits (early exit equals post-hoc exit). Rates at t are averaged over the
    images still running at t under ``rates_policy`` (all images if none run at t).
    """
    wl = require_validated(trained_workload, "trained_workload")
    if wl.is_statistical:
        raise WorkloadError.at(wl.source, "meta.kind", "is already statistical", "fit a trained or imported workload")
    for name, value in (("seed", seed), ("batch_size", batch_size)):  # 1.5 was used as given, 0 failed in range()
        if whole_count(value, wl.source, name, WorkloadError) < (name == "batch_size"):
            raise WorkloadError.at(wl.source, name, f"must be >= {int(name == 'batch_size')}, got {value}",
                                   "give a non-negative seed and a positive batch size")
    policies = twin_policies(wl, cl_init, tau_cl, theta, lut_entries, frac_bits)  # the AT unit's LUT rule as built
    exit_rules = {"cl_init": policies["atsn"].cl_init, "tau_cl": policies["atsn"].tau_cl,
                  "theta": policies["dtsnn"].theta}
    if not wl.has_output:  # a spiking-output network runs fixed-T: only the fixed histogram exists
        policies, rates_policy = {"fixed": policies["fixed"]}, "fixed"
    policy_key = histogram_key(rates_policy, tuple(policies))
    n_total, T = _fitted_images(wl, images), wl.timesteps
    spk_layers = spiking_layers(wl.layers) + pooled_layers(wl.layers)
    direct = wl.input_encoding == "direct"
    keep_rows = input_rows and len(wl.input_shape) == 3  # bit planes of images, or spike frames' rows
    profiled = row_profile_layers(wl.layers, [ly["name"] for ly in pooled_layers(wl.layers)]) if spike_rows else []
    counts, steps, bit_counts, frame_counts, row_bits, layer_rows = _twin_counts(
        wl, policies, n_total, spk_layers, batch_size, keep_rows, profiled)
    if not direct and row_bits is not None:  # spike frames: their rows are drawn like a layer's (spike_rows/input)
        layer_rows = {INPUT_FRAMES: row_bits, **layer_rows}
        row_bits = None
    fit = _running_rate_fit(steps[policy_key], T, per_channel)
    rates = {ly["name"]: fit(counts[ly["name"]], int(np.prod(ly["out_shape"][1:]))) for ly in spk_layers}
    dropped, clamped = _fit_pool_rates(rates, wl.layers)
    hist = {p: grid_histogram(np.bincount(steps[p] - 1, minlength=T)[:T]) for p in policies}
    density = (bit_counts / (n_total * int(np.prod(wl.input_shape)))).tolist() if direct else None
    input_rate = None if direct else fit(frame_counts, int(np.prod(wl.input_shape[1:])))
    paired = exit_steps  # M = the fitted images, with or without row profiles
    provenance = _twin_provenance(wl, n_total, policy_key, per_channel, policies, dropped, clamped,
                                  [n for n in layer_rows if n != INPUT_FRAMES] if spike_rows else None)
    return build_statistical(
        name=f"{wl.name}-twin", dataset=_dataset_label(wl.meta), num_classes=wl.num_classes,
        layers=wl.layers, timesteps=T, rates=rates, exit_hist=hist, input_bit_density=density, seed=seed,
        num_images=n_total, input_shape=list(wl.input_shape), input_encoding=wl.input_encoding,
        input_rate=input_rate, input_row_bits=row_bits, spike_rows=layer_rows,
        exit_steps={p: steps[p].astype(np.uint16) for p in policies} if paired else None,
        neuron=copy.deepcopy(wl.meta["neuron"]), quant=copy.deepcopy(wl.meta["quant"]), exit_policy=exit_rules,
        provenance=provenance,
    )


def _fitted_images(wl: Workload, images: int | None) -> int:
    """The images a twin is fitted from: the first ``images`` of the workload (default all)."""
    n_total = wl.num_images if images is None else whole_count(images, wl.source, "--images", WorkloadError)
    if n_total < 1 or n_total > wl.num_images:
        raise WorkloadError.at(wl.source, "--images", f"{images} is not in 1..{wl.num_images} (the images the "
                               "workload holds)", f"ask for 1 to {wl.num_images} images")
    return n_total


def _twin_provenance(wl: Workload, n_total: int, policy_key: str, per_channel: bool, policies: dict,
                     dropped: list[str], clamped: dict | None = None, profiled: list[str] | None = None) -> dict:
    """Where a twin's numbers come from: the fitted file (by name only, so the twin's bytes do not depend on the
    directory), the images, the policies, the pool rates not kept, and with ``profiled`` (the layers with
    ``spike_rows``; None: not asked for) which layers carry row profiles and which cannot (drawn with a pool whose
    windows do not tile their map)."""
    provenance = {
        "fitted_from": {"file": Path(str(wl.source)).name, "name": wl.name, "kind": wl.kind,
                        "provenance": wl.meta.get("provenance", {})},
        "images": n_total,
        "rates_over_images_running_under": policy_key,
        "per_channel": bool(per_channel),
        "exit_policies": {p: pol.describe() for p, pol in policies.items()},
        "tool": "satasim workload stats",
    }
    if dropped:
        provenance["pooled_rates_not_kept"] = dropped
    if clamped:
        provenance["pooled_rates_clamped"] = clamped
    left_out = {pool["inputs"][0]: f"drawn with its max-pool {pool['name']}, whose {pool['kernel']}x{pool['kernel']} "
                f"windows at stride {pool['stride']} do not tile its {pool['in_shape'][1]}x{pool['in_shape'][2]} map"
                for pool in pooled_layers(wl.layers) if not windows_tile(pool)}
    if profiled is not None and (profiled or left_out):
        provenance["spike_rows"] = {"layers": profiled, "left_out": left_out}
    return provenance


def pool_notes(provenance: dict) -> list[str]:
    """One line per max-pool whose measured rate a twin could not keep as measured (from its provenance)."""
    lines = [f"  note: {name} carries no rate (a pool does when every window has a neuron of its own, kernel < 2 x "
             "stride, and its input feeds no other layer): it is drawn as the OR of independent spikes, which fires "
             "it more often than clustered spikes do" for name in provenance.get("pooled_rates_not_kept", [])]
    lines += [f"  note: pool_rate_ratio gives {name} {v['given_mean']:g} on average, outside what the draw can keep "
              f"with its input's rate; drawn at {v['drawn_mean']:g} (docs/statistical.md, step 4)"
              for name, v in provenance.get("pool_rate_ratio_clamped", {}).items()]
    lines += [f"  note: {name}'s measured rate {v['measured_mean']:g} is outside what the draw can keep with its "
              f"input's rate (it draws windows independently); drawn at {v['drawn_mean']:g} (docs/statistical.md, "
              "step 4)" for name, v in provenance.get("pooled_rates_clamped", {}).items()]
    return lines


def _fit_pool_rates(rates: dict, layers: list[dict]) -> tuple[list[str], dict]:
    """Fit the measured pool rates to what the draw can keep; returns (the pools drawn as the OR of their input, the
    pools whose rate was clamped with their measured and drawn means).

    A pool whose windows have no neurons of their own (kernel >= 2 x stride) carries no rate. A measured rate
    outside the range its input's rate allows (docs/statistical.md, step 4) is moved to the nearest rate inside:
    spikes clustered in space can fire a pool of overlapping windows nearly as seldom as its input, which
    independently drawn windows cannot, and a map its windows do not tile can fire mostly outside them. The
    nearest rate misses the measured one by far less than the OR of independent draws (about twice the rate)."""
    spiking = {ly["name"] for ly in spiking_layers(layers)}
    rated = {ly["name"] for ly in pooled_layers(layers)}
    not_kept = [ly["name"] for ly in layers if ly["type"] == "maxpool" and ly["inputs"][0] in spiking
                and ly["name"] not in rated]  # no window core, or its input feeds another layer too
    clamped = {}
    for ly in pooled_layers(layers):
        r_in, r_pool = rates[ly["inputs"][0]], rates[ly["name"]]  # one fit: both [T] or both [T, C]
        if not pool_rate_problem_of(ly, r_in, r_pool):
            continue
        _, h, w = ly["in_shape"]
        rates[ly["name"]] = np.clip(r_pool, *pool_rate_bounds(r_in, ly["kernel"], ly["stride"], h, w))
        clamped[ly["name"]] = {"measured_mean": round(float(np.mean(r_pool)), 6),
                               "drawn_mean": round(float(np.mean(rates[ly["name"]])), 6)}
    return not_kept, clamped


def row_count_dtype(width: int) -> type:
    """The integer type of a row profile's counts in [0, width]: uint8 up to 255, else uint16 (uint32 beyond)."""
    return np.uint8 if width <= 255 else np.uint16 if width <= 65535 else np.uint32


def _twin_counts(wl: Workload, policies: dict, n_total: int, spk_layers: list[dict], batch_size: int,
                 keep_rows: bool = False, profiled: list[dict] | None = None):
    """One full-T forward of the first ``n_total`` images: spikes per (image, t, channel) of every spiking layer,
    each policy's exit steps, the input's bit-plane (images) or per-channel (frames) spike counts, with
    ``keep_rows`` each image's set bits per (plane, channel, row) ([N, 8, C, H]) or, for spike frames, its events
    per (t, channel, row) ([N, T, C, H]; uint8 or uint16; else None), and for each layer of ``profiled`` its spikes
    per (image, t, channel, row) ([N, T, C, H], by name)."""
    T = wl.timesteps
    layer_rows = {ly["name"]: np.zeros((n_total, T) + tuple(int(v) for v in ly["out_shape"][:2]),
                                       dtype=row_count_dtype(int(ly["out_shape"][2]))) for ly in profiled or []}
    counts = {ly["name"]: np.zeros((n_total, T, int(ly["out_shape"][0])), dtype=np.int64) for ly in spk_layers}
    steps = {p: np.zeros(n_total, dtype=np.int64) for p in policies}
    direct = wl.input_encoding == "direct"
    bit_counts = np.zeros(8, dtype=np.int64)
    frame_counts = np.zeros((n_total, T, wl.input_shape[0]), dtype=np.int64)
    row_bits = None
    if keep_rows:  # direct: set bits per (plane, channel, row); spike frames: events per (t, channel, row)
        c, h, w = (int(v) for v in wl.input_shape)
        row_bits = np.zeros((n_total, 8 if direct else T, c, h), dtype=row_count_dtype(w))
    for lo in range(0, n_total, batch_size):
        hi = min(lo + batch_size, n_total)
        x = wl.inputs(lo, hi)
        result = run_forward(wl, x, policy=FixedPolicy(), record_spikes=True, batch_size=batch_size)
        for ly in spk_layers:
            s = result.spikes[ly["name"]]
            counts[ly["name"]][lo:hi] = s.reshape(s.shape[0], T, s.shape[2], -1).sum(axis=3)
            if ly["name"] in layer_rows:  # [n, T, C, H, W] -> spikes along each row
                layer_rows[ly["name"]][lo:hi] = s.sum(axis=-1, dtype=np.int64)
        for p, policy in policies.items():
            steps[p][lo:hi] = policy.exit_steps(result.logits, result.out_membrane, result.scale_per_t)
        if direct:
            for k in range(8):
                bit_counts[k] += int(((x >> k) & 1).sum(dtype=np.int64))
                if row_bits is not None:
                    row_bits[lo:hi, k] = ((x >> k) & 1).sum(axis=-1, dtype=np.int64)
        else:
            frame_counts[lo:hi] = x.reshape(x.shape[0], T, x.shape[2], -1).sum(axis=3)
            if row_bits is not None:  # [n, T, C, H, W] -> events along each row
                row_bits[lo:hi] = x.sum(axis=-1, dtype=np.int64)
    return counts, steps, bit_counts, frame_counts, row_bits, layer_rows


def _running_rate_fit(exit_steps: np.ndarray, T: int, per_channel: bool):
    """The rate fit of a twin: spike counts [N, T, C] over ``positions`` per channel -> rates [T] (or [T, C]),
    averaged at t over the images still running at t (all images if none is)."""
    running = exit_steps[:, None] >= np.arange(1, T + 1)[None, :]  # [N, T]
    n_running = running.sum(axis=0)
    mask = np.where(n_running[None, :] > 0, running, True).astype(np.int64)
    denom_images = mask.sum(axis=0)  # [T]

    def fit(c: np.ndarray, positions: int) -> np.ndarray:
        # integer spike counts over one integer denominator: a single correctly rounded division
        spikes = np.einsum("nt,ntc->tc", mask, c)  # int64, exact
        if per_channel:
            return spikes / (denom_images[:, None] * positions)
        return spikes.sum(axis=1) / (denom_images * positions * c.shape[2])

    return fit


def _dataset_label(meta: dict) -> str:
    """A twin's dataset label: its workload's, or 'unknown' where that is absent or null (str(None) was 'None')."""
    dataset = meta.get("dataset")
    return "unknown" if dataset is None else str(dataset)
