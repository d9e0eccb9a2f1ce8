"""Statistical workloads: network tables, exit histograms, the documented draw order, twin fitting."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.errors import WorkloadError
from satasim_atsn.snn.complexity import firing_rates
from satasim_atsn.snn.forward import run_forward, spike_maxpool
from satasim_atsn.traces import statistical_draw, twin_fit
from satasim_atsn.traces.exit_histograms import DRAW_ORDER_FIRST as POLICIES
from satasim_atsn.traces.exit_histograms import fixed_histogram, histogram_mean, max_entropy_histogram
from satasim_atsn.traces.rate_table import build_from_spec, load_rate_spec
from satasim_atsn.traces.statistical import build_statistical, spiking_layers
from satasim_atsn.traces.statistical_draw import draw_exit_steps, draw_trace, spike_or_pool
from satasim_atsn.traces.twin_fit import fit_statistical_twin
from satasim_atsn.workload.format import read_workload
from satasim_atsn.workload.networks import layer_costs, network_totals, resnet19, vgg16
from satasim_atsn.workload.schema import emits_spikes
from satasim_atsn.workload.synthetic import random_workload

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ROOT / "workloads"
TABLE1 = {  # paper Table 1: (network, dataset) -> (DTSNN, ATSN) average timesteps
    ("vgg16", "cifar10"): (2.53, 2.19),
    ("vgg16", "cifar100"): (3.58, 2.49),
    ("resnet19", "cifar10"): (2.52, 2.00),
    ("resnet19", "cifar100"): (3.54, 2.53),
}


# ------------------------------------------------------------------------------------------
# network tables
# ------------------------------------------------------------------------------------------
def test_vgg16_counts_match_design():
    layers = vgg16(10)
    totals = network_totals(layers)
    assert totals["params"] == 14_715_584  # DESIGN: about 14.7 M
    assert totals["macs_per_timestep"] == 313_201_664  # DESIGN: about 313 M
    assert totals["lif_neurons"] == 276_480
    convs = [ly for ly in layers if ly["type"] == "conv"]
    assert len(convs) == 13 and all(ly["kernel"] == 3 and ly["padding"] == 1 for ly in convs)
    pools = [i for i, ly in enumerate(layers) if ly["type"] == "maxpool"]
    before = [layers[i - 1]["name"] for i in pools]
    assert before == ["conv2", "conv4", "conv7", "conv10", "conv13"]
    assert layers[-2]["out_shape"] == [512] and layers[-1]["type"] == "output"
    assert network_totals(vgg16(100))["params"] == 14_715_584 - 5120 + 51_200


def test_resnet19_counts_match_design():
    layers = resnet19(10)
    totals = network_totals(layers)
    assert totals["params"] == 12_558_720  # DESIGN: about 12.6 M
    assert totals["macs_per_timestep"] == 2_285_245_440  # DESIGN: about 2.3 G
    adds = [ly for ly in layers if ly["type"] == "add"]
    assert len(adds) == 8
    shortcuts = [ly for ly in layers if ly["name"].endswith("_sc")]
    assert [ly["name"] for ly in shortcuts] == ["s2b1_sc", "s3b1_sc"]
    assert all(ly["kernel"] == 1 and ly["stride"] == 2 and not ly["spiking"] for ly in shortcuts)
    identity = [ly for ly in adds if "shortcut_gain" in ly]
    assert len(identity) == 6
    assert layers[-2]["type"] == "avgpool" and layers[-2]["out_shape"] == [512]
    costs = {c["name"]: c for c in layer_costs(layers)}
    assert costs["conv1"]["macs_per_timestep"] == 3 * 128 * 9 * 1024


# ------------------------------------------------------------------------------------------
# histograms and shipped files
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mean", [1.0, 1.3, 2.0, 2.19, 2.5, 3.58, 3.99, 4.0])
def test_max_entropy_histogram_mean(mean):
    hist = max_entropy_histogram(mean, 4)
    assert hist.shape == (4,) and (hist >= 0).all()
    assert abs(hist.sum() - 1) < 1e-12
    assert abs(histogram_mean(hist) - mean) < 1e-9


def test_max_entropy_is_uniform_at_the_middle_and_rejects_bad_means():
    assert np.allclose(max_entropy_histogram(2.5, 4), 0.25)
    for bad in (0.5, 4.5, float("nan")):
        with pytest.raises(WorkloadError):
            max_entropy_histogram(bad, 4)


@pytest.mark.parametrize(("network", "dataset"), sorted(TABLE1))
def test_shipped_workloads_match_table1_and_rebuild_byte_identical(tmp_path, network, dataset):
    path = WORKLOADS / "assumed" / f"{network}_{dataset}.npz"
    wl = read_workload(path)
    assert wl.is_statistical and wl.num_images == 10000 and wl.timesteps == 4
    dtsnn, atsn = TABLE1[(network, dataset)]
    assert abs(histogram_mean(wl.arrays["exit_hist/dtsnn"]) - dtsnn) < 1e-6
    assert abs(histogram_mean(wl.arrays["exit_hist/atsn"]) - atsn) < 1e-6
    assert histogram_mean(wl.arrays["exit_hist/fixed"]) == 4.0
    rebuilt = build_from_spec(load_rate_spec(WORKLOADS / "rates" / f"{network}.yaml"), network, dataset)
    from satasim_atsn.workload.format import write_workload

    out = tmp_path / "rebuilt.npz"
    write_workload(out, rebuilt)
    assert out.read_bytes() == path.read_bytes()


# ------------------------------------------------------------------------------------------
# drawing
# ------------------------------------------------------------------------------------------
def _small_statistical(per_channel: bool = False, encoding: str = "direct", T: int = 4, seed: int = 7):
    wl = random_workload(3, images=4, timesteps=T, residual=True, encoding=encoding)
    rng = np.random.default_rng(seed)
    rates = {}
    for ly in spiking_layers(wl.layers):
        c = ly["out_shape"][0]
        rates[ly["name"]] = rng.uniform(0.05, 0.6, size=(T, c) if per_channel else T)
    return build_statistical(
        name="small",
        dataset="synthetic",
        num_classes=wl.num_classes,
        layers=wl.layers,
        timesteps=T,
        rates=rates,
        exit_hist={"fixed": fixed_histogram(T), "dtsnn": max_entropy_histogram(2.6, T), "atsn": [0.4, 0.3, 0.2, 0.1]},
        input_bit_density=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8] if encoding == "direct" else None,
        input_rate=rng.uniform(0.1, 0.4, size=T) if encoding != "direct" else None,
        input_shape=list(wl.input_shape),
        input_encoding=encoding,
        seed=seed,
        num_images=500,
    )


def _naive_draw(wl, policy: str, i: int):
    """The documented draw order, written out literally with one call per layer and timestep."""
    T = wl.timesteps
    seed = int(wl.arrays["seed"])
    rng = np.random.Generator(np.random.PCG64([seed, i]))
    steps = {}
    for p in POLICIES:
        cdf = np.cumsum(wl.arrays[f"exit_hist/{p}"])
        steps[p] = min(int(np.searchsorted(cdf, rng.random(), side="right")) + 1, T)
    shape = wl.input_shape
    pixels = np.zeros(shape, dtype=np.uint8)
    frames = np.zeros((T,) + shape, dtype=np.uint8)
    if wl.input_encoding == "direct":
        for k in range(8):
            plane = rng.random(shape, dtype=np.float32) < np.float32(wl.meta["input_bit_density"][k])
            pixels |= plane.astype(np.uint8) << k
    spikes = {ly["name"]: np.zeros((T,) + tuple(ly["out_shape"]), dtype=bool) for ly in wl.layers if emits_spikes(ly)}
    for t in range(1, steps[policy] + 1):
        if wl.input_encoding != "direct":
            frames[t - 1] = rng.random(shape, dtype=np.float32) < np.float32(wl.arrays["rate/input"][t - 1])
        for ly in wl.layers:
            name = ly["name"]
            if ly["type"] in ("conv", "linear", "add") and (ly["type"] == "add" or ly.get("spiking", True)):
                rate = wl.arrays[f"rate/{name}"][t - 1]
                u = rng.random(tuple(ly["out_shape"]), dtype=np.float32)
                thr = np.asarray(rate, dtype=np.float32)
                if thr.ndim == 1:
                    thr = thr.reshape((-1,) + (1,) * (len(ly["out_shape"]) - 1))
                spikes[name][t - 1] = u < thr
            elif ly["type"] == "maxpool":
                src = spikes[ly["inputs"][0]][t - 1][None].astype(np.uint8)
                spikes[name][t - 1] = spike_maxpool(src, ly["kernel"], ly["stride"])[0]
            elif ly["type"] == "flatten" and ly["inputs"][0] in spikes:
                spikes[name][t - 1] = spikes[ly["inputs"][0]][t - 1].reshape(-1)
    return steps[policy], (pixels if wl.input_encoding == "direct" else frames), spikes


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("encoding", ["direct", "spike_frames"])
def test_draw_trace_follows_the_documented_order(per_channel, encoding):
    wl = _small_statistical(per_channel, encoding)
    for policy in POLICIES:
        trace = draw_trace(wl, policy, 5, 6)
        assert trace.labels is None and (trace.pred == -1).all()
        for j in range(6):
            exit_t, inputs, spikes = _naive_draw(wl, policy, 5 + j)
            assert trace.exit_t[j] == exit_t
            np.testing.assert_array_equal(trace.inputs[j], inputs)
            assert set(trace.spikes) == set(spikes)
            for name, expected in spikes.items():
                np.testing.assert_array_equal(trace.spikes[name][j], expected, err_msg=name)


def test_draws_are_deterministic_and_differ_between_images():
    wl = _small_statistical()
    a = draw_trace(wl, "atsn", 10, 5)
    b = draw_trace(wl, "atsn", 10, 5)
    for name in a.spikes:
        np.testing.assert_array_equal(a.spikes[name], b.spikes[name])
    np.testing.assert_array_equal(a.inputs, b.inputs)
    # image 12 drawn alone equals image 12 drawn inside a range
    c = draw_trace(wl, "atsn", 12, 1)
    for name in a.spikes:
        np.testing.assert_array_equal(a.spikes[name][2], c.spikes[name][0])
    name = spiking_layers(wl.layers)[0]["name"]
    first = draw_trace(wl, "fixed", 0, 2).spikes[name]
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(a.inputs[0], a.inputs[1])


def test_spikes_are_prefixes_across_policies():
    wl = _small_statistical(per_channel=True)
    traces = {p: draw_trace(wl, p, 0, 60) for p in POLICIES}
    assert (traces["fixed"].exit_t == 4).all()
    assert (traces["atsn"].exit_t < 4).any()
    for p in ("dtsnn", "atsn"):
        tr = traces[p]
        np.testing.assert_array_equal(tr.inputs, traces["fixed"].inputs)
        for name, spk in tr.spikes.items():
            full = traces["fixed"].spikes[name]
            for j in range(60):
                e = tr.exit_t[j]
                np.testing.assert_array_equal(spk[j, :e], full[j, :e])
                assert not spk[j, e:].any()


def test_drawn_rates_and_exit_steps_converge():
    wl = _small_statistical(per_channel=True)
    trace = draw_trace(wl, "fixed", 0, 500)
    for ly in spiking_layers(wl.layers):
        rate = wl.arrays[f"rate/{ly['name']}"]
        s = trace.spikes[ly["name"]]
        measured = s.reshape(s.shape[0], s.shape[1], s.shape[2], -1).mean(axis=(0, 3))
        n = s.shape[0] * int(np.prod(ly["out_shape"][1:]))
        sigma = np.sqrt(rate * (1 - rate) / n)
        assert (np.abs(measured - rate) < 5 * sigma + 1e-9).all(), ly["name"]
    steps = draw_exit_steps(wl, 0, 500)
    for p in POLICIES:
        hist = np.bincount(steps[p] - 1, minlength=4) / 500
        assert np.abs(hist - wl.arrays[f"exit_hist/{p}"]).max() < 0.08
    bits = np.unpackbits(trace.inputs.reshape(-1, 1), axis=1, bitorder="little").mean(axis=0)
    assert np.abs(bits - np.array(wl.meta["input_bit_density"])).max() < 0.05


def test_draw_trace_rejects_bad_requests():
    wl = _small_statistical()
    with pytest.raises(WorkloadError, match="outside"):
        draw_trace(wl, "atsn", 495, 10)
    with pytest.raises(WorkloadError, match="unknown exit policy"):
        draw_trace(wl, "greedy", 0, 1)
    with pytest.raises(WorkloadError, match="not statistical"):
        draw_trace(random_workload(1), "atsn", 0, 1)


def test_or_pool_equals_forward_maxpool():
    rng = np.random.default_rng(0)
    x = rng.random((3, 2, 5, 8, 6)) < 0.3
    for kernel, stride in ((2, 2), (3, 1), (2, 1)):
        expected = spike_maxpool(x.reshape(6, 5, 8, 6).astype(np.uint8), kernel, stride)
        got = spike_or_pool(x, kernel, stride)
        np.testing.assert_array_equal(got.reshape(expected.shape), expected.astype(bool))


def test_vgg16_draw_shapes_and_rates():
    wl = read_workload(WORKLOADS / "assumed" / "vgg16_cifar10.npz")
    trace = draw_trace(wl, "atsn", 0, 8)
    assert trace.inputs.shape == (8, 3, 32, 32) and trace.inputs.dtype == np.uint8
    assert trace.spikes["conv1"].shape == (8, 4, 64, 32, 32)
    assert trace.spikes["flatten"].shape == (8, 4, 512)
    first = trace.spikes["conv1"][:, 0].mean()
    assert abs(first - 0.10) < 0.005
    pooled = trace.spikes["pool1"][:, 0]
    assert abs(pooled.mean() - 0.196) < 0.01  # pool_rate_ratio 1.96 x 0.10, not the independent OR's 0.34


def test_a_draw_plan_makes_no_threshold_until_a_draw_asks_and_then_the_documented_one():
    """The per-neuron threshold of every timestep is T x row float32 (1.1 GB for VGG16 at T = 1024): a plan used to
    build all of it, also for draw_exit_steps, which reads none. Now blocks are made when a draw asks; the rows are
    each layer's rate of that timestep, per neuron, rounded to float32 once."""
    import tracemalloc

    from satasim_atsn.traces.statistical_draw import _DrawPlan

    wl = read_workload(WORKLOADS / "assumed" / "vgg16_cifar10.npz")
    tracemalloc.start()
    try:
        plan = _DrawPlan(wl, 0, 1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * plan.row  # less than one timestep of thresholds
    rows = plan.thresholds.rows(0, plan.T)
    assert rows.dtype == np.float32 and rows.shape == (plan.T, plan.row)
    name, shape, offset, size = plan.slots[0]
    rate = np.asarray(wl.arrays[f"rate/{name}"], dtype=np.float64)
    expected = np.repeat(rate.reshape(plan.T, -1), size // rate.reshape(plan.T, -1).shape[1], axis=1)
    np.testing.assert_array_equal(rows[:, offset:offset + size], expected.astype(np.float32))
    np.testing.assert_array_equal(plan.thresholds.rows(1, 3), rows[1:3])


@pytest.mark.parametrize("keep", ["all", "none"])
def test_drawing_a_long_image_holds_its_kept_thresholds_and_a_block_of_uniforms(keep, monkeypatch):
    """One VGG16 image at T = 64 (thresholds T x row float32, 71 MB): its uniforms are drawn a block of timesteps at
    a time (DRAW_BLOCK_BYTES), not all T x row float32 at once, and its thresholds are kept only up to
    THRESHOLD_KEEP_BYTES (all 64 timesteps by default); with none kept the draw holds less than them all."""
    import tracemalloc

    import satasim_atsn.traces.statistical as st
    from satasim_atsn.workload.network_file import resolve_network

    wl = st.build_with_rate(resolve_network("vgg16"), rate=0.1, timesteps=64, num_images=2)
    plan = statistical_draw._DrawPlan(wl, 0, 1)
    threshold = 4 * plan.T * plan.row
    if keep == "none":
        monkeypatch.setattr(statistical_draw, "THRESHOLD_KEEP_BYTES", 0)
    tracemalloc.start()
    try:
        trace = draw_trace(wl, "fixed", 0, 1, threads=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert trace.exit_t[0] == 64
    # all kept: 1.7 thresholds (2.4 with the whole uniforms and the joined segments); none kept: the spikes (a
    # quarter of them) and two blocks of 15 timesteps (thresholds made, uniforms) and a segment being made
    assert peak < (2 * threshold if keep == "all" else 0.9 * threshold), peak / threshold


def _whole_and_blockwise(wl, policy: str, start: int, count: int, monkeypatch):
    """The draw with every image's uniforms in one block, and with one timestep per block."""

    monkeypatch.setattr(statistical_draw, "DRAW_BLOCK_BYTES", 2**62)
    monkeypatch.setattr(statistical_draw, "THRESHOLD_KEEP_BYTES", 2**62)
    whole = draw_trace(wl, policy, start, count)
    monkeypatch.setattr(statistical_draw, "DRAW_BLOCK_BYTES", 1)
    # every block's thresholds made again for each image
    monkeypatch.setattr(statistical_draw, "THRESHOLD_KEEP_BYTES", 0)
    return whole, draw_trace(wl, policy, start, count)


def _assert_same_trace(a, b) -> None:
    np.testing.assert_array_equal(a.exit_t, b.exit_t)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    assert set(a.spikes) == set(b.spikes)
    for name in a.spikes:
        np.testing.assert_array_equal(a.spikes[name], b.spikes[name], err_msg=name)


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("encoding", ["direct", "spike_frames"])
def test_a_blockwise_draw_is_the_documented_draw(per_channel, encoding, monkeypatch):
    wl = _small_statistical(per_channel, encoding)
    for policy in POLICIES:
        whole, blocks = _whole_and_blockwise(wl, policy, 3, 5, monkeypatch)
        _assert_same_trace(whole, blocks)
        for j in range(5):
            exit_t, inputs, spikes = _naive_draw(wl, policy, 3 + j)
            assert blocks.exit_t[j] == exit_t
            np.testing.assert_array_equal(blocks.inputs[j], inputs)
            for name, expected in spikes.items():
                np.testing.assert_array_equal(blocks.spikes[name][j], expected, err_msg=name)


def test_a_blockwise_draw_of_pooled_layers_equals_the_whole_draw(monkeypatch):
    """Layers drawn with their pool, from rates (a twin) and from row profiles (spike_rows)."""
    wl, twin = _pooled_random_twin(0)
    _assert_same_trace(*_whole_and_blockwise(twin, "fixed", 2, 7, monkeypatch))
    profiled = fit_statistical_twin(wl, rates_policy="fixed")
    assert any(k.startswith("spike_rows/") for k in profiled.arrays)
    for policy in ("fixed", "atsn"):
        _assert_same_trace(*_whole_and_blockwise(profiled, policy, 0, 24, monkeypatch))


def test_the_shipped_vgg16_draws_alike_in_blocks(monkeypatch):
    wl = read_workload(WORKLOADS / "assumed" / "vgg16_cifar10.npz")
    whole, blocks = _whole_and_blockwise(wl, "atsn", 5, 3, monkeypatch)
    _assert_same_trace(whole, blocks)

    # the first two timesteps' thresholds kept, the rest made per image, 2 threads
    row = statistical_draw._DrawPlan(wl, 5, 3).row
    monkeypatch.setattr(statistical_draw, "THRESHOLD_KEEP_BYTES", 2 * 4 * row)
    _assert_same_trace(whole, draw_trace(wl, "atsn", 5, 3, threads=2))


# ------------------------------------------------------------------------------------------
# twin fitting
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 3, 5])
def test_twin_reproduces_the_trained_rates(seed):
    wl = random_workload(seed, images=24, timesteps=4)
    twin = fit_statistical_twin(wl, rates_policy="fixed")
    assert twin.layers == wl.layers
    assert twin.num_images == 24 and twin.kind == "statistical"
    result = run_forward(wl)
    expected = firing_rates(result)
    for ly in spiking_layers(wl.layers):
        np.testing.assert_allclose(twin.arrays[f"rate/{ly['name']}"], expected[ly["name"]], rtol=0, atol=1e-12)
    per_channel = fit_statistical_twin(wl, per_channel=True, rates_policy="fixed")
    for ly in spiking_layers(wl.layers):
        rate = per_channel.arrays[f"rate/{ly['name']}"]
        assert rate.shape == (4, ly["out_shape"][0])
        np.testing.assert_allclose(rate.mean(axis=1), expected[ly["name"]], atol=1e-12)
    if wl.input_encoding == "direct":
        x = wl.inputs()
        density = [float(((x >> k) & 1).mean()) for k in range(8)]
        np.testing.assert_allclose(twin.meta["input_bit_density"], density)
    assert histogram_mean(twin.arrays["exit_hist/fixed"]) == 4


def test_twin_histograms_and_running_rates_follow_the_policies():
    wl = random_workload(2, images=40, timesteps=4)
    twin = fit_statistical_twin(wl, rates_policy="atsn")
    from satasim_atsn.traces.twin_fit import twin_policies

    policies = twin_policies(wl)
    result = run_forward(wl)
    for p, policy in policies.items():
        steps = policy.exit_steps(result.logits, result.out_membrane, result.scale_per_t)
        np.testing.assert_allclose(twin.arrays[f"exit_hist/{p}"], np.bincount(steps - 1, minlength=4) / 40)
    atsn_steps = policies["atsn"].exit_steps(result.logits, result.out_membrane, result.scale_per_t)
    early = run_forward(wl, policy=policies["atsn"])
    np.testing.assert_array_equal(early.exit_t, atsn_steps)
    rates = firing_rates(early)  # the forward's own rates over the images still running
    for ly in spiking_layers(wl.layers):
        got = twin.arrays[f"rate/{ly['name']}"]
        running = np.array([(atsn_steps >= t).sum() for t in range(1, 5)])
        for t in range(4):
            if running[t]:
                assert abs(got[t] - rates[ly["name"]][t]) < 1e-12


def test_twin_rejects_statistical_and_bad_image_counts():
    with pytest.raises(WorkloadError, match="already statistical"):
        fit_statistical_twin(_small_statistical())
    with pytest.raises(WorkloadError, match="not in 1"):
        fit_statistical_twin(random_workload(0, images=3), images=5)


def _pooled_random_twin(seed: int):
    from satasim_atsn.traces.statistical import pooled_layers
    from satasim_atsn.traces.twin_fit import fit_statistical_twin
    from satasim_atsn.workload.synthetic import random_workload

    for s in range(seed, seed + 200):
        wl = random_workload(s, images=24, timesteps=3, size=8)
        if pooled_layers(wl.layers):  # drawn from the rates (tests/test_spike_rows.py: from row profiles)
            return wl, fit_statistical_twin(wl, rates_policy="fixed", spike_rows=False)
    raise AssertionError("no random workload with a pooled spiking layer")


def test_pooled_rates_are_fitted_and_drawn_consistently():
    """A twin carries max-pool rates; the drawn pooled map is the OR of the drawn layer, and both rates match."""
    from satasim_atsn.snn.forward import spike_maxpool
    from satasim_atsn.traces.statistical import pooled_layers
    from satasim_atsn.traces.statistical_draw import draw_trace

    wl, twin = _pooled_random_twin(0)
    pool = pooled_layers(wl.layers)[0]
    src = pool["inputs"][0]
    assert f"rate/{pool['name']}" in twin.arrays
    twin.meta["num_images"] = 4000
    trace = draw_trace(twin, "fixed", 0, 4000)
    drawn_src = trace.spikes[src]
    drawn_pool = trace.spikes[pool["name"]]
    n, T = drawn_src.shape[:2]
    flat = drawn_src.reshape((n * T,) + drawn_src.shape[2:]).astype(np.uint8)
    recomputed = spike_maxpool(flat, pool["kernel"], pool["stride"]).reshape(drawn_pool.shape)
    np.testing.assert_array_equal(recomputed.astype(bool), drawn_pool)
    for name in (src, pool["name"]):
        want = twin.arrays[f"rate/{name}"]
        got = trace.spikes[name].mean(axis=tuple(i for i in range(trace.spikes[name].ndim) if i != 1))
        np.testing.assert_allclose(got, want, atol=0.02)


def test_independent_or_pooling_overstates_pooled_rates():
    """Without a pooled rate the OR of independent draws overstates pooling: the reason pooled rates exist."""
    from satasim_atsn.traces.statistical import pooled_layers
    from satasim_atsn.traces.statistical_draw import draw_trace

    wl, twin = _pooled_random_twin(0)
    pool = pooled_layers(wl.layers)[0]
    r_in = twin.arrays[f"rate/{pool['inputs'][0]}"]
    del twin.arrays[f"rate/{pool['name']}"]
    twin.meta["num_images"] = 2000
    drawn = draw_trace(twin, "fixed", 0, 2000).spikes[pool["name"]].mean(axis=(0, 2, 3, 4))
    k2 = pool["kernel"] ** 2
    np.testing.assert_allclose(drawn, 1 - (1 - r_in) ** k2, atol=0.02)


def _shipped_statistical() -> list[str]:
    from satasim_atsn.study.metrics import workload_meta

    paths = [*WORKLOADS.glob("*.npz"), *WORKLOADS.glob("assumed/*.npz")]
    return sorted(p.relative_to(WORKLOADS).as_posix() for p in paths
                  if not p.name.endswith(".ckpt.npz") and workload_meta(str(p)).get("kind") == "statistical")


@pytest.mark.parametrize("path", _shipped_statistical())
def test_every_shipped_statistical_workload_rebuilds_from_its_rate_table(tmp_path, path):
    """A statistical workload names its rate table; `workload build` with it gives the same bytes."""
    from satasim_atsn.workload.format import write_workload

    wl = read_workload(WORKLOADS / path)
    table = WORKLOADS / "rates" / wl.meta["provenance"]["rate_table"]
    network = wl.name.split("-")[0]
    rebuilt = build_from_spec(load_rate_spec(table), network, wl.meta["dataset"])
    out = tmp_path / "rebuilt.npz"
    write_workload(out, rebuilt)
    assert out.read_bytes() == (WORKLOADS / path).read_bytes()


def _pooled_draw_by_numpy(u, threshold, shape, pshape, k, p_lo, c_lo, l_lo):
    """The conditional pooled draw written with numpy broadcasting: the witness of the numba kernel."""
    e = u.shape[0]
    c, h, w = shape
    ho, wo = pshape[1], pshape[2]
    psize = c * ho * wo
    size = c * h * w
    active = (u[:, p_lo : p_lo + psize] < threshold[:e, p_lo : p_lo + psize]).reshape(e, c, ho, 1, wo, 1)
    choice = np.minimum((u[:, c_lo : c_lo + psize] * (k * k)).astype(np.int64), k * k - 1).reshape(e, c, ho, 1, wo, 1)
    spikes = (u[:, l_lo : l_lo + size] < threshold[:e, l_lo : l_lo + size]).reshape(e, c, h, w)
    window = spikes[:, :, : ho * k, : wo * k].reshape(e, c, ho, k, wo, k)
    index = (np.arange(k)[:, None] * k + np.arange(k)[None, :]).reshape(1, 1, 1, k, 1, k)
    spikes[:, :, : ho * k, : wo * k] = (active & (window | (index == choice))).reshape(e, c, ho * k, wo * k)
    return spikes.reshape(e, size)


@pytest.mark.parametrize("shape,k,seed", [((3, 8, 8), 2, 0), ((2, 7, 9), 2, 1), ((4, 9, 10), 3, 2), ((1, 5, 5), 3, 3)])
def test_pooled_draw_kernel_equals_numpy_formula(shape, k, seed):
    """The numba window pass gives the broadcast formula's spikes bit for bit, also for k = 3 (float32
    products that round) and maps that windows do not tile."""
    from satasim_atsn.traces.draw_kernels import apply_pooled_windows

    rng = np.random.default_rng(seed)
    c, h, w = shape
    pshape = (c, h // k, w // k)
    psize, size = c * pshape[1] * pshape[2], c * h * w
    lead = 5  # other layers' uniforms before this one
    row = lead + 2 * psize + size
    e, T = 3, 4
    u = rng.random((e, row), dtype=np.float32)
    u[0, lead + psize : lead + 2 * psize] = np.float32(1.0) - np.float32(2.0**-24)  # the last choice bucket
    threshold = rng.random((T, row)).astype(np.float32)
    p_lo, c_lo, l_lo = lead, lead + psize, lead + 2 * psize
    want = _pooled_draw_by_numpy(u, threshold, shape, pshape, k, p_lo, c_lo, l_lo)
    got = u[:, l_lo : l_lo + size] < threshold[:e, l_lo : l_lo + size]
    apply_pooled_windows(u, threshold, c, h, w, pshape[1], pshape[2], k, k, p_lo, c_lo, got)
    np.testing.assert_array_equal(got, want)
    assert 0 < got.sum() < got.size


def _frame_pool_workload(tmp_path: Path):
    """A statistical workload on spike frames whose first layer max-pools the frames (T = 3, 2x6x6 input)."""
    net = tmp_path / "net.yaml"
    net.write_text("name: framepool\ninput_shape: [2, 6, 6]\nnum_classes: 3\nlayers:\n"
                   "  - {name: pool0, type: maxpool, kernel: 2}\n"
                   "  - {name: conv1, type: conv, out_channels: 3, kernel: 3, padding: 1}\n"
                   "  - {name: flat, type: flatten}\n"
                   "  - {name: fc, type: output}\n")
    rates = tmp_path / "rates.yaml"
    rates.write_text("network: framepool\ntimesteps: 3\nnum_images: 20\nrates: {conv1: 0.3}\n"
                     "input_frame_rate: [0.05, 0.6, 0.33]\n"
                     "datasets: {d: {seed: 5, exit_mean_timesteps: {atsn: 1.7, dtsnn: 2.2}}}\n")
    wl = build_from_spec(load_rate_spec(rates), str(net), "d")
    return wl


def test_a_pool_of_spike_frames_is_derived_and_simulated(tmp_path):
    """A max-pool reading the input's spike frames is a derived map like any other: the draw records it (the OR
    of the frames' windows), so the engine finds it (it raised KeyError)."""
    from satasim_atsn.hw.arch import load_arch
    from satasim_atsn.hw.engine import simulate

    wl = _frame_pool_workload(tmp_path)
    trace = draw_trace(wl, "fixed", 0, 6)
    frames = trace.inputs.astype(bool)  # [N, T, 2, 6, 6]
    expected = frames.reshape(6, 3, 2, 3, 2, 3, 2).any(axis=(4, 6))
    np.testing.assert_array_equal(trace.spikes["pool0"], expected)
    assert trace.spikes["pool0"].any()
    result = simulate(load_arch(ROOT / "archs" / "atsn16x16.yaml"), wl, images=4)
    assert result.counters()


def test_a_pooled_rate_the_draw_cannot_keep_is_refused(tmp_path):
    """rate/<pool> is drawn with the spiking layer it pools; on a pool of the input frames it was silently ignored."""
    from satasim_atsn.workload.format import validate

    wl = _frame_pool_workload(tmp_path)
    wl.arrays["rate/pool0"] = np.full(3, 0.5)
    with pytest.raises(WorkloadError, match="rate/pool0: the pool reads 'input', not a spiking layer"):
        validate(wl)


@pytest.mark.parametrize(("extra", "pools", "needle"), [
    ("pool_rate_ratio: 20\n", "kernel: 2", "pool_rate_ratio: 20 is more than kernel^2 = 4 of pool1"),
    ("default_rate: 1.5\n", "kernel: 2", "default_rate: rates must be finite and in [0, 1]"),
    ("rates: {conv1: 0.2, pool1: 0.4}\n", "kernel: 3, stride: 1", "rates.pool1: a pooled rate needs a pool of its "
     "own spiking layer whose windows have neurons of their own; pool1 is not one: its windows have no neurons of "
     "their own (kernel >= 2 x stride)"),
    ("pool_rate_ratio: 2\n", "kernel: 3, stride: 1", "pool_rate_ratio: applies to no max-pool of pooled: none of "
     "pool1 has windows with neurons of their own over a spiking layer it alone reads"),
    # overlapping windows (3x3 at stride 2 on 6x6: 4 windows over 32 neurons, the middle row and column shared)
    ("rates: {conv1: 0.2, pool1: 0.25}\n", "kernel: 3, stride: 2", "rates.pool1: at t = 1 the pooled rate 0.25 is "
     "outside [0.274477, 1], the range its input's rate 0.2 allows with 3x3 windows at stride 2 on a 6x6 map"),
    ("rates: {conv1: 0.2, pool1: 0.9}\n", "kernel: 2", "rates.pool1: at t = 1 the pooled rate 0.9 is outside "
     "[0.2, 0.8], the range its input's rate 0.2 allows with 2x2 windows"),
    ("rates: {conv1: [0.2, 0.3], pool1: [0.25, 0.1]}\n", "kernel: 2", "rates.pool1: at t = 2 the pooled rate 0.1 "
     "is outside [0.3, 1]"),
    ("rates: {conv1: 0.0, pool1: 0.01}\n", "kernel: 2", "rates.pool1: at t = 1 the pooled rate 0.01 is outside "
     "[0, 0]"),
])
def test_rate_table_values_the_draw_would_bend_are_refused(tmp_path, extra, pools, needle):
    """A pool ratio above kernel^2 was capped without a word, an unused default_rate of 1.5 passed, and a pooled
    rate on overlapping windows was called 'not a spiking layer'."""
    net = tmp_path / "net.yaml"
    net.write_text("name: pooled\ninput_shape: [1, 6, 6]\nnum_classes: 3\nlayers:\n"
                   "  - {name: conv1, type: conv, out_channels: 2, kernel: 3, padding: 1}\n"
                   f"  - {{name: pool1, type: maxpool, {pools}}}\n"
                   "  - {name: flat, type: flatten}\n  - {name: fc, type: output}\n")
    rates = tmp_path / "rates.yaml"
    body = extra if extra.startswith("rates:") else "rates: {conv1: 0.2}\n" + extra
    rates.write_text("network: pooled\ntimesteps: 2\nnum_images: 4\n" + body + "datasets: {d: {seed: 1}}\n")
    with pytest.raises(WorkloadError, match=re.escape(needle)):
        build_from_spec(load_rate_spec(rates), str(net), "d")


def test_a_twin_with_an_infeasible_pooled_rate_is_refused_on_load():
    """A pooled rate outside [r, min(1, k^2 r)] of its input was drawn with clipped window rates, so the trace
    fired at other rates than the file's, without a word."""
    from satasim_atsn.traces.statistical import pooled_layers
    from satasim_atsn.workload.format import validate

    wl, twin = _pooled_random_twin(0)
    pool = pooled_layers(wl.layers)[0]
    r_in = np.asarray(twin.arrays[f"rate/{pool['inputs'][0]}"], dtype=np.float64)
    validate(twin)  # the fitted one is feasible
    twin.arrays[f"rate/{pool['name']}"] = r_in * 0.5  # below its input's rate
    if np.all(r_in == 0):
        pytest.skip("the random workload's pooled layer never fires")
    with pytest.raises(WorkloadError, match=re.escape(f"rate/{pool['name']}: at t = ")):
        validate(twin)


def test_a_twin_moves_a_pooled_rate_its_draw_cannot_keep_into_range(monkeypatch):
    """On a map the windows do not tile, or with clustered spikes under overlapping windows, the measured pooled
    rate can lie outside what its input's rate allows. The twin dropped the rate (the pool was then the OR of
    independent draws, about twice as often); it now draws the nearest rate it can keep and says so."""
    from satasim_atsn.traces import statistical
    from satasim_atsn.workload.pool_windows import pooled_rate_problem

    wl, twin = _pooled_random_twin(0)
    assert "pooled_rates_clamped" not in twin.meta["provenance"]
    pool = statistical.pooled_layers(wl.layers)[0]
    src = np.asarray(twin.arrays[f"rate/{pool['inputs'][0]}"])
    if not src.any():
        pytest.skip("the random workload's pooled layer never fires")
    real = twin_fit._twin_counts

    def pool_measured_silent(*args, **kwargs):  # as if every spike of the input fell outside the windows
        counts, *rest = real(*args, **kwargs)
        counts[pool["name"]] = counts[pool["name"]] * 0
        return (counts, *rest)

    monkeypatch.setattr(twin_fit, "_twin_counts", pool_measured_silent)
    kept = twin_fit.fit_statistical_twin(wl, rates_policy="fixed")
    assert pooled_rate_problem(src, np.zeros_like(src), int(pool["kernel"]))
    np.testing.assert_array_equal(kept.arrays[f"rate/{pool['name']}"], src)  # the lowest it can keep: its input's
    assert kept.meta["provenance"]["pooled_rates_clamped"] == {
        pool["name"]: {"measured_mean": 0.0, "drawn_mean": round(float(src.mean()), 6)}}
    assert twin_fit.pool_notes(kept.meta["provenance"])[0].startswith(f"  note: {pool['name']}'s measured rate 0 ")
    np.testing.assert_array_equal(kept.arrays[f"rate/{pool['inputs'][0]}"], src)


def overlapping_pool_files(tmp_path: Path) -> tuple[Path, Path]:
    """A network file with a 3x3 stride-2 max-pool and a rate table whose pool_rate_ratio (1.2) lies below what
    independent windows can draw: (network, table)."""
    net = tmp_path / "net.yaml"
    net.write_text("name: pooled\ninput_shape: [1, 6, 6]\nnum_classes: 3\nlayers:\n"
                   "  - {name: conv1, type: conv, out_channels: 2, kernel: 3, padding: 1}\n"
                   "  - {name: pool1, type: maxpool, kernel: 3, stride: 2}\n"
                   "  - {name: flat, type: flatten}\n  - {name: fc, type: output}\n")
    table = tmp_path / "rates.yaml"
    table.write_text("network: pooled\ntimesteps: 2\nnum_images: 4\nrates: {conv1: 0.2}\npool_rate_ratio: 1.2\n"
                     "datasets: {d: {seed: 1}}\n")
    return net, table


def test_every_pool_that_cannot_carry_a_rate_is_named_and_a_clamped_ratio_is_said(tmp_path):
    """A pool whose input also fed another layer lost its rate without a word (a no-core pool was named), and a
    pool_rate_ratio below what the draw can keep was raised to the range's end silently (a helper's audit)."""
    from satasim_atsn.traces.twin_fit import _fit_pool_rates, pool_notes
    from satasim_atsn.workload.network_file import shaped_layers

    layers = shaped_layers([
        {"name": "c1", "type": "conv", "inputs": ["input"], "out_channels": 2, "kernel": 3, "stride": 1,
         "padding": 1, "spiking": True},
        {"name": "p1", "type": "maxpool", "inputs": ["c1"], "kernel": 3, "stride": 2},
        {"name": "c2", "type": "conv", "inputs": ["c1"], "out_channels": 2, "kernel": 3, "stride": 2,
         "padding": 0, "spiking": True},
        {"name": "f1", "type": "flatten", "inputs": ["p1"]}, {"name": "f2", "type": "flatten", "inputs": ["c2"]},
        {"name": "o", "type": "output", "inputs": ["f1"], "output_mode": "membrane", "logit_scale": 1.0},
    ], [1, 9, 9], 3, "test")
    rates = {"c1": np.full(2, 0.3), "c2": np.full(2, 0.1)}
    assert _fit_pool_rates(rates, layers) == (["p1"], {})
    assert "its input feeds no other layer" in pool_notes({"pooled_rates_not_kept": ["p1"]})[0]
    net, table = overlapping_pool_files(tmp_path)
    wl = build_from_spec(load_rate_spec(table), str(net), "d")
    clamped = wl.meta["provenance"]["pool_rate_ratio_clamped"]
    assert clamped == {"pool1": {"given_mean": 0.24, "drawn_mean": 0.274477}}  # the range's lower end (6x6, 3/2)
    np.testing.assert_allclose(wl.arrays["rate/pool1"], 0.274477, atol=1e-6)
    assert pool_notes(wl.meta["provenance"])[0].startswith("  note: pool_rate_ratio gives pool1 0.24 on average")


def _strided_draw_by_python(u, threshold, shape, pshape, k, s, p_lo, c_lo, l_lo):
    """docs/statistical.md's draw for windows at a stride s != k, written out with loops: the kernel's witness."""
    e = u.shape[0]
    c, h, w = shape
    ho, wo = pshape[1], pshape[2]
    size = c * h * w
    spikes = (u[:, l_lo : l_lo + size] < threshold[:e, l_lo : l_lo + size]).reshape(e, c, h, w).copy()
    rows = [[i for i in range(ho) if i * s <= y < i * s + k] for y in range(h)]
    cols = [[j for j in range(wo) if j * s <= x < j * s + k] for x in range(w)]
    for t in range(e):
        active = (u[t, p_lo : p_lo + c * ho * wo] < threshold[t, p_lo : p_lo + c * ho * wo]).reshape(c, ho, wo)
        for ch in range(c):
            for y in range(h):
                for x in range(w):
                    if any(not active[ch, i, j] for i in rows[y] for j in cols[x]):
                        spikes[t, ch, y, x] = False
            for i in range(ho):
                for j in range(wo):
                    if not active[ch, i, j]:
                        continue
                    core = [(y, x) for y in range(i * s, i * s + k) for x in range(j * s, j * s + k)
                            if rows[y] == [i] and cols[x] == [j]]
                    m = (ch * ho + i) * wo + j
                    pick = min(int(np.float32(u[t, c_lo + m]) * np.float32(len(core))), len(core) - 1)
                    spikes[t, ch][core[pick]] = True
    return spikes.reshape(e, size)


@pytest.mark.parametrize("shape,k,s,seed", [((2, 9, 9), 3, 2, 0), ((1, 10, 7), 3, 2, 1), ((2, 8, 8), 2, 3, 2),
                                            ((1, 11, 11), 5, 3, 3)])
def test_strided_pooled_draw_kernel_equals_the_documented_draw(shape, k, s, seed):
    """Overlapping windows (3x3 at stride 2, 5x5 at 3) and windows with gaps (2x2 at 3): inactive windows clear all
    their neurons, shared ones too, and an active window spikes at a drawn neuron of its own."""
    from satasim_atsn.traces.draw_kernels import apply_pooled_windows

    rng = np.random.default_rng(seed)
    c, h, w = shape
    pshape = (c, (h - k) // s + 1, (w - k) // s + 1)
    psize, size = c * pshape[1] * pshape[2], c * h * w
    lead = 3
    row = lead + 2 * psize + size
    e, T = 3, 4
    u = rng.random((e, row), dtype=np.float32)
    threshold = rng.random((T, row)).astype(np.float32)
    p_lo, c_lo, l_lo = lead, lead + psize, lead + 2 * psize
    want = _strided_draw_by_python(u, threshold, shape, pshape, k, s, p_lo, c_lo, l_lo)
    got = u[:, l_lo : l_lo + size] < threshold[:e, l_lo : l_lo + size]
    apply_pooled_windows(u, threshold, c, h, w, pshape[1], pshape[2], k, s, p_lo, c_lo, got)
    np.testing.assert_array_equal(got, want)
    assert 0 < got.sum() < got.size


@pytest.mark.parametrize("k,s,hw", [(3, 2, (16, 15)), (2, 3, (14, 14))])
def test_strided_pools_are_drawn_at_both_rates(k, s, hw):
    """A ResNet stem's 3x3 stride-2 max-pool (overlapping) and a pool with gaps carry their rate: the drawn layer
    fires at its rate and its OR-pool at the pool's, where independent draws fired the pool about twice as often."""
    from satasim_atsn.traces.statistical import build_statistical
    from satasim_atsn.traces.statistical_draw import draw_trace, spike_or_pool
    from satasim_atsn.workload.network_file import shaped_layers

    layers = shaped_layers([
        {"name": "c1", "type": "conv", "inputs": ["input"], "out_channels": 3, "kernel": 3, "stride": 1,
         "padding": 1, "spiking": True},
        {"name": "p1", "type": "maxpool", "inputs": ["c1"], "kernel": k, "stride": s},
        {"name": "f", "type": "flatten", "inputs": ["p1"]},
        {"name": "o", "type": "output", "inputs": ["f"], "output_mode": "membrane", "logit_scale": 1.0},
    ], [1, *hw], 10, "test")
    r_in = np.array([0.05, 0.2, 0.4])
    r_pool = np.array([0.12, 0.45, 0.8]) if s < k else np.array([0.15, 0.5, 0.8])
    wl = build_statistical(name="strided", dataset="x", num_classes=10, layers=layers, timesteps=3,
                           rates={"c1": r_in, "p1": r_pool}, exit_hist={"fixed": np.array([0.0, 0.0, 1.0])},
                           input_bit_density=[0.5] * 8, seed=3, num_images=1500, input_shape=[1, *hw])
    trace = draw_trace(wl, "fixed", 0, 1500)
    np.testing.assert_array_equal(spike_or_pool(trace.spikes["c1"], k, s), trace.spikes["p1"])
    np.testing.assert_allclose(trace.spikes["c1"].mean(axis=(0, 2, 3, 4)), r_in, rtol=0.03, atol=0.002)
    np.testing.assert_allclose(trace.spikes["p1"].mean(axis=(0, 2, 3, 4)), r_pool, rtol=0.03, atol=0.002)


def _mlp_network(tmp_path: Path) -> Path:
    """A two-layer network file on a flat input of 70 features (4 classes)."""
    net = tmp_path / "mlp.yaml"
    net.write_text("name: mlp\ninput_shape: [70]\nnum_classes: 4\nlayers:\n"
                   "  - {name: fc1, type: linear, out_features: 16}\n  - {name: out, type: output}\n")
    return net


@pytest.mark.parametrize(("value", "ok"), [("0.2", True), ("[0.2, 0.2, 0.2]", True), ("[0.2, 0.2]", False),
                                           ("1.5", False), ("true", False)])
def test_input_frame_rate_takes_one_rate_or_one_per_timestep(tmp_path, value, ok):
    """A layer's rate may be one number for every timestep; the input's frame rate had to be a list of T."""
    net = _mlp_network(tmp_path)
    rates = tmp_path / "rates.yaml"
    rates.write_text(f"network: mlp\ntimesteps: 3\nnum_images: 8\ndefault_rate: 0.1\ninput_frame_rate: {value}\n"
                     "datasets: {d: {seed: 1}}\n")
    if not ok:
        with pytest.raises(WorkloadError, match=re.escape("input_frame_rate: needs one rate in [0, 1], or 3 of them")):
            load_rate_spec(rates)
        return
    wl = build_from_spec(load_rate_spec(rates), str(net), "d")
    assert wl.input_encoding == "spike_frames"
    np.testing.assert_array_equal(wl.arrays["rate/input"], [0.2, 0.2, 0.2])


def _fixed_hist_workload(tmp_path: Path, hist: list[float]):
    from satasim_atsn.workload.format import validate

    wl = _frame_pool_workload(tmp_path)
    wl.arrays["exit_hist/fixed"] = np.asarray(hist, dtype=np.float64)
    return validate, wl


def test_a_fixed_histogram_that_stops_early_is_refused(tmp_path):
    """exit_hist/fixed = [.5, 0, .5] made the conventional design stop half the images at t = 1 (mean T 2.0)."""
    validate, wl = _fixed_hist_workload(tmp_path, [0.0, 0.0, 1.0])
    validate(wl)
    validate, wl = _fixed_hist_workload(tmp_path, [0.5, 0.0, 0.5])
    with pytest.raises(WorkloadError, match=re.escape("exit_hist/fixed: sends 0.5 of the images out before t = 3, "
                                                      "but a fixed-T design runs every image all T timesteps")):
        validate(wl)


def test_a_negative_seed_is_shown_with_its_value(tmp_path):
    """It said 'got int64 []', which names no value."""
    validate, wl = _fixed_hist_workload(tmp_path, [0.0, 0.0, 1.0])
    wl.arrays["seed"] = np.asarray(-3, dtype=np.int64)
    with pytest.raises(WorkloadError, match=re.escape("seed: must be one non-negative integer, got int64 -3")):
        validate(wl)
    wl.arrays["seed"] = np.asarray([1, 2], dtype=np.int64)
    with pytest.raises(WorkloadError, match=re.escape("got int64 of shape [2]")):
        validate(wl)


def test_a_rate_table_may_not_give_the_fixed_histogram(tmp_path):
    net = _mlp_network(tmp_path)
    rates = tmp_path / "rates.yaml"
    rates.write_text("network: mlp\ntimesteps: 3\nnum_images: 8\ndefault_rate: 0.1\n"
                     "datasets: {d: {seed: 1, exit_histograms: {fixed: [1, 0, 0]}}}\n")
    with pytest.raises(WorkloadError, match=re.escape("datasets.d.exit_histograms.fixed: a fixed-T design runs every "
                                                      "image all T timesteps")):
        build_from_spec(load_rate_spec(rates), str(net), "d")


@pytest.mark.parametrize(("value", "needle"), [
    (np.full(3, 1.5), "rate/input: rates must be finite and in [0, 1]"),
    (np.full(3, -0.5), "rate/input: rates must be finite and in [0, 1]"),
    (np.full(3, 1, dtype=np.int64), "rate/input: has dtype int64"),
    (np.full((3, 3), 0.1), "rate/input: has shape [3, 3]; use [T] or [T, C] = [3, 2]"),
    (np.full((3, 2, 1), 0.1), "rate/input: has shape [3, 2, 1]"),
    (np.full(2, 0.1), "rate/input: has shape [2]"),
    (np.asarray(0.1), "rate/input: has shape []"),
])
def test_a_bad_input_frame_rate_is_refused(tmp_path, value, needle):
    """rate/input of 1.5, -0.5, ints or [T, 3] for 2 channels ran (the last shifted every later layer's
    thresholds); other shapes ended in a numpy traceback."""
    from satasim_atsn.workload.format import validate

    wl = _frame_pool_workload(tmp_path)
    validate(wl)
    wl.arrays["rate/input"] = value
    with pytest.raises(WorkloadError, match=re.escape(needle)):
        validate(wl)


def test_a_spike_frame_workload_with_pixel_densities_is_refused(tmp_path):
    from satasim_atsn.workload.format import validate

    wl = _frame_pool_workload(tmp_path)
    wl.meta["input_bit_density"] = [0.5] * 8
    with pytest.raises(WorkloadError, match=re.escape("meta.input_bit_density: is given, but the inputs are spike "
                                                      "frames")):
        validate(wl)


def test_a_spiking_output_network_without_num_classes_builds_from_a_table(tmp_path):
    """Its classes are its last layer's neurons (as --rate has it); the table route asked for a known dataset."""
    net = tmp_path / "spk.yaml"
    net.write_text("name: spk\ninput_shape: [1, 8, 8]\nlayers:\n"
                   "  - {name: c1, type: conv, out_channels: 4, kernel: 3, padding: 1}\n"
                   "  - {name: f, type: flatten}\n  - {name: fc, type: linear, out_features: 3}\n")
    rates = tmp_path / "rates.yaml"
    rates.write_text("network: spk\ntimesteps: 3\nnum_images: 8\ndefault_rate: 0.1\ndatasets: {mine: {seed: 1}}\n")
    wl = build_from_spec(load_rate_spec(rates), str(net), "mine")
    assert wl.num_classes == 3


def test_the_missing_histogram_hint_is_a_command_that_works(tmp_path):
    from satasim_atsn.traces.exit_histograms import require_histogram

    wl = _frame_pool_workload(tmp_path)
    del wl.arrays["exit_hist/fixed"]
    with pytest.raises(WorkloadError) as info:
        require_histogram(wl, "fixed")
    assert "--exit-mean fixed" not in str(info.value) and "every build writes exit_hist/fixed" in str(info.value)
    with pytest.raises(WorkloadError, match=re.escape("--exit-mean atsn=MEAN")) as info:
        wl2 = _frame_pool_workload(tmp_path)
        del wl2.arrays["exit_hist/atsn"]
        require_histogram(wl2, "atsn")
    # built from a rate table, where build refuses --exit-mean: the table's field, followed, gives the histogram
    assert "with --rates a table whose dataset gives atsn in exit_mean_timesteps or exit_histograms" in str(info.value)
    net = tmp_path / "spk.yaml"
    net.write_text("name: out3\ninput_shape: [1, 8, 8]\nnum_classes: 3\nlayers:\n"
                   "  - {name: c1, type: conv, out_channels: 4, kernel: 3, padding: 1}\n"
                   "  - {name: f, type: flatten}\n  - {name: out, type: output}\n")
    rates = tmp_path / "rates.yaml"
    rates.write_text("network: out3\ntimesteps: 3\nnum_images: 8\ndefault_rate: 0.1\n"
                     "datasets: {mine: {seed: 1, exit_mean_timesteps: {atsn: 2.0}}}\n")
    require_histogram(build_from_spec(load_rate_spec(rates), str(net), "mine"), "atsn")


def test_a_boolean_inside_a_rate_list_is_refused(tmp_path):
    """numpy turns [0.1, True] into [0.1, 1.0]: a rate of 1 nobody wrote."""
    net = _mlp_network(tmp_path)
    rates = tmp_path / "rates.yaml"
    rates.write_text("network: mlp\ntimesteps: 2\nnum_images: 8\nrates: {fc1: [0.1, true]}\ndatasets: {d: {seed: 1}}\n")
    with pytest.raises(WorkloadError, match="rates.fc1: is not a number or a list of numbers"):
        build_from_spec(load_rate_spec(rates), str(net), "d")
    rates.write_text("network: mlp\ntimesteps: 2\nnum_images: 8\nrates: {fc1: [0.1, 1]}\n"
                     "datasets: {d: {seed: 1, exit_histograms: {fixed: [0, 1]}}}\n")  # the build's own: accepted
    wl = build_from_spec(load_rate_spec(rates), str(net), "d")
    np.testing.assert_array_equal(wl.arrays["rate/fc1"], [0.1, 1.0])


# ------------------------------------------------------------------------------------------
# row profiles of the input (input_row_bits, docs/statistical.md step 3)
# ------------------------------------------------------------------------------------------
def _with_rows(wl, counts):
    arrays = dict(wl.arrays)
    arrays["input_row_bits"] = counts
    return type(wl)(meta=wl.meta, arrays=arrays, source="rows.npz")


def test_row_profiles_set_each_images_plane_thresholds():
    from satasim_atsn.workload.format import validate

    wl = _small_statistical()
    c, h, w = wl.input_shape
    rng = np.random.default_rng(4)
    counts = rng.integers(0, w + 1, size=(3, 8, c, h)).astype(np.uint8)
    counts[0, 7] = 0  # image 0 (and 3): plane 7 silent
    counts[1, 7] = w  # image 1: plane 7 set everywhere
    rows = validate(_with_rows(wl, counts))
    trace = draw_trace(rows, "fixed", 0, 5)
    plain = draw_trace(wl, "fixed", 0, 5)
    for i in range(5):  # the same uniforms, profile i mod 3 as thresholds
        rgen = np.random.Generator(np.random.PCG64([int(wl.arrays["seed"]), i]))
        rgen.random(len(POLICIES))
        pixels = np.zeros(wl.input_shape, dtype=np.uint8)
        for k in range(8):
            thr = (counts[i % 3, k] / w).astype(np.float32)[:, :, None]
            pixels |= (rgen.random(wl.input_shape, dtype=np.float32) < thr).astype(np.uint8) << k
        np.testing.assert_array_equal(trace.inputs[i], pixels)
    assert not (trace.inputs[[0, 3]] & 128).any() and (trace.inputs[1] & 128).all()
    for name in plain.spikes:  # everything after the input draws as before
        np.testing.assert_array_equal(trace.spikes[name], plain.spikes[name])
    np.testing.assert_array_equal(trace.exit_t, plain.exit_t)


def test_twin_keeps_each_images_row_profile_and_draws_its_clustering():
    wl = random_workload(0, images=6, timesteps=4)
    x = wl.inputs()
    x[:, :, : x.shape[2] // 2] = 255  # every image bright in its top half, dark below
    x[:, :, x.shape[2] // 2 :] = 0
    wl.arrays["x"] = x
    twin = fit_statistical_twin(wl, rates_policy="fixed")
    counts = twin.arrays["input_row_bits"]
    assert counts.dtype == np.uint8 and counts.shape == (6, 8) + tuple(x.shape[1:3])
    expected = np.stack([((x >> k) & 1).sum(axis=-1) for k in range(8)], axis=1)
    np.testing.assert_array_equal(counts, expected)
    np.testing.assert_allclose(twin.meta["input_bit_density"], counts.sum(axis=(0, 2, 3)) / x[0].size / 6)
    drawn = draw_trace(twin, "fixed", 0, 6).inputs
    np.testing.assert_array_equal(drawn, x)  # densities 0 and 1: the layout itself
    old = fit_statistical_twin(wl, rates_policy="fixed", input_rows=False)
    assert "input_row_bits" not in old.arrays
    assert (draw_trace(old, "fixed", 0, 6).inputs != x).mean() > 0  # one density per plane: no layout


def test_reader_refuses_bad_row_profiles(tmp_path):
    from satasim_atsn.workload.format import validate

    wl = _small_statistical()
    c, h, w = wl.input_shape
    cases = [
        (np.zeros((2, 8, c, h), dtype=np.float64), "has dtype float64"),
        (np.zeros((2, 8, c, h + 1), dtype=np.uint8), f"use [M, 8, C, H] = [M, 8, {c}, {h}]"),
        (np.zeros((0, 8, c, h), dtype=np.uint8), "has shape [0,"),
        (np.full((1, 8, c, h), w + 1, dtype=np.uint16), f"counts must be in [0, {w}]"),
    ]
    for counts, message in cases:
        with pytest.raises(WorkloadError, match=r"rows\.npz.*input_row_bits: .*" + re.escape(message)):
            validate(_with_rows(wl, counts))
    frames = _small_statistical(encoding="spike_frames")
    with pytest.raises(WorkloadError, match="input_row_bits: is not an array"):
        validate(_with_rows(frames, np.zeros((1, 8) + tuple(frames.input_shape[:2]), dtype=np.uint8)))
