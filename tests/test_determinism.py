"""Machine independence: bytes compared by tests must not depend on the last bit of exp/log.

numpy's exp and log take CPU-specific SIMD paths and libm's may use FMA or not, so their last bit
varies between x86-64 machines (issue 7: an AMD EPYC rebuilt ``exit_hist/dtsnn`` one ulp off).
These tests play the other machine: every exp/log result is pushed one ulp (np.nextafter), and
stored bytes, draws, exit decisions, predictions and energies must not move.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.snn import exit_policies as ep
from satasim_atsn.traces import exit_histograms, rate_table, statistical_draw, twin_fit
from satasim_atsn.workload import schema
from satasim_atsn.workload.format import read_workload, write_workload

ROOT = Path(__file__).resolve().parent.parent
MEANS = [2.53, 2.19, 3.58, 2.49, 2.52, 2.00, 3.54, 2.53]  # paper Table 1 (DTSNN / ATSN means)

_real_np_exp, _real_np_log = np.exp, np.log


def _ulp_up(fn):
    def noisy(x, *args, **kwargs):
        out = fn(x, *args, **kwargs)
        return np.nextafter(out, np.inf) if np.ndim(out) else type(out)(np.nextafter(out, np.inf))
    return noisy


def _ulp_down(fn):
    def noisy(x, *args, **kwargs):
        out = fn(x, *args, **kwargs)
        return np.nextafter(out, -np.inf) if np.ndim(out) else type(out)(np.nextafter(out, -np.inf))
    return noisy


@pytest.fixture(params=["up", "down"])
def other_cpu(request, monkeypatch):
    """np.exp/np.log/math.exp/math.log all one ulp off, as on a machine with another SIMD path."""
    wrap = _ulp_up if request.param == "up" else _ulp_down
    monkeypatch.setattr(np, "exp", wrap(_real_np_exp))
    monkeypatch.setattr(np, "log", wrap(_real_np_log))
    monkeypatch.setattr(math, "exp", wrap(math.exp))
    monkeypatch.setattr(math, "log", wrap(math.log))
    return request.param


def test_noise_fixture_really_moves_exp(other_cpu):
    x = np.linspace(-3, 0, 7)
    assert (np.exp(x) != _real_np_exp(x)).all()


@pytest.mark.parametrize("mean", MEANS)
def test_histogram_is_on_the_grid_with_the_published_mean(mean):
    hist = exit_histograms.max_entropy_histogram(mean, 4)
    counts = hist * schema.HIST_SCALE
    assert np.array_equal(counts, np.rint(counts)) and int(counts.sum()) == schema.HIST_SCALE
    assert abs(exit_histograms.histogram_mean(hist) - mean) <= 0.5 / schema.HIST_SCALE
    assert (np.diff(hist) > 0).all() if mean > 2.5 else (np.diff(hist) < 0).all()  # exp(lam t) is monotone


@pytest.mark.parametrize("mean", sorted(set(MEANS)))
def test_histogram_bytes_ignore_one_ulp(mean, other_cpu):
    """The stored histogram survives a one-ulp change of every exp and of the mean itself."""
    ref = exit_histograms._max_entropy_counts(mean, 4)
    for m in (mean, np.nextafter(mean, 0.0), np.nextafter(mean, 9.0)):
        want = (np.asarray(ref, float) / schema.HIST_SCALE).tobytes()
        assert exit_histograms.max_entropy_histogram(float(m), 4).tobytes() == want


def test_shipped_workload_rebuilds_identically_on_another_cpu(tmp_path, other_cpu):
    spec = rate_table.load_rate_spec(ROOT / "workloads/rates/vgg16.yaml")
    out = tmp_path / "vgg16_cifar10.npz"
    write_workload(out, rate_table.build_from_spec(spec, "vgg16", "cifar10"))
    assert out.read_bytes() == (ROOT / "workloads/assumed/vgg16_cifar10.npz").read_bytes()


def _perturbed(wl, direction: float):
    """A copy of a statistical workload whose every stored probability moved by one ulp, but the fixed histogram:
    validation holds it to exactly [0, ..., 0, 1] (every build writes it so), and the models validate a workload
    built in memory before they draw it."""
    arrays = dict(wl.arrays)
    for key, value in wl.arrays.items():
        if key.startswith(("rate/", "exit_hist/")) and key != "exit_hist/fixed":
            arrays[key] = np.nextafter(np.asarray(value, dtype=np.float64), direction)
    meta = dict(wl.meta)
    meta["input_bit_density"] = [float(np.nextafter(d, direction)) for d in wl.meta["input_bit_density"]]
    return type(wl)(meta=meta, arrays=arrays, source=wl.source)


@pytest.mark.parametrize("name", ["vgg16_cifar10", "resnet19_cifar100"])
def test_draws_ignore_one_ulp_in_stored_probabilities(name):
    wl = read_workload(ROOT / f"workloads/{name}.npz")
    ref = statistical_draw.draw_trace(wl, "atsn", 0, 3)
    ref_steps = statistical_draw.draw_exit_steps(wl, 0, 400)
    for direction in (0.0, 1.0):
        other = _perturbed(wl, direction)
        assert any(not np.array_equal(other.arrays[k], wl.arrays[k]) for k in wl.arrays if k.startswith("rate/"))
        steps = statistical_draw.draw_exit_steps(other, 0, 400)
        assert all(np.array_equal(steps[p], ref_steps[p]) for p in ref_steps)
        trace = statistical_draw.draw_trace(other, "atsn", 0, 3)
        assert np.array_equal(trace.exit_t, ref.exit_t) and np.array_equal(trace.inputs, ref.inputs)
        assert all(np.array_equal(trace.spikes[k], ref.spikes[k]) for k in ref.spikes)


def test_exit_step_draw_compares_integers():
    """u < cdf on the 2^-32 grid equals the integer comparison floor(u 2^32) < counts, for every u."""
    wl = read_workload(ROOT / "workloads/vgg16_cifar10.npz")
    plan = statistical_draw._DrawPlan(wl)
    hist = np.asarray(wl.arrays["exit_hist/atsn"])
    cdf = np.cumsum(hist)  # exact: every term is k / 2^32
    assert np.array_equal(cdf * schema.HIST_SCALE, plan.cdf["atsn"].astype(float))
    edges = plan.cdf["atsn"][:-1].astype(float) / schema.HIST_SCALE
    for u in np.concatenate([edges, np.nextafter(edges, 0.0), np.nextafter(edges, 1.0)]):
        got = plan.exit_steps(np.array([0.0, 0.0, u]), 0)[2]
        assert got == min(int(np.sum(u >= cdf)) + 1, 4)


def test_lut_and_float_decisions_ignore_one_ulp(other_cpu):
    ref_lut = np.array([round(math.e ** (-k / 16) * (1 << ep.ATSN_FRAC_BITS)) for k in range(257)])  # exp(-k/16)
    ref_lut[-1] = 0
    lut = ep.AtsnPolicy(hardware=True).lut
    assert np.abs(lut - ref_lut).max() <= 1
    with pytest.MonkeyPatch.context() as mp:  # the same table from the unperturbed functions
        mp.setattr(np, "exp", _real_np_exp)
        assert np.array_equal(ep.AtsnPolicy(hardware=True).lut, lut)


def test_forward_of_the_trained_workload_ignores_one_ulp(monkeypatch):
    """The forward of a given workload (exit steps under both float rules, predictions) is machine independent."""
    from satasim_atsn.snn.forward import run_forward

    wl = read_workload(ROOT / "workloads/vgg_small_fmnist_atsn.npz")
    policies = [ep.AtsnPolicy(cl_init=0.9, tau_cl=0.95), ep.DtsnnPolicy()]
    ref = [run_forward(wl, policy=p, count=120) for p in policies]
    # ties and near-ties really occur: the exact fallback is exercised, not just the float path
    assert any(len(set(np.round(r.logits[i, 0], 12))) < r.logits.shape[-1] for r in ref for i in range(120))
    for wrap in (_ulp_up, _ulp_down):
        monkeypatch.setattr(np, "exp", wrap(_real_np_exp))
        monkeypatch.setattr(np, "log", wrap(_real_np_log))
        for policy, r in zip(policies, ref, strict=True):
            again = run_forward(wl, policy=policy, count=120)
            assert np.array_equal(again.exit_t, r.exit_t) and np.array_equal(again.pred, r.pred)


def test_twin_fit_is_on_the_grid(tmp_path):
    wl = read_workload(ROOT / "workloads/vgg_small_fmnist_atsn.npz")
    twin = twin_fit.fit_statistical_twin(wl, images=64)
    for p in ("fixed", "dtsnn", "atsn"):
        counts = np.asarray(twin.arrays[f"exit_hist/{p}"]) * schema.HIST_SCALE
        assert np.array_equal(counts, np.rint(counts)) and int(counts.sum()) == schema.HIST_SCALE


@pytest.mark.parametrize("name", ["dtsnn16x16", "atsn16x16", "conventional16x16"])
def test_energies_and_areas_ignore_one_ulp_in_libm(name):
    """SRAM and ADC figures between table points are interpolated in exact decimal arithmetic, not libm."""
    from satasim_atsn.hw.arch import load_arch
    from satasim_atsn.hw.energy import compute_area, energy_per_action_pJ, leakage_power_mW

    def figures():
        arch = load_arch(name)  # dtsnn16x16's 7 KB exit-unit memory sits between the 6 and 8 KB points
        return energy_per_action_pJ(arch), compute_area(arch), leakage_power_mW(arch)

    ref = figures()
    for wrap in (_ulp_up, _ulp_down):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(math, "exp", wrap(math.exp))
            mp.setattr(math, "log", wrap(math.log))
            mp.setattr(np, "exp", wrap(_real_np_exp))
            mp.setattr(np, "log", wrap(_real_np_log))
            assert figures() == ref


def test_export_of_a_checkpoint_ignores_one_ulp(tmp_path):
    """The export of a given float network (BN folding, int8 weights, thresholds) is machine independent."""
    from test_train_export import _random_net

    from satasim_atsn.train.export import export_network

    def export(path):
        net, x, mean, std, _ = _random_net("vgg_small", [1, 8, 8], "membrane", 0.5)
        wl = export_network(net, name="t", dataset="synthetic", num_classes=3, input_shape=[1, 8, 8], mean=mean,
                            std=std, x=x, y=np.zeros(16, np.int64))
        write_workload(path, wl)
        return path.read_bytes()

    ref = export(tmp_path / "ref.npz")
    for wrap in (_ulp_up, _ulp_down):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(np, "exp", wrap(_real_np_exp))
            mp.setattr(np, "log", wrap(_real_np_log))
            assert export(tmp_path / "again.npz") == ref
