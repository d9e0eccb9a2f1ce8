"""The statistical draw and fit checked against docs/statistical.md's own words and hand-computed numbers (not the
code's constants or output): the exit uniforms' order, an image's stream by its absolute index, the exit histogram's
mean timestep, per-timestep rates and bit planes, row profiles of a non-square map, a layer drawn with its pool, the
twin's and rate table's fit over the running images, and the numbers `workload info` and `workload rates` print.
Written for mutation testing (session 37, h9): each test fails on a wrong version the rest of the suite let through
or caught only by a pinned digest."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from satasim_atsn.cli import main
from satasim_atsn.snn.exit_policies import FixedPolicy
from satasim_atsn.snn.forward import run_forward
from satasim_atsn.traces.commands import workload_summary
from satasim_atsn.traces.draw_kernels import apply_pooled_rows
from satasim_atsn.traces.exit_histograms import fixed_histogram, histogram_mean, max_entropy_histogram
from satasim_atsn.traces.functional import functional_trace
from satasim_atsn.traces.rate_table import build_from_spec, load_rate_spec, measure_rate_table
from satasim_atsn.traces.statistical import build_statistical, spiking_layers
from satasim_atsn.traces.statistical_draw import draw_exit_steps, draw_trace
from satasim_atsn.traces.twin_fit import fit_statistical_twin, twin_policies
from satasim_atsn.workload.format import write_workload
from satasim_atsn.workload.synthetic import random_workload

T = 4
LAYERS = [  # input [2, 6, 6] -> conv1 (3 channels, 3x3, padding 1) -> flatten -> output (4 classes)
    {"name": "conv1", "type": "conv", "inputs": ["input"], "out_channels": 3, "kernel": 3, "stride": 1,
     "padding": 1, "spiking": True},
    {"name": "flat", "type": "flatten", "inputs": ["conv1"]},
    {"name": "out", "type": "output", "inputs": ["flat"], "out_features": 4, "output_mode": "membrane",
     "logit_scale": 0.05},
]
ATSN = [0.4, 0.3, 0.2, 0.1]  # mean timestep 1(0.4) + 2(0.3) + 3(0.2) + 4(0.1) = 2.0
DTSNN = [0.1, 0.2, 0.3, 0.4]  # mean 3.0


def _tiny(rate=(0.05, 0.6, 0.2, 0.9), density=(0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4), num_images=10000,
          seed=11):
    """A hand-built statistical workload: conv1's rate differs at every timestep, the exit histograms differ."""
    return build_statistical(
        name="tiny", dataset="synthetic", num_classes=4, layers=LAYERS, timesteps=T,
        rates={"conv1": np.asarray(rate, dtype=np.float64)},
        exit_hist={"fixed": fixed_histogram(T), "dtsnn": DTSNN, "atsn": ATSN},
        input_bit_density=list(density), input_shape=[2, 6, 6], seed=seed, num_images=num_images)


def _documented_exit_steps(seed: int, image: int, hists: dict) -> dict:
    """Step 2 written out: one float64 uniform per policy in the order fixed, dtsnn, atsn; exit_t = 1 + the number of
    cumulative counts (out of 2^32) at or below floor(u * 2^32), clipped to T."""
    rng = np.random.Generator(np.random.PCG64([seed, image]))
    steps = {}
    for policy in ("fixed", "dtsnn", "atsn"):  # the documented order, literally
        u = rng.random()
        cdf = np.cumsum(np.rint(np.asarray(hists[policy]) * 2**32).astype(np.int64))
        steps[policy] = min(1 + int((cdf <= math.floor(u * 2**32)).sum()), len(cdf))
    return steps


def test_exit_uniforms_follow_the_documented_order_and_the_images_absolute_index():
    wl = _tiny()
    hists = {"fixed": fixed_histogram(T), "dtsnn": DTSNN, "atsn": ATSN}
    start, count = 37, 25  # image i's stream is PCG64([seed, i]) with i its index in the workload, not in the range
    want = [_documented_exit_steps(11, start + j, hists) for j in range(count)]
    steps = draw_exit_steps(wl, start, count)
    for policy in ("fixed", "dtsnn", "atsn"):
        expected = [w[policy] for w in want]
        assert steps[policy].tolist() == expected, policy
        assert draw_trace(wl, policy, start, count).exit_t.tolist() == expected, policy


def test_drawn_exit_steps_have_the_histograms_mean_and_shares():
    n = 4000
    steps = draw_exit_steps(_tiny(), 0, n)
    t = np.arange(1, T + 1)
    for policy, hist in (("atsn", ATSN), ("dtsnn", DTSNN)):
        p = np.asarray(hist)
        mean = float((t * p).sum())  # 2.0 and 3.0
        sd = math.sqrt(float((t * t * p).sum()) - mean**2)  # 1.0 for both
        assert abs(steps[policy].mean() - mean) < 5 * sd / math.sqrt(n), policy  # 5 standard errors: 0.079
        share = np.bincount(steps[policy] - 1, minlength=T)[:T] / n
        assert (np.abs(share - p) < 5 * np.sqrt(p * (1 - p) / n)).all(), (policy, share)
    assert (steps["fixed"] == T).all()


def test_each_timestep_is_drawn_at_its_own_rate_and_bit_planes_at_theirs():
    rate = np.array([0.05, 0.6, 0.2, 0.9])
    density = np.array([0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4])  # bit 0 (least significant) first
    n = 300
    trace = draw_trace(_tiny(tuple(rate), tuple(density)), "fixed", 0, n)
    spikes = trace.spikes["conv1"]  # [n, T, 3, 6, 6]
    neurons = n * 3 * 6 * 6
    got = spikes.reshape(n, T, -1).mean(axis=(0, 2))
    assert (np.abs(got - rate) < 5 * np.sqrt(rate * (1 - rate) / neurons)).all(), got  # 5 binomial sigmas
    pixels = trace.inputs.reshape(-1)
    bits = np.array([((pixels >> k) & 1).mean() for k in range(8)])
    assert (np.abs(bits - density) < 5 * np.sqrt(density * (1 - density) / pixels.size)).all(), bits
    expected_mean = float((density * 2.0 ** np.arange(8)).sum())  # E[pixel] = sum_k 2^k d_k = 111.9
    assert abs(pixels.mean() - expected_mean) < 0.02 * expected_mean


def _running_rates(wl, steps: np.ndarray, spikes: dict) -> dict:
    """docs/statistical.md step 4: the rate of a layer at t over the images still running at t (exit step >= t), per
    channel over the channel's positions (all images where none runs): {layer: [T, C]}, from recorded spikes."""
    running = steps[:, None] >= np.arange(1, T + 1)[None, :]  # [N, T]
    running[:, ~running.any(axis=0)] = True
    out = {}
    for ly in spiking_layers(wl.layers):
        s = spikes[ly["name"]].astype(np.int64)
        s = s.reshape(s.shape[0], T, s.shape[2], -1)  # [N, T, C, positions]
        out[ly["name"]] = np.array([s[running[:, t], t].sum(axis=(0, 2)) / (running[:, t].sum() * s.shape[3])
                                    for t in range(T)])
    return out


def test_a_twins_rates_average_each_timestep_over_the_images_still_running():
    """The rates at t average over the images still running at t under --rates-policy; per channel over each
    channel's positions; each policy's histogram is its steps' shares."""
    wl = random_workload(2, images=40, timesteps=T)
    policies = twin_policies(wl)
    full = run_forward(wl, policy=FixedPolicy(), record_spikes=True)
    steps = policies["atsn"].exit_steps(full.logits, full.out_membrane, full.scale_per_t)
    assert (steps < T).any()  # some images exit early, so the count of running images matters
    want = _running_rates(wl, steps, full.spikes)
    twin = fit_statistical_twin(wl, rates_policy="atsn")
    per_channel = fit_statistical_twin(wl, rates_policy="atsn", per_channel=True)
    for name, rate in want.items():
        np.testing.assert_allclose(twin.arrays[f"rate/{name}"], rate.mean(axis=1), rtol=0, atol=1e-12)
        np.testing.assert_allclose(per_channel.arrays[f"rate/{name}"], rate, rtol=0, atol=1e-12)
    for policy, pol in policies.items():  # the histogram is the steps' shares, its mean their mean
        got = pol.exit_steps(full.logits, full.out_membrane, full.scale_per_t)
        np.testing.assert_allclose(twin.arrays[f"exit_hist/{policy}"], [(got == t).mean() for t in range(1, T + 1)],
                                   rtol=0, atol=1e-9)
        assert abs(histogram_mean(twin.arrays[f"exit_hist/{policy}"]) - got.mean()) < 1e-8


def test_a_measured_rate_table_holds_the_running_rates_bit_densities_and_exit_shares():
    """`workload rates`: rates over the images running under the rates policy (6 decimals), the input's bit-plane
    densities with bit 0 first (6 decimals), each policy's exit shares (9 decimals)."""
    wl = random_workload(2, images=30, timesteps=T, encoding="direct")
    policies = twin_policies(wl)
    full = run_forward(wl, policy=FixedPolicy(), record_spikes=True)
    x = wl.inputs()
    assert len(set(policies["atsn"].exit_steps(full.logits, full.out_membrane, full.scale_per_t))) > 1
    for rates_policy in ("fixed", "atsn"):
        table = measure_rate_table(wl, "net", "d", label="test", rates_policy=rates_policy)
        steps = policies[rates_policy].exit_steps(full.logits, full.out_membrane, full.scale_per_t)
        for name, rate in _running_rates(wl, steps, full.spikes).items():
            np.testing.assert_allclose(table["rates"][name], rate.mean(axis=1), rtol=0, atol=5e-7)
    np.testing.assert_allclose(table["input_bit_density"], [((x >> k) & 1).mean() for k in range(8)], rtol=0,
                               atol=5e-7)
    for policy, hist in table["datasets"]["d"]["exit_histograms"].items():
        got = policies[policy].exit_steps(full.logits, full.out_membrane, full.scale_per_t)
        np.testing.assert_allclose(hist, [(got == t).mean() for t in range(1, T + 1)], rtol=0, atol=5e-10)


def test_a_functional_trace_of_a_range_draws_those_images():
    wl = _tiny(num_images=50)
    part = functional_trace(wl, FixedPolicy(), "atsn", 20, 4)
    for j in range(4):
        alone = draw_trace(wl, "atsn", 20 + j, 1)
        assert part.exit_t[j] == alone.exit_t[0]
        np.testing.assert_array_equal(part.inputs[j], alone.inputs[0])
        np.testing.assert_array_equal(part.spikes["conv1"][j], alone.spikes["conv1"][0])


def test_max_entropy_histograms_hit_the_mean_on_the_2_to_the_32_grid():
    """docs: the shape is rounded to integers out of 2^32 that sum exactly to 2^32 with the mean as close to the
    given one as the grid allows: sum_t t * n_t is round(mean * 2^32) exactly (so within 2^-33 of the mean)."""
    cases = [(1 + 3 * i / 40, 4) for i in range(1, 40)] + [(1.03, 4), (1.225, 4), (7.77, 16), (1.01, 64), (40.5, 64)]
    for mean, steps in cases:
        counts = [round(float(p) * 2**32) for p in max_entropy_histogram(mean, steps)]
        assert sum(counts) == 2**32, mean
        assert sum((t + 1) * n for t, n in enumerate(counts)) == round(mean * 2**32), mean


def test_row_profiles_of_a_map_wider_than_tall_divide_by_its_width():
    """Steps 3 and 4 on a 3 x 8 map: row y of plane k (or of conv1 at t) fires at count / W with W = 8, the row's
    length, so an image's set bits per row are the profile's counts in expectation."""
    h, w, images = 3, 8, 400
    plane_counts = np.zeros((1, 8, 1, h), dtype=np.uint8)
    plane_counts[0, :, 0] = [[1, 4, 8], [0, 2, 6], [3, 3, 3], [8, 0, 1], [5, 7, 2], [2, 1, 0], [6, 6, 6], [4, 0, 8]]
    conv_counts = np.zeros((1, T, 3, h), dtype=np.uint8)
    conv_counts[0, :, :, 0], conv_counts[0, :, :, 1], conv_counts[0, :, :, 2] = 1, 3, 6  # rows at 1/8, 3/8, 6/8
    wl = build_statistical(
        name="wide", dataset="synthetic", num_classes=4, layers=LAYERS, timesteps=T,
        rates={"conv1": np.full(T, 0.5)}, exit_hist={"fixed": fixed_histogram(T)},
        input_bit_density=list(plane_counts[0, :, 0].mean(axis=1) / w), input_shape=[1, h, w], seed=5,
        num_images=images, input_row_bits=plane_counts, spike_rows={"conv1": conv_counts})
    trace = draw_trace(wl, "fixed", 0, images)
    pixels = trace.inputs.reshape(images, h, w)
    for k in range(8):
        p = plane_counts[0, k, 0] / w
        got = ((pixels >> k) & 1).mean(axis=(0, 2))  # per row
        assert (np.abs(got - p) <= 5 * np.sqrt(p * (1 - p) / (images * w)) + 1e-12).all(), (k, got)
    got = trace.spikes["conv1"].mean(axis=(0, 1, 2, 4))  # per row, over images, timesteps, channels and columns
    p = np.array([1, 3, 6]) / w
    assert (np.abs(got - p) < 5 * np.sqrt(p * (1 - p) / (images * T * 3 * w))).all(), got


def test_a_datasets_rates_win_over_the_tables_and_a_pool_ratio_scales_its_input(tmp_path):
    """A rate table: a layer's rate is the dataset's entry over the table's; pool_rate_ratio gives a rated pool
    ratio x its input's rate (here inside the drawable range [r_in, min(1, 4 r_in)] of 2x2 windows, so kept)."""
    net = tmp_path / "net.yaml"
    net.write_text("name: pooled\ninput_shape: [1, 6, 6]\nnum_classes: 3\nlayers:\n"
                   "  - {name: conv1, type: conv, out_channels: 2, kernel: 3, padding: 1}\n"
                   "  - {name: pool1, type: maxpool, kernel: 2, stride: 2}\n"
                   "  - {name: flat, type: flatten}\n  - {name: fc, type: output}\n")
    rates = tmp_path / "rates.yaml"
    rates.write_text("network: pooled\ntimesteps: 2\nnum_images: 4\nrates: {conv1: 0.2}\npool_rate_ratio: 2\n"
                     "datasets: {d: {seed: 1, rates: {conv1: [0.1, 0.3]}}, e: {seed: 1}}\n")
    spec = load_rate_spec(rates)
    built = build_from_spec(spec, str(net), "d")
    np.testing.assert_allclose(built.arrays["rate/conv1"], [0.1, 0.3], rtol=0, atol=1e-15)
    np.testing.assert_allclose(built.arrays["rate/pool1"], [0.2, 0.6], rtol=0, atol=1e-15)
    other = build_from_spec(spec, str(net), "e")  # no rates of its own: the table's
    np.testing.assert_allclose(other.arrays["rate/conv1"], [0.2, 0.2], rtol=0, atol=1e-15)
    np.testing.assert_allclose(other.arrays["rate/pool1"], [0.4, 0.4], rtol=0, atol=1e-15)


def test_info_shows_a_per_channel_rate_as_its_mean_over_the_channels():
    rate = np.array([[0.1, 0.2, 0.6], [0.0, 0.0, 0.9], [0.5, 0.5, 0.5], [1.0, 0.0, 0.2]])  # [T, C]
    wl = build_statistical(
        name="tiny", dataset="synthetic", num_classes=4, layers=LAYERS, timesteps=T, rates={"conv1": rate},
        exit_hist={"fixed": fixed_histogram(T), "dtsnn": DTSNN, "atsn": ATSN}, input_bit_density=[0.5] * 8,
        input_shape=[2, 6, 6], seed=1, num_images=10)
    summary = workload_summary(wl)
    np.testing.assert_allclose(summary["rates"]["conv1"], [0.3, 0.3, 0.5, 0.4], rtol=0, atol=1e-12)
    assert summary["exit_mean_timestep"] == {"fixed": 4.0, "dtsnn": 3.0, "atsn": 2.0}


def test_rates_prints_each_policys_mean_exit_timestep(tmp_path, capsys):
    """`workload rates` says the mean exit timestep of each measured policy: the mean of its images' exit steps."""
    wl = random_workload(2, images=30, timesteps=T, encoding="direct")
    trained = tmp_path / "trained.npz"
    write_workload(trained, wl)
    layers = [{k: v for k, v in ly.items() if k not in ("in_shape", "out_shape")} for ly in wl.layers]
    net = tmp_path / "n.yaml"
    net.write_text(yaml.safe_dump({"name": "n", "input_shape": list(wl.input_shape), "layers": layers}))
    with pytest.raises(SystemExit) as info:
        main(["workload", "rates", str(trained), "--network", str(net), "--dataset", "d",
              "-o", str(tmp_path / "t.yaml")])
    out = capsys.readouterr().out
    assert info.value.code == 0
    full = run_forward(wl, policy=FixedPolicy(), record_spikes=True)
    line = out.strip().splitlines()[-1]
    for policy in ("dtsnn", "atsn"):  # 30 images: a mean k/30 never lies on a rounding boundary of 3 decimals
        steps = twin_policies(wl)[policy].exit_steps(full.logits, full.out_membrane, full.scale_per_t)
        assert f"{policy} {steps.mean():.3f}" in line, (policy, steps.mean(), line)


def _pooled_layers(channels: int) -> list[dict]:
    """conv1 (3x3, padding 1: the input's map) -> a 2x2 max-pool at stride 2 -> flatten -> output."""
    return [{"name": "conv1", "type": "conv", "inputs": ["input"], "out_channels": channels, "kernel": 3,
             "stride": 1, "padding": 1, "spiking": True},
            {"name": "pool1", "type": "maxpool", "inputs": ["conv1"], "kernel": 2, "stride": 2},
            {"name": "flat", "type": "flatten", "inputs": ["pool1"]},
            {"name": "out", "type": "output", "inputs": ["flat"], "out_features": 4, "output_mode": "membrane",
             "logit_scale": 0.05}]


def test_a_layer_drawn_with_its_pool_fires_at_its_rate_at_every_window_position_and_outside():
    """Step 4 on a 7x7 map under 2x2 windows (row and column 6 outside every window), r_in = 0.2, r_pool = 0.5:
    q = (4 r_in / r_pool - 1) / 3 = 0.2, so each window position fires at r_pool (1/4 + 3/4 q) = 0.2 = r_in, the
    neurons outside at r_in, the pooled map at r_pool."""
    images, channels = 400, 2
    wl = build_statistical(
        name="pooled", dataset="synthetic", num_classes=4, layers=_pooled_layers(channels), timesteps=T,
        rates={"conv1": np.full(T, 0.2), "pool1": np.full(T, 0.5)}, exit_hist={"fixed": fixed_histogram(T)},
        input_bit_density=[0.5] * 8, input_shape=[1, 7, 7], seed=3, num_images=images)
    trace = draw_trace(wl, "fixed", 0, images)
    s = trace.spikes["conv1"].reshape(-1, 7, 7)  # [images * T * channels, 7, 7]
    inside = s[:, :6, :6].reshape(-1, 3, 2, 3, 2)  # [.., window row, dy, window column, dx]
    per_position = inside.mean(axis=(0, 1, 3))  # [dy, dx]
    samples = s.shape[0] * 9
    assert (np.abs(per_position - 0.2) < 5 * np.sqrt(0.2 * 0.8 / samples)).all(), per_position
    outside = np.concatenate([s[:, 6, :].reshape(-1), s[:, :6, 6].reshape(-1)])
    assert abs(outside.mean() - 0.2) < 5 * np.sqrt(0.2 * 0.8 / outside.size), outside.mean()
    pooled = trace.spikes["pool1"]
    assert abs(pooled.mean() - 0.5) < 5 * np.sqrt(0.25 / pooled.size), pooled.mean()


def test_a_pooled_layers_row_profiles_hold_each_rows_count_in_expectation():
    """Step 4, row profiles of a layer and its tiling pool on a 4 x 8 map: row y holds c_y spikes in expectation
    (c = 2, 6, 1, 3) and pooled row i fires P_i windows (P = 4, 2 of 4), from c_y <= k P and P <= S."""
    images = 400
    rows = np.zeros((1, T, 1, 4), dtype=np.uint8)
    rows[0, :, 0] = [2, 6, 1, 3]
    pool_rows = np.zeros((1, T, 1, 2), dtype=np.uint8)
    pool_rows[0, :, 0] = [4, 2]
    wl = build_statistical(
        name="rows", dataset="synthetic", num_classes=4, layers=_pooled_layers(1), timesteps=T,
        rates={"conv1": np.full(T, 0.375), "pool1": np.full(T, 0.75)}, exit_hist={"fixed": fixed_histogram(T)},
        input_bit_density=[0.5] * 8, input_shape=[1, 4, 8], seed=4, num_images=images,
        spike_rows={"conv1": rows, "pool1": pool_rows})
    trace = draw_trace(wl, "fixed", 0, images)
    per_row = trace.spikes["conv1"].sum(axis=-1).mean(axis=(0, 1, 2))  # spikes per row, over images and t
    np.testing.assert_allclose(per_row, [2, 6, 1, 3], rtol=0, atol=0.1)  # sd of a row's count <= 2, 1600 samples
    pooled = trace.spikes["pool1"].sum(axis=-1).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(pooled, [4, 2], rtol=0, atol=0.1)


def test_the_window_choice_takes_the_first_position_whose_cumulative_weight_exceeds_u_k_s():
    """Step 4's choice on one 2x2 window with row counts c = (1, 1): S = 2, u = 0.25 gives u k S = 1 exactly; the
    cumulative weights row-major are 1, 2, 3, 4, so the first to exceed 1 (strictly) is position 1, (row 0, col 1)."""
    u = np.array([[0.0, 0.25, 0.99, 0.99, 0.99, 0.99]], dtype=np.float32)  # pooled, choice, the 4 neurons
    spikes = np.zeros((1, 4), dtype=bool)
    apply_pooled_rows(u, np.ones((1, 1, 1), dtype=np.float32), np.zeros((1, 1, 2), dtype=np.float32),
                      np.ones((1, 1, 2), dtype=np.int64), np.full((1, 1, 1), 2, dtype=np.int64), 2, 0, 1, 2, spikes)
    assert spikes[0].tolist() == [False, True, False, False]


def test_a_spike_frame_twins_input_rate_is_the_share_of_frame_bits_set_over_the_running_images():
    wl = random_workload(4, images=30, timesteps=T, encoding="spike_frames")
    full = run_forward(wl, policy=FixedPolicy(), record_spikes=True)
    steps = twin_policies(wl)["atsn"].exit_steps(full.logits, full.out_membrane, full.scale_per_t)
    frames = np.asarray(wl.inputs(), dtype=np.int64)  # [N, T, C, H, W]
    twin = fit_statistical_twin(wl, rates_policy="atsn")
    for t in range(T):
        running = steps >= t + 1 if (steps >= t + 1).any() else np.ones(len(steps), dtype=bool)
        assert abs(twin.arrays["rate/input"][t] - frames[running, t].mean()) < 1e-12, t
