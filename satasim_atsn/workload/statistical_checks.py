"""The checks of a statistical workload's own arrays: firing rates, exit histograms, and a twin's row profiles
(``input_row_bits``, ``spike_rows/<layer>``) and exit steps (docs/statistical.md, steps 2-4).

:func:`workload.format.validate` calls :func:`validate_statistical`; a profile too large to scan at reading is
checked as the draw reads its rows (:func:`check_profile_rows`, :func:`check_pooled_profile_rows`)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from satasim_atsn.errors import WorkloadError, did_you_mean, shown
from satasim_atsn.workload import schema
from satasim_atsn.workload.npz import NpzRows
from satasim_atsn.workload.pool_windows import windows_tile
from satasim_atsn.workload.schema import (
    EXIT_STEPS,
    INPUT_FRAMES,
    INPUT_ROW_BITS,
    SPIKE_ROWS,
    array_blocks,
    exit_policy_names,
    fail,
    fitted_images,
    grid_histogram,
    has_output_layer,
    is_finite_number,
    is_row_profile,
    is_spiking,
)


def validate_statistical(where: str, meta: dict, arrays: dict) -> None:
    """A statistical workload's exit histograms, seed, and input densities (images) or input rate (frames)."""
    policies = exit_policy_names(arrays)
    if not policies:
        raise fail(where, "exit_hist/<policy>", "missing",
                    "give one exit histogram per exit policy, e.g. exit_hist/atsn")
    if not has_output_layer(meta["layers"]) and tuple(policies) != ("fixed",):
        other = next(p for p in policies if p != "fixed")
        raise fail(where, f"exit_hist/{other}", "a network without an output layer runs all T timesteps (its last "
                    "layer's spike counts are the output): only exit_hist/fixed applies",
                    "drop the other exit histograms (or end the network with an output layer)")
    for policy in policies:
        hist = arrays[f"exit_hist/{policy}"]
        if (
            hist.dtype.kind != "f"
            or hist.shape != (meta["timesteps"],)
            or not np.isfinite(hist).all()
            or (hist < 0).any()
            or not np.isclose(hist.sum(), 1.0, atol=1e-6)
        ):
            raise fail(
                where,
                f"exit_hist/{policy}",
                "must be T non-negative probabilities summing to 1",
                "normalise the histogram",
            )
        if policy == "fixed" and ((hist[:-1] != 0).any() or hist[-1] != 1.0):
            raise fail(where, "exit_hist/fixed", f"sends {float(hist[:-1].sum()):.6g} of the images out before "
                        f"t = {meta['timesteps']}, but a fixed-T design runs every image all T timesteps",
                        "store [0, ..., 0, 1] (every build writes it so)")
    if "seed" not in arrays:
        raise fail(where, "seed", "missing", "statistical workloads need a seed")
    seed = arrays["seed"]
    if seed.dtype.kind not in "iu" or seed.size != 1 or int(seed.reshape(-1)[0]) < 0:
        got = (f"{seed.dtype} {int(seed.reshape(-1)[0])}" if seed.dtype.kind in "iu" and seed.size == 1
               else f"{seed.dtype} of shape {list(seed.shape)}")
        raise fail(where, "seed", f"must be one non-negative integer, got {got}", "re-export the workload")
    density = meta.get("input_bit_density")
    if meta.get("input_encoding", "direct") == "direct":
        if not (isinstance(density, list) and len(density) == 8
                and all(is_finite_number(d) and 0 <= d <= 1 for d in density)):
            raise fail(
                where,
                "meta.input_bit_density",
                "needs 8 densities in [0, 1] (bit planes 0..7)",
                "fit it from real images",
            )
        if INPUT_ROW_BITS in arrays:
            check_input_row_bits(where, meta, arrays[INPUT_ROW_BITS], profiles_scanned(arrays))
    else:
        if density is not None:
            raise fail(where, "meta.input_bit_density", "is given, but the inputs are spike frames, drawn from "
                        "rate/input (bit-plane densities are for pixels)", "drop meta.input_bit_density")
        _check_input_rate(where, meta, arrays.get("rate/input"))
    check_spike_rows(where, meta, arrays, profiles_scanned(arrays))
    _check_exit_steps(where, meta, arrays)


def profiles_scanned(arrays: dict, whole: bool = False) -> bool:
    """Whether reading reads the row profiles through for their range checks: when they are in memory, or read by rows
    and hold up to SCANNED_INPUT_BYTES together (``whole``: always). Larger ones are checked as the draw reads their
    rows (:func:`check_profile_rows`): a twin fitted on 10^6 images does not pay the pass on `run --images 2`."""
    lazy = [a.nbytes for key, a in arrays.items() if is_row_profile(key) and isinstance(a, NpzRows)]
    return whole or sum(lazy) <= schema.SCANNED_INPUT_BYTES


def _profile_width(meta: dict, key: str) -> tuple[int, str]:
    """The largest count a row of profile ``key`` may hold (its map's width) and what that width is, in words."""
    name = key.partition("/")[2]
    layer = next((ly for ly in meta["layers"] if ly["name"] == name), None)
    if key == INPUT_ROW_BITS or layer is None:  # input_row_bits, spike_rows/input
        return int(meta["input_shape"][-1]), "the width of a row" + ("" if key == INPUT_ROW_BITS else " of input")
    return int(layer["out_shape"][-1]), f"the width of a row of {layer['name']}"


def check_profile_rows(where: str, meta: dict, key: str, rows: np.ndarray, images: np.ndarray) -> None:
    """Rows of a twin's row profile ``key`` as the draw reads them (``images``: the fitted image of each row): counts in
    [0, W], the check reading does for profiles up to SCANNED_INPUT_BYTES (:func:`profiles_scanned`)."""
    w, what = _profile_width(meta, key)
    bad = (rows < 0) | (rows > w)
    if rows.size and bad.any():
        image = int(images[int(np.argwhere(bad)[0][0])])
        raise fail(where, key, f"image {image}: counts must be in [0, {w}] ({what})",
                    "refit the twin with satasim workload stats")


def check_input_row_bits(where: str, meta: dict, counts: np.ndarray | NpzRows, scan: bool = True) -> None:
    """A direct twin's ``input_row_bits``: [M, 8, C, H] integer counts in [0, W], the set bits of each measured image's
    bit plane, channel and row (docs/statistical.md, step 3); the counts read through when ``scan``."""
    shape = [int(v) for v in meta["input_shape"]]
    if len(shape) != 3:
        raise fail(where, INPUT_ROW_BITS, f"needs [C, H, W] images, but meta.input_shape is {shape}",
                    "drop input_row_bits (flat inputs are drawn from meta.input_bit_density alone)")
    c, h, w = shape
    if counts.dtype.kind not in "iu":
        raise fail(where, INPUT_ROW_BITS, f"has dtype {counts.dtype}", "store integer bit counts (uint8 or uint16)")
    if counts.ndim != 4 or counts.shape[0] < 1 or list(counts.shape[1:]) != [8, c, h]:
        raise fail(where, INPUT_ROW_BITS, f"has shape {list(counts.shape)}",
                    f"use [M, 8, C, H] = [M, 8, {c}, {h}] with M >= 1 measured images")
    if scan and any(block.size and (int(block.min()) < 0 or int(block.max()) > w) for block in array_blocks(counts)):
        raise fail(where, INPUT_ROW_BITS, f"counts must be in [0, {w}] (the width of a row)",
                    "refit the twin with satasim workload stats")


EXACT_CHOICE_LIMIT = 2**29  # a float32 uniform (24 bits) times an integer below this is exact in float64


def row_profile_layers(layers: list[dict], rated_pools: Iterable[str]) -> list[dict]:
    """The layers a statistical workload's ``spike_rows/<layer>`` may profile, in layer order: spiking conv and add
    layers (their output a [C, H, W] map), and the max-pools of ``rated_pools`` (the pools carrying their own rate,
    drawn with their input: docs/statistical.md step 4) whose windows tile their map. A layer drawn with a pool whose
    windows do not tile its map carries none."""
    rated = {ly["name"]: ly for ly in layers if ly["type"] == "maxpool" and ly["name"] in set(rated_pools)}
    untiled = {pool["inputs"][0] for pool in rated.values() if not windows_tile(pool)}
    maps = {ly["name"] for ly in layers if is_spiking(ly) and ly["type"] != "linear" and len(ly["out_shape"]) == 3}
    return [ly for ly in layers
            if ly["name"] in maps and ly["name"] not in untiled or ly["name"] in rated and windows_tile(ly)]


def check_spike_rows(where: str, meta: dict, arrays: dict, scan: bool = True) -> None:
    """A twin's ``spike_rows/<layer>``: [M, T, C, H] integer spike counts in [0, W] of its fitted images, each row of
    each channel at each timestep, for the layers of ``row_profile_layers`` (a pool's rows and its input's go
    together); one M for every layer and for ``input_row_bits``, so twin image i takes image i mod M's profiles of
    the input and of every layer (docs/statistical.md, step 4); the counts read through when ``scan``."""
    keys = sorted(key for key in arrays if key.partition("/")[0] == SPIKE_ROWS)
    if not keys:
        return
    layers = meta["layers"]
    by_name = {ly["name"]: ly for ly in layers}
    rated_pools = [ly["name"] for ly in layers if ly["type"] == "maxpool" and f"rate/{ly['name']}" in arrays]
    allowed = {ly["name"] for ly in row_profile_layers(layers, rated_pools)}
    frames = meta.get("input_encoding", "direct") == "spike_frames" and len(meta["input_shape"]) == 3
    if frames:  # spike frames of [C, H, W]: their events per row, drawn like a layer's spikes
        allowed.add(INPUT_FRAMES)
        by_name = {**by_name, INPUT_FRAMES: {"name": INPUT_FRAMES, "type": "input", "out_shape": meta["input_shape"]}}
    images: tuple[str, int] | None = None
    if INPUT_ROW_BITS in arrays:
        images = (INPUT_ROW_BITS, int(arrays[INPUT_ROW_BITS].shape[0]))
    for key in keys:
        name = key.partition("/")[2]
        layer = by_name.get(name)
        if name == INPUT_FRAMES and not frames:
            raise fail(where, key, "is the row profile of spike-frame inputs of [C, H, W], but the input is "
                        f"{meta.get('input_encoding', 'direct')} {list(meta['input_shape'])} (a direct image's rows "
                        f"are {INPUT_ROW_BITS})", f"remove {key}")
        if layer is None:
            raise fail(where, key, f"no layer is called {shown(name)}",
                        did_you_mean(name, tuple(allowed), "the layers that may carry one:", limit=8)
                        if allowed else "remove it: no layer of this network can carry a row profile")
        if name not in allowed:
            raise _row_profile_refusal(where, key, layer, layers, arrays)
        _check_row_counts(where, key, layer, arrays[key], int(meta["timesteps"]), scan)
        if images is None:
            images = (key, int(arrays[key].shape[0]))
        elif int(arrays[key].shape[0]) != images[1]:
            raise fail(where, key, f"holds {arrays[key].shape[0]} images but {images[0]} holds {images[1]}: twin "
                        "image i takes image i mod M's profiles of the input and of every layer together",
                        "refit the twin with satasim workload stats (every profile from the same images)")
    for pool in (by_name[name] for name in rated_pools if name in allowed):
        _check_pooled_rows(where, pool, by_name[pool["inputs"][0]], arrays, scan)


def _row_profile_refusal(where: str, key: str, layer: dict, layers: list[dict], arrays: dict) -> WorkloadError:
    """Why ``layer`` cannot carry ``spike_rows/<layer>`` (a layer not in ``row_profile_layers``)."""
    name = layer["name"]
    pool = layer if layer["type"] == "maxpool" else next(
        (ly for ly in layers if ly["type"] == "maxpool" and ly["inputs"][0] == name and f"rate/{ly['name']}" in arrays),
        None)
    if pool is not None and f"rate/{pool['name']}" in arrays:  # a rated pool whose windows do not tile its map
        k, s, (_, h, w) = pool["kernel"], pool["stride"], pool["in_shape"]
        src = pool["inputs"][0]
        return fail(where, key, f"{src!r} is drawn with its max-pool {pool['name']!r} (rate/{pool['name']}; "
                     f"docs/statistical.md, step 4), whose {k}x{k} windows at stride {s} do not tile its {h}x{w} map: "
                     "row profiles are drawn with a pool only when its windows tile the map (kernel = stride, the "
                     "height and width multiples of it)", f"remove spike_rows/{src} and spike_rows/{pool['name']} "
                     f"(satasim workload stats leaves them out), or drop rate/{pool['name']} (the pooled map is then "
                     "the OR of its input)")
    if layer["type"] == "maxpool":
        return fail(where, key, f"{name!r} is a max-pool without its own rate: its map is the OR of its input's "
                     "spikes (a pool carries a row profile only when it is drawn at its own rate, docs/statistical.md "
                     "step 4)", f"remove {key}")
    kind = ("non-spiking " if layer["type"] in ("conv", "linear") and not is_spiking(layer) else "") + layer["type"]
    return fail(where, key, f"{name!r} is {'an' if kind[0] in 'aeiou' else 'a'} {kind} layer: row profiles are for "
                 "spiking conv and add layers, whose spikes form [C, H, W] maps", f"remove {key}")


def _check_row_counts(where: str, key: str, layer: dict, counts: np.ndarray | NpzRows, T: int, scan: bool = True
                      ) -> None:
    """``spike_rows/<layer>``: integer counts [M, T, C, H] in [0, W] of the layer's [C, H, W] map."""
    c, h, w = (int(v) for v in layer["out_shape"])
    if counts.dtype.kind not in "iu":
        raise fail(where, key, f"has dtype {counts.dtype}", "store integer spike counts (uint8, or uint16 for "
                    "rows wider than 255)")
    if counts.ndim != 4 or counts.shape[0] < 1 or list(counts.shape[1:]) != [T, c, h]:
        raise fail(where, key, f"has shape {list(counts.shape)}",
                    f"use [M, T, C, H] = [M, {T}, {c}, {h}] with M >= 1 fitted images")
    if scan and any(block.size and (int(block.min()) < 0 or int(block.max()) > w) for block in array_blocks(counts)):
        raise fail(where, key, f"counts must be in [0, {w}] (the width of a row of {layer['name']})",
                    "refit the twin with satasim workload stats")


def _check_pooled_rows(where: str, pool: dict, source: dict, arrays: dict, scan: bool = True) -> None:
    """A rated pool whose windows tile its map and its input layer carry row profiles together, and they agree as an
    OR-pool does (:func:`check_pooled_profile_rows`; read through when ``scan``)."""
    pool_key, source_key = f"{SPIKE_ROWS}/{pool['name']}", f"{SPIKE_ROWS}/{source['name']}"
    if (pool_key in arrays) != (source_key in arrays):
        have, missing = (pool_key, source_key) if pool_key in arrays else (source_key, pool_key)
        raise fail(where, have, f"{source['name']!r} is drawn with its max-pool {pool['name']!r} (docs/"
                    f"statistical.md, step 4): the two carry row profiles together, and {missing} is missing",
                    f"add {missing} (satasim workload stats writes both), or remove {have}")
    if pool_key not in arrays:
        return
    k = int(pool["kernel"])
    if k * k * int(source["out_shape"][2]) >= EXACT_CHOICE_LIMIT:
        raise fail(where, pool_key, f"the window choice of {k}x{k} windows over rows of {source['out_shape'][2]} is "
                    f"exact only while k^2 W < 2^29 (docs/statistical.md, step 4)", f"remove {pool_key} and "
                    f"{source_key} (the layer is then drawn from its rates)")
    if arrays[source_key].shape[0] != arrays[pool_key].shape[0] or not scan:
        return  # the M check of check_spike_rows names a mismatch; unscanned rows are checked as they are read
    lazy = [a.block_rows() for a in (arrays[source_key], arrays[pool_key]) if isinstance(a, NpzRows)]
    step = min(lazy) if lazy else None  # both read by rows: blocks of as many images
    first = 0
    for rows, fired in zip(array_blocks(arrays[source_key], step), array_blocks(arrays[pool_key], step), strict=True):
        check_pooled_profile_rows(where, pool, source, rows, fired, first + np.arange(len(rows)))
        first += len(rows)


def check_pooled_profile_rows(where: str, pool: dict, source: dict, rows: np.ndarray, fired: np.ndarray,
                              images: np.ndarray) -> None:
    """Rows of a pool's and its input's row profiles (``images``: the fitted image of each) agree as an OR-pool does:
    under each pooled row the P windows that fire hold at least P of the input's spikes in the k rows under them, and
    at most k in each of those rows of each window."""
    pool_key, source_key = f"{SPIKE_ROWS}/{pool['name']}", f"{SPIKE_ROWS}/{source['name']}"
    k = int(pool["kernel"])
    rows, fired = rows.astype(np.int64), fired.astype(np.int64)
    band = rows.reshape(rows.shape[:3] + (-1, k))
    bad = (fired > band.sum(axis=-1)) | (band.max(axis=-1) > k * fired)
    if bad.any():
        m, t, c, i = (int(v) for v in np.argwhere(bad)[0])
        raise fail(where, pool_key, f"image {int(images[m])}, t = {t + 1}, channel {c}, pooled row {i}: "
                    f"{fired[m, t, c, i]} windows fire over input rows {i * k}..{i * k + k - 1} with "
                    f"{band[m, t, c, i].tolist()} spikes in {source_key}; an OR-pool's firing windows hold at "
                    f"least one spike each and at most {k} in each row",
                    "refit the twin with satasim workload stats (one forward's counts always agree)")


def _check_input_rate(where: str, meta: dict, rate: np.ndarray | None) -> None:
    """A spike-frame workload's ``rate/input``: [T] or [T, C] (C = the input's channels, or features for a flat
    input) float rates in [0, 1], the checks ``rate/<layer>`` gets."""
    T, channels = meta["timesteps"], int(meta["input_shape"][0])
    shape = f"[T] or [T, C] = [{T}, {channels}]"
    if rate is None:
        raise fail(where, "rate/input", f"missing: spike-frame inputs need an input rate {shape}", "add rate/input")
    if rate.dtype.kind != "f":
        raise fail(where, "rate/input", f"has dtype {rate.dtype}", "store rates as float64")
    if rate.ndim not in (1, 2) or rate.shape[0] != T or (rate.ndim == 2 and rate.shape[1] != channels):
        raise fail(where, "rate/input", f"has shape {list(rate.shape)}", f"use {shape}")
    if not np.isfinite(rate).all() or (rate < 0).any() or (rate > 1).any():
        raise fail(where, "rate/input", "rates must be finite and in [0, 1]", "fix the rates")


def _check_exit_steps(where: str, meta: dict, arrays: dict) -> None:
    """A twin's ``exit_steps/<policy>``: each fitted image's exit step under the policy, [M] integers in 1..T with the M
    of the row profiles (twin image i exits at exit_steps/<policy>[i mod M], docs/statistical.md step 2), whose
    distribution is exactly ``exit_hist/<policy>`` (the histogram stays: info, run and rate tables read it)."""
    T = int(meta["timesteps"])
    for key in sorted(k for k in arrays if k.partition("/")[0] == EXIT_STEPS):
        policy = key.partition("/")[2]
        hist_key = f"exit_hist/{policy}"
        if hist_key not in arrays:
            raise fail(where, key, f"has no {hist_key}: the steps pair each fitted image's exit with its row "
                        "profiles, and the histogram is their distribution (the mean timestep is reported from it)",
                        f"add {hist_key} (satasim workload stats writes both), or remove {key}")
        steps = arrays[key]
        if steps.dtype.kind not in "iu":
            raise fail(where, key, f"has dtype {steps.dtype}", "store integer exit steps (uint16)")
        # M: the row profiles' images, or without profiles those of the first exit_steps array (twin image i takes
        # fitted image i mod M's profiles and exits together)
        images = fitted_images(arrays) or (key, 0)  # never the default: this key is an exit_steps array
        if steps.ndim != 1 or steps.shape != (images[1],) or images[1] < 1:
            raise fail(where, key, f"has shape {list(steps.shape)}, but {images[0]} holds {images[1]} images",
                        f"use [M] = [{images[1]}]: one exit step per fitted image (those of the row profiles, if any)")
        counts = np.zeros(T + 1, dtype=np.int64)  # read in blocks: a twin of a million fitted images holds M steps
        for block in array_blocks(steps):
            if block.size and (int(block.min()) < 1 or int(block.max()) > T):
                raise fail(where, key, f"exit steps must be in 1..{T} (T)", "refit the twin with satasim workload "
                            "stats")
            counts += np.bincount(block.astype(np.int64), minlength=T + 1)
        if policy == "fixed" and counts[T] != counts.sum():
            raise fail(where, key, f"sends an image out before t = {T}, but a fixed-T design runs every image all T "
                        "timesteps", f"store {T} for every image (satasim workload stats does)")
        expected = grid_histogram(counts[1:])
        if not np.array_equal(np.asarray(arrays[hist_key], dtype=np.float64), expected):
            raise fail(where, key, f"is not the distribution of {hist_key}: the histogram must equal the steps' "
                        "counts on the 2^-32 grid exactly (grid_histogram of their bincount, integer arithmetic)",
                        f"store {hist_key} = that histogram (satasim workload stats does), or remove {key}")
