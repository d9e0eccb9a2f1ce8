"""Row profiles of the spikes (``spike_rows/<layer>``, docs/statistical.md step 4): a twin keeps each fitted image's
spikes per timestep, channel and row of every spiking conv/add layer, and twin image i draws them at those rows."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from twin_helpers import run_cli, with_arrays

from satasim_atsn.errors import WorkloadError
from satasim_atsn.snn.exit_policies import FixedPolicy
from satasim_atsn.snn.forward import run_forward
from satasim_atsn.traces.exit_histograms import DRAW_ORDER_FIRST, fixed_histogram, max_entropy_histogram
from satasim_atsn.traces.statistical import build_statistical, pooled_layers, spiking_layers
from satasim_atsn.traces.statistical_draw import draw_trace
from satasim_atsn.traces.twin_fit import fit_statistical_twin
from satasim_atsn.workload.format import read_workload, validate, write_workload
from satasim_atsn.workload.statistical_checks import row_profile_layers
from satasim_atsn.workload.synthetic import random_workload

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ROOT / "workloads"


def _statistical(seed: int = 3, T: int = 4, encoding: str = "direct", per_channel: bool = True):
    """A small statistical workload (conv, conv, residual block with an add) with random rates."""
    wl = random_workload(seed, images=4, timesteps=T, residual=True, encoding=encoding)
    rng = np.random.default_rng(seed)
    rates = {ly["name"]: rng.uniform(0.05, 0.6, size=(T, ly["out_shape"][0]) if per_channel else T)
             for ly in spiking_layers(wl.layers)}
    return build_statistical(
        name="small", dataset="synthetic", num_classes=wl.num_classes, layers=wl.layers, timesteps=T, rates=rates,
        exit_hist={"fixed": fixed_histogram(T), "dtsnn": max_entropy_histogram(2.6, T), "atsn": [0.4, 0.3, 0.2, 0.1]},
        input_bit_density=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8] if encoding == "direct" else None,
        input_rate=rng.uniform(0.1, 0.4, size=T) if encoding != "direct" else None,
        input_shape=list(wl.input_shape), input_encoding=encoding, seed=seed, num_images=500)


def _with(wl, source: str = "rows.npz", **arrays):
    """A copy of ``wl`` with ``arrays`` added (a value of None removes the key), not validated."""
    return with_arrays(wl, source, **arrays)


def _random_rows(wl, images: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = {}
    for ly in row_profile_layers(wl.layers, []):
        c, h, w = ly["out_shape"]
        rows[f"spike_rows__{ly['name']}"] = rng.integers(0, w + 1, size=(images, wl.timesteps, c, h)).astype(np.uint8)
    return rows


def _naive_draw(wl, policy: str, i: int) -> tuple[int, np.ndarray, dict[str, np.ndarray]]:
    """The documented draw written out literally, one call per layer and timestep, with the row profiles of
    ``input_row_bits``, ``spike_rows/<layer>`` and ``exit_steps/<policy>`` taken as image i mod M."""
    T, seed = wl.timesteps, int(wl.arrays["seed"])
    rng = np.random.Generator(np.random.PCG64([seed, i]))
    steps = {}
    for p in DRAW_ORDER_FIRST:
        cdf = np.cumsum(np.rint(wl.arrays[f"exit_hist/{p}"] * 2**32).astype(np.int64))
        steps[p] = min(int(np.searchsorted(cdf, np.floor(rng.random() * 2**32), side="right")) + 1, T)
        if f"exit_steps/{p}" in wl.arrays:  # the uniform is drawn all the same; fitted image i mod M's step instead
            paired = wl.arrays[f"exit_steps/{p}"]
            steps[p] = int(paired[i % paired.shape[0]])
    shape = wl.input_shape
    pixels = np.zeros(shape, dtype=np.uint8)
    for k in range(8):
        threshold = np.float32(wl.meta["input_bit_density"][k])
        if "input_row_bits" in wl.arrays:
            counts = wl.arrays["input_row_bits"]
            threshold = (counts[i % counts.shape[0], k] / shape[-1]).astype(np.float32)[:, :, None]
        pixels |= (rng.random(shape, dtype=np.float32) < threshold).astype(np.uint8) << k
    spikes = {ly["name"]: np.zeros((T,) + tuple(ly["out_shape"]), dtype=bool) for ly in spiking_layers(wl.layers)}
    pools = {ly["inputs"][0]: ly for ly in wl.layers if ly["type"] == "maxpool" and f"rate/{ly['name']}" in wl.arrays}
    for t in range(steps[policy]):
        for ly in spiking_layers(wl.layers):
            name = ly["name"]
            if name in pools:  # the pooled map's uniforms, the window choices', then the layer's
                pool = pools[name]
                u_pool, u_choice = (rng.random(tuple(pool["out_shape"]), dtype=np.float32) for _ in range(2))
                u = rng.random(tuple(ly["out_shape"]), dtype=np.float32)
                if f"spike_rows/{name}" not in wl.arrays:  # drawn from the rates (test_statistical checks that draw)
                    spikes.pop(name, None)
                    continue
                m = i % wl.arrays[f"spike_rows/{name}"].shape[0]
                spikes[name][t] = _naive_pooled_rows(wl, pool, m, t, u_pool, u_choice, u)
                continue
            u = rng.random(tuple(ly["out_shape"]), dtype=np.float32)
            rows = wl.arrays.get(f"spike_rows/{name}")
            if rows is not None:
                width = ly["out_shape"][-1]
                threshold = (rows[i % rows.shape[0], t].astype(np.float64) / width).astype(np.float32)[:, :, None]
            else:
                rate = np.asarray(wl.arrays[f"rate/{name}"][t], dtype=np.float32)
                threshold = rate.reshape((-1,) + (1,) * (len(ly["out_shape"]) - 1)) if rate.ndim else rate
            spikes[name][t] = u < threshold
    return steps[policy], pixels, spikes


def _naive_pooled_rows(wl, pool: dict, m: int, t: int, u_pool, u_choice, u) -> np.ndarray:
    """docs/statistical.md step 4, a layer drawn with its pool from both row profiles, written with Python loops and
    Python integers (whose true division is correctly rounded, as float64's is)."""
    name, k = pool["inputs"][0], int(pool["kernel"])
    rows = wl.arrays[f"spike_rows/{name}"][m, t].astype(int)
    fired = wl.arrays[f"spike_rows/{pool['name']}"][m, t].astype(int)
    c_n, h, w = wl.layer(name)["out_shape"]
    out = np.zeros((c_n, h, w), dtype=bool)
    for c in range(c_n):
        for i in range(h // k):
            p_i = int(fired[c, i])
            s_i = int(rows[c, i * k:(i + 1) * k].sum())
            for j in range(w // k):
                active = u_pool[c, i, j] < np.float32(p_i / (w // k))
                for d in range(k):
                    c_y = int(rows[c, i * k + d])
                    q = np.float32(c_y * (s_i - p_i) / (p_i * (k * s_i - c_y))) if p_i else np.float32(0)
                    for x in range(k):
                        out[c, i * k + d, j * k + x] = active and u[c, i * k + d, j * k + x] < q
                if active:
                    target, cum = float(u_choice[c, i, j]) * (k * s_i), 0
                    for p in range(k * k):
                        cum += int(rows[c, i * k + p // k])
                        if target < cum:
                            break
                    out[c, i * k + p // k, j * k + p % k] = True
    return out


# ------------------------------------------------------------------------------------------
# the draw
# ------------------------------------------------------------------------------------------
def test_spike_rows_set_each_images_row_thresholds_with_the_same_uniforms():
    wl = _statistical()
    c, h, w = wl.input_shape
    rng = np.random.default_rng(1)
    row_bits = rng.integers(0, w + 1, size=(3, 8, c, h)).astype(np.uint8)
    rows = _random_rows(wl, 3)
    name = next(iter(rows)).partition("__")[2]
    rows[f"spike_rows__{name}"][1, :, 0] = 0  # image 1 (and 4): channel 0 silent at every t
    rows[f"spike_rows__{name}"][2, :, 0] = wl.layer(name)["out_shape"][2]  # image 2: channel 0 fires everywhere
    profiled = validate(_with(wl, input_row_bits=row_bits, **rows))
    plain = draw_trace(wl, "fixed", 0, 6)
    trace = draw_trace(profiled, "fixed", 0, 6)
    for i in range(6):
        exit_t, pixels, spikes = _naive_draw(profiled, "fixed", i)
        assert trace.exit_t[i] == exit_t == plain.exit_t[i]
        np.testing.assert_array_equal(trace.inputs[i], pixels)
        for layer, expected in spikes.items():
            np.testing.assert_array_equal(trace.spikes[layer][i], expected, err_msg=layer)
    assert not trace.spikes[name][[1, 4], :, 0].any() and trace.spikes[name][2, :, 0].all()
    for layer in plain.spikes:  # derived maps follow the drawn ones; with profiles the layers differ from the rates'
        if f"spike_rows/{layer}" in profiled.arrays:
            assert not np.array_equal(trace.spikes[layer], plain.spikes[layer])


@pytest.mark.parametrize("per_channel", [False, True])
def test_without_spike_rows_the_draw_follows_the_rates(per_channel):
    """The literal draw above without the field is today's documented draw (test_statistical checks it too)."""
    wl = _statistical(per_channel=per_channel)
    trace = draw_trace(wl, "atsn", 7, 5)
    for j in range(5):
        exit_t, pixels, spikes = _naive_draw(wl, "atsn", 7 + j)
        assert trace.exit_t[j] == exit_t
        np.testing.assert_array_equal(trace.inputs[j], pixels)
        for layer, expected in spikes.items():
            np.testing.assert_array_equal(trace.spikes[layer][j], expected, err_msg=layer)


def _digest(trace) -> str:
    h = hashlib.sha256()
    h.update(np.asarray(trace.exit_t, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(trace.inputs).tobytes())
    for name in sorted(trace.spikes):
        h.update(name.encode())
        h.update(np.packbits(trace.spikes[name]).tobytes())
    return h.hexdigest()[:16]


# spikes drawn by the code before spike_rows existed (session 29): a file without the field draws these bytes.
# The files were re-measured in session 42 (the half-width network, the 23-bit AT unit); today's code draws the
# session-29 digests (921602af87a80860, 12527f40d6a4b96a, c01d4ce3ec6032bd) from the files of commit b8f3244, and
# these from the new files
BEFORE_SPIKE_ROWS = {
    ("vgg16_cifar10.npz", "atsn", 0, 2): "08303e325ec046aa",
    ("resnet19_cifar10.npz", "atsn", 3, 1): "75889ac762cbb517",
    ("vgg16_cifar100.npz", "dtsnn", 7, 2): "5fa10b98019338c7",
}


@pytest.mark.parametrize("key", list(BEFORE_SPIKE_ROWS))
def test_shipped_statistical_workloads_draw_the_same_bytes_as_before(key):
    path, policy, start, count = key
    assert _digest(draw_trace(read_workload(WORKLOADS / path), policy, start, count)) == BEFORE_SPIKE_ROWS[key]


@pytest.mark.parametrize("per_channel, digest", [(False, "8159830803029b35"), (True, "c345d4a803d23648")])
def test_a_twin_without_spike_rows_draws_the_same_bytes_as_before(per_channel, digest):
    trained = read_workload(WORKLOADS / "vgg_small_fmnist_atsn.npz")
    old = fit_statistical_twin(trained, 6, per_channel=per_channel, rates_policy="fixed", spike_rows=False,
                               exit_steps=False)
    assert not any(key.startswith(("spike_rows/", "exit_steps/")) for key in old.arrays)
    assert "spike_rows" not in old.meta["provenance"]
    assert _digest(draw_trace(old, "atsn", 0, 6)) == digest
    new = fit_statistical_twin(trained, 6, per_channel=per_channel, rates_policy="fixed")
    stripped = _with(new, **{key.replace("/", "__"): None for key in new.arrays
                             if key.startswith(("spike_rows/", "exit_steps/"))})
    assert _digest(draw_trace(stripped, "atsn", 0, 6)) == digest  # every other array is today's


# ------------------------------------------------------------------------------------------
# the fit
# ------------------------------------------------------------------------------------------
def _pooled_trained(seed: int = 2, images: int = 12):
    """A random trained workload with a rated pool and other conv layers, direct images."""
    wl = random_workload(seed, images=images, timesteps=3, size=8)
    assert pooled_layers(wl.layers) and wl.input_encoding == "direct"
    return wl


def test_twin_keeps_each_images_spike_rows_of_every_layer_and_tiling_pool():
    wl = _pooled_trained()
    twin = fit_statistical_twin(wl, rates_policy="fixed")
    pool = pooled_layers(wl.layers)[0]
    expected = row_profile_layers(wl.layers, [pool["name"]])
    names = [ly["name"] for ly in expected]
    assert pool["inputs"][0] in names and pool["name"] in names  # 2x2 windows at stride 2 tile its 8x8 map
    keys = sorted(key for key in twin.arrays if key.startswith("spike_rows/"))
    assert keys == sorted(f"spike_rows/{n}" for n in names)
    assert twin.meta["provenance"]["spike_rows"] == {"layers": names, "left_out": {}}
    result = run_forward(wl, wl.inputs(), policy=FixedPolicy(), record_spikes=True)
    for ly in expected:
        rows = twin.arrays[f"spike_rows/{ly['name']}"]
        assert rows.dtype == np.uint8 and rows.shape == (12, 3) + tuple(ly["out_shape"][:2])
        np.testing.assert_array_equal(rows, result.spikes[ly["name"]].sum(axis=-1))
    assert twin.arrays["input_row_bits"].shape[0] == 12  # the same images: twin image i is image i


def _fmnist_twin(images: int = 4):
    """The Fashion-MNIST network's twin: pool1 and pool2 tile their maps (28x28, 14x14), pool3 (7x7) does not."""
    return fit_statistical_twin(read_workload(WORKLOADS / "vgg_small_fmnist_atsn.npz"), images, rates_policy="fixed")


def test_a_layer_drawn_with_a_pool_that_does_not_tile_its_map_carries_no_rows():
    twin = _fmnist_twin()
    rows = twin.meta["provenance"]["spike_rows"]
    assert rows["layers"] == ["conv1", "pool1", "conv2", "pool2"]
    assert rows["left_out"] == {"conv3": "drawn with its max-pool pool3, whose 2x2 windows at stride 2 do not tile "
                                         "its 7x7 map"}
    assert "spike_rows/conv3" not in twin.arrays and "spike_rows/pool3" not in twin.arrays
    _refused(twin, "'conv3' is drawn with its max-pool 'pool3' (rate/pool3; docs/statistical.md, step 4), whose 2x2 "
             "windows at stride 2 do not tile its 7x7 map", "spike_rows/conv3",
             spike_rows__conv3=np.zeros((4, 4, 64, 7), dtype=np.uint8))
    _refused(twin, "remove spike_rows/conv3 and spike_rows/pool3", "spike_rows/pool3",
             spike_rows__pool3=np.zeros((4, 4, 64, 3), dtype=np.uint8))


def test_the_pooled_row_draw_follows_the_documented_draw():
    twin = validate(_fmnist_twin(3))
    twin.meta["num_images"] = 6
    for policy in ("fixed", "atsn"):
        trace = draw_trace(twin, policy, 0, 6)
        for i in range(6):
            exit_t, pixels, spikes = _naive_draw(twin, policy, i)
            assert trace.exit_t[i] == exit_t
            np.testing.assert_array_equal(trace.inputs[i], pixels)
            for layer, expected in spikes.items():
                np.testing.assert_array_equal(trace.spikes[layer][i], expected, err_msg=layer)


def test_a_twin_draws_each_images_row_profile_in_expectation():
    wl = _pooled_trained()
    twin = fit_statistical_twin(wl, rates_policy="fixed")
    twin.meta["num_images"] = 12 * 150  # profile m is drawn by images m, m + 12, ...
    trace = draw_trace(validate(twin), "fixed", 0, 12 * 150)
    for key in (k for k in twin.arrays if k.startswith("spike_rows/")):
        name = key.partition("/")[2]
        rows = twin.arrays[key].astype(np.float64)  # [M, T, C, H]
        width = twin.layer(name)["out_shape"][2]
        per_image = trace.spikes[name].sum(axis=-1).reshape((150, 12) + rows.shape[1:])
        drawn = per_image.mean(axis=0)
        p = rows / width  # a pooled layer's windows are not independent neurons: its own spread counts too
        sigma = np.maximum(np.sqrt(width * p * (1 - p) / 150), per_image.std(axis=0) / np.sqrt(150))
        assert (np.abs(drawn - rows) <= 5 * sigma + 1e-9).all(), name
        assert (drawn[rows == 0] == 0).all() and (drawn[rows == width] == width).all()


def test_a_spike_frame_twin_and_a_network_without_maps_carry_what_they_can():
    frames = random_workload(7, images=6, timesteps=3, size=8)
    assert frames.input_encoding == "spike_frames"
    twin = fit_statistical_twin(frames, rates_policy="fixed")
    assert "input_row_bits" not in twin.arrays and any(k.startswith("spike_rows/") for k in twin.arrays)
    assert len({twin.arrays[k].shape[0] for k in twin.arrays if k.startswith("spike_rows/")}) == 1


# ------------------------------------------------------------------------------------------
# the reader
# ------------------------------------------------------------------------------------------
def _refused(wl, message: str, field: str, **arrays) -> None:
    with pytest.raises(WorkloadError, match=r"rows\.npz.*" + re.escape(field) + r": .*" + re.escape(message)):
        validate(_with(wl, **arrays))


def test_reader_refuses_bad_spike_rows():
    wl = _statistical()
    c, h, w = wl.layer("conv1")["out_shape"]
    T = wl.timesteps
    good = np.zeros((2, T, c, h), dtype=np.uint8)
    _refused(wl, "has dtype float64", "spike_rows/conv1", spike_rows__conv1=good.astype(np.float64))
    _refused(wl, f"use [M, T, C, H] = [M, {T}, {c}, {h}]", "spike_rows/conv1",
             spike_rows__conv1=np.zeros((2, T, c, h + 1), dtype=np.uint8))
    _refused(wl, "has shape [0,", "spike_rows/conv1", spike_rows__conv1=good[:0])
    _refused(wl, f"counts must be in [0, {w}]", "spike_rows/conv1", spike_rows__conv1=good + np.uint8(w + 1))
    _refused(wl, f"counts must be in [0, {w}]", "spike_rows/conv1", spike_rows__conv1=good.astype(np.int16) - 1)
    _refused(wl, "no layer is called 'conv9'", "spike_rows/conv9", spike_rows__conv9=good)
    _refused(wl, "'blk_b' is a non-spiking conv layer", "spike_rows/blk_b", spike_rows__blk_b=good[:, :, :2])
    _refused(wl, "'gap' is an avgpool layer", "spike_rows/gap", spike_rows__gap=good)
    # one M for every layer and for input_row_bits: twin image i takes image i mod M's profiles together
    add = wl.layer("blk_add")["out_shape"]
    _refused(wl, "holds 3 images but spike_rows/blk_add holds 2", "spike_rows/conv1",
             spike_rows__conv1=good[:1].repeat(3, 0),
             spike_rows__blk_add=np.zeros((2, T, add[0], add[1]), dtype=np.uint8))
    _refused(wl, "holds 2 images but input_row_bits holds 5", "spike_rows/conv1", spike_rows__conv1=good,
             input_row_bits=np.zeros((5, 8) + tuple(wl.input_shape[:2]), dtype=np.uint8))
    ok = validate(_with(wl, spike_rows__conv1=good.astype(np.uint16),
                        input_row_bits=np.zeros((2, 8) + tuple(wl.input_shape[:2]), dtype=np.uint8)))
    assert ok.arrays["spike_rows/conv1"].dtype == np.uint16


def test_reader_refuses_spike_rows_of_a_linear_layer_and_of_a_pool_without_its_rate():
    linear = random_workload(21, images=4, timesteps=3)
    twin = fit_statistical_twin(linear, rates_policy="fixed")
    _refused(twin, "'fc' is a linear layer", "spike_rows/fc",
             spike_rows__fc=np.zeros((4, 3, 1, 1), dtype=np.uint8))
    pooled = fit_statistical_twin(_pooled_trained(), rates_policy="fixed")
    pool = pooled_layers(pooled.layers)[0]
    _refused(pooled, f"'{pool['name']}' is a max-pool without its own rate", f"spike_rows/{pool['name']}",
             **{f"rate__{pool['name']}": None})
    # without the pool's rate (and rows) the layer is drawn alone, and keeps its rows
    validate(_with(pooled, **{f"rate__{pool['name']}": None, f"spike_rows__{pool['name']}": None}))


def test_reader_refuses_pool_rows_without_their_partner_or_that_no_or_pool_gives(monkeypatch):
    from satasim_atsn.workload import statistical_checks

    twin = _fmnist_twin()
    with monkeypatch.context() as patch:  # rows so wide that u * k * S would not be exact in float64
        patch.setattr(statistical_checks, "EXACT_CHOICE_LIMIT", 4 * 28)
        _refused(twin, "is exact only while k^2 W < 2^29", "spike_rows/pool1")
    _refused(twin, "the two carry row profiles together, and spike_rows/pool1 is missing", "spike_rows/conv1",
             spike_rows__pool1=None)
    _refused(twin, "and spike_rows/conv2 is missing", "spike_rows/pool2", spike_rows__conv2=None)
    rows, fired = twin.arrays["spike_rows/conv1"].copy(), twin.arrays["spike_rows/pool1"].copy()
    i = int(np.argwhere(fired[0, 0, 0] > 0)[0][0])  # a pooled row of image 0, t = 1, channel 0 where windows fire
    too_many = fired.copy()
    too_many[0, 0, 0, i] = rows[0, 0, 0, 2 * i:2 * i + 2].sum() + 1  # more windows than spikes under them
    _refused(twin, f"image 0, t = 1, channel 0, pooled row {i}: {too_many[0, 0, 0, i]} windows fire over input rows "
             f"{2 * i}..{2 * i + 1}", "spike_rows/pool1", spike_rows__pool1=too_many)
    crowded = rows.copy()
    crowded[0, 0, 0, 2 * i] = 2 * fired[0, 0, 0, i] + 1  # more spikes in a row than its firing windows hold
    _refused(twin, "at most 2 in each row", "spike_rows/pool1", spike_rows__conv1=crowded)


def test_a_trained_workload_with_spike_rows_is_refused():
    wl = random_workload(3, images=4, timesteps=4, residual=True)
    c, h, _ = wl.layer("conv1")["out_shape"]
    with pytest.raises(WorkloadError, match=r"rows\.npz.*spike_rows/conv1: is a row profile of a statistical twin, "
                                            r"but meta\.kind is 'trained'.*remove it"):
        validate(_with(wl, spike_rows__conv1=np.zeros((1, 4, c, h), dtype=np.uint8)))


# ------------------------------------------------------------------------------------------
# the command
# ------------------------------------------------------------------------------------------
def _run(args, capsys) -> tuple[int, str, str]:
    return run_cli(args, capsys)


def test_stats_writes_spike_rows_unless_told_not_to(tmp_path, capsys):
    trained = tmp_path / "trained.npz"
    write_workload(trained, _pooled_trained())
    code, out, err = _run(["workload", "stats", trained, "-o", tmp_path / "rows.npz", "--rates-policy", "fixed",
                           "--json", tmp_path / "rows.json"], capsys)
    assert code == 0, err
    rows = read_workload(tmp_path / "rows.npz")
    layers = rows.meta["provenance"]["spike_rows"]["layers"]
    assert layers and all(f"spike_rows/{name}" in rows.arrays for name in layers)
    numbers = json.loads((tmp_path / "rows.json").read_text())
    assert numbers["spike_rows"] == layers and numbers["file_bytes"] == (tmp_path / "rows.npz").stat().st_size
    assert 0 < numbers["spike_rows_bytes"] < numbers["file_bytes"]
    assert f"spike row profiles of 12 images: {len(layers)} layers\n" in out and "none for" not in out
    code, out, err = _run(["workload", "stats", trained, "-o", tmp_path / "plain.npz", "--rates-policy", "fixed",
                           "--no-spike-rows"], capsys)
    assert code == 0, err
    plain = read_workload(tmp_path / "plain.npz")
    assert not any(k.startswith("spike_rows/") for k in plain.arrays) and "spike_rows" not in plain.meta["provenance"]
    assert "spike row profiles" not in out and "of the spikes 0 bytes" in out
    twin = fit_statistical_twin(read_workload(trained), rates_policy="fixed", spike_rows=False)
    write_workload(tmp_path / "direct.npz", twin)
    assert (tmp_path / "direct.npz").read_bytes() == (tmp_path / "plain.npz").read_bytes()
    code, out, _ = _run(["workload", "stats", "--help"], capsys)
    assert "--spike-rows / --no-spike-rows" in out


def test_stats_help_quotes_the_twin_size_the_docs_measured(capsys):
    """--help said 1.05 MB (the spike profiles alone) beside 36 kB (a whole twin without them); the twin is 1.09 MB."""
    import re
    from pathlib import Path

    code, out, _ = _run(["workload", "stats", "--help"], capsys)
    assert code == 0
    quoted = re.search(r"larger \(([\d.]+ MB) for 64 images of the width-0.125 ResNet19, against ([\d.]+ kB) without",
                       " ".join(out.split()))
    doc = " ".join((Path(__file__).resolve().parents[1] / "docs" / "statistical.md").read_text().split())
    measured = re.search(r"Sizes: ([\d.]+ kB) without, ([\d.]+ MB) with the profiles for 64 images of the "
                         r"width-0.125 ResNet19", doc)
    assert quoted and measured and quoted.groups() == (measured.group(2), measured.group(1))


def test_spike_frame_inputs_keep_their_rows():
    """A DVS-like input whose events bunch into rows was drawn evenly over them: a NIR CNN with a dense band of
    5 rows per image ran 12.4% (atsn16x16) and 24.1% (4x4) short; its frames now carry spike_rows/input."""
    trained = random_workload(7, images=5, timesteps=3, encoding="spike_frames", size=8)
    frames = trained.inputs(0, trained.num_images)  # [N, T, C, H, W] booleans
    twin = fit_statistical_twin(trained, rates_policy="fixed")
    rows = twin.arrays["spike_rows/input"]
    c, h, w = trained.input_shape
    assert rows.shape == (5, 3, c, h) and rows.dtype == np.uint8
    np.testing.assert_array_equal(rows, frames.sum(axis=-1))
    assert "input_row_bits" not in twin.arrays and "input" not in twin.meta["provenance"]["spike_rows"]["layers"]
    # a row the image filled (or left empty) at t is drawn full (or empty) there, whatever the uniforms
    drawn = draw_trace(twin, "fixed", 0, 5).inputs.astype(bool)
    full, empty = rows == w, rows == 0
    assert full.any() or empty.any()
    np.testing.assert_array_equal(drawn.sum(axis=-1)[full], w)
    np.testing.assert_array_equal(drawn.sum(axis=-1)[empty], 0)
    # without --input-rows the frames are drawn from rate/input alone, as before
    assert "spike_rows/input" not in fit_statistical_twin(trained, rates_policy="fixed", input_rows=False).arrays


def test_stats_counts_a_spike_frame_inputs_rows_as_the_inputs(tmp_path, capsys):
    """A spike-frame twin's input rows (spike_rows/input) were printed as "row profiles of the input 0 bytes" and
    counted in the spikes' bytes; --input-rows writes them, so they are the input's, as input_row_bits of images."""
    trained = tmp_path / "frames.npz"
    write_workload(trained, random_workload(7, images=5, timesteps=3, encoding="spike_frames", size=8))
    sizes = {}
    for flag in ("--input-rows", "--no-input-rows"):
        code, out, err = _run(["workload", "stats", trained, "-o", tmp_path / "twin.npz", "--rates-policy", "fixed",
                               flag, "--json", tmp_path / "twin.json"], capsys)
        assert code == 0, err
        sizes[flag] = json.loads((tmp_path / "twin.json").read_text())
        assert f"row profiles of the input {sizes[flag]['input_row_bits_bytes']} bytes," in out
    assert sizes["--input-rows"]["input_row_bits_bytes"] > 0 == sizes["--no-input-rows"]["input_row_bits_bytes"]
    assert sizes["--input-rows"]["spike_rows_bytes"] == sizes["--no-input-rows"]["spike_rows_bytes"] > 0


def test_stats_refuses_exit_options_for_a_network_ending_in_spikes(tmp_path, capsys):
    """A spike-count network runs fixed T: --cl-init was accepted, ignored by the fit and written to the twin's
    meta.exit_policy, and --rates-policy dtsnn silently became fixed; `evaluate` refuses the same options."""
    trained = tmp_path / "spikes.npz"
    write_workload(trained, random_workload(3, images=4, output_layer=False))
    for extra, named in ((["--cl-init", "0.9"], "--cl-init"), (["--rates-policy", "dtsnn", "--theta", "0.2"],
                                                              "--rates-policy")):
        code, out, err = _run(["workload", "stats", trained, "-o", tmp_path / "twin.npz", *extra], capsys)
        assert code == 2 and err.count("\n") == 1 and f"spikes.npz: {named}: sets an exit rule" in err, err
        assert not (tmp_path / "twin.npz").exists()
    for extra in ([], ["--rates-policy", "fixed"]):
        code, out, err = _run(["workload", "stats", trained, "-o", tmp_path / "twin.npz", *extra], capsys)
        assert code == 0, err


def test_spike_rows_of_the_input_are_for_spike_frames_only():
    direct = fit_statistical_twin(random_workload(3, images=4, encoding="direct", size=6), rates_policy="fixed")
    c, h = direct.input_shape[:2]
    bad = _with(direct, spike_rows__input=np.zeros((4, direct.timesteps, c, h), dtype=np.uint8))
    with pytest.raises(WorkloadError, match=r"spike_rows/input: is the row profile of spike-frame inputs"):
        validate(bad)
