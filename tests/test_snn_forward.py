"""The integer forward against a naive per-neuron witness, plus early-exit and batching invariants."""

from __future__ import annotations

import numpy as np
import pytest

from satasim_atsn.snn.exit_policies import AtsnPolicy, DtsnnPolicy, FixedPolicy
from satasim_atsn.snn.forward import evaluate_policies, predictions_at, run_forward
from satasim_atsn.workload.synthetic import random_workload


def _naive_conv(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> tuple[np.ndarray, int]:
    """Direct convolution of one image with python-int accumulation; also counts synaptic ops."""
    cout, cin, k, _ = w.shape
    _, h, wd = x.shape
    xp = np.zeros((cin, h + 2 * pad, wd + 2 * pad), dtype=np.int64)
    xp[:, pad : pad + h, pad : pad + wd] = x
    ho, wo = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    out = np.zeros((cout, ho, wo), dtype=np.int64)
    ops = 0
    for oy in range(ho):
        for ox in range(wo):
            window = xp[:, oy * stride : oy * stride + k, ox * stride : ox * stride + k]
            ops += int(window.sum()) * cout
            for co in range(cout):
                out[co, oy, ox] = int((window * w[co].astype(np.int64)).sum())
    return out, ops


def _sat(v: np.ndarray, bits: int) -> np.ndarray:
    hi = (1 << (bits - 1)) - 1
    return np.clip(v, -hi - 1, hi)


def _decay(u: np.ndarray, shifts) -> np.ndarray:
    return sum((u >> s) for s in shifts)


def naive_forward(wl, x_img):
    """One image, all T timesteps, written from the format's docstring only."""
    T, shifts, bits = wl.timesteps, wl.decay_shifts, wl.vmem_bits
    out_bits = int(wl.meta["quant"].get("output_vmem_bits", 32))
    direct = wl.input_encoding == "direct"
    u: dict[str, np.ndarray] = {}
    spiked: dict[str, np.ndarray] = {}
    membranes, spikes, ops_per_t = [], [], []
    first_cur = None
    for t in range(T):
        vals = {"input": x_img.astype(np.int64) if direct else x_img[t].astype(np.int64)}
        rec = {}
        ops = 0
        for i, ly in enumerate(wl.layers):
            name, kind = ly["name"], ly["type"]
            src = vals[ly["inputs"][0]]
            if kind in ("conv", "linear", "output"):
                w = wl.weights(name)
                if i == 0 and direct:
                    if first_cur is None:
                        popcount = np.vectorize(lambda v: bin(int(v)).count("1"))(src)
                        if kind == "conv":
                            _, ops = _naive_conv(popcount, w, ly["stride"], ly["padding"])  # bit-serial, once
                            c, _ = _naive_conv(src, w, ly["stride"], ly["padding"])
                            c = c + wl.bias(name).astype(np.int64)[:, None, None]
                        else:
                            ops = int(popcount.sum()) * w.shape[0]
                            c = w.astype(np.int64) @ src.reshape(-1) + wl.bias(name)
                        first_cur = c >> wl.input_shift
                    cur = first_cur
                elif kind == "conv":
                    cur, layer_ops = _naive_conv(src, w, ly["stride"], ly["padding"])
                    ops += layer_ops
                    cur = cur + wl.bias(name).astype(np.int64)[:, None, None]
                else:
                    ops += int(src.sum()) * w.shape[0]
                    cur = w.astype(np.int64) @ src.reshape(-1) + wl.bias(name).astype(np.int64)
                if kind == "output":
                    prev = u.get(name, np.zeros_like(cur))
                    base = _decay(prev, shifts) if ly["output_mode"] == "membrane" else prev
                    u[name] = _sat(base + cur, out_bits)
                    vals[name] = u[name]
                elif ly.get("spiking", True):
                    vth = wl.vth(name).astype(np.int64).reshape((-1,) + (1,) * (cur.ndim - 1))
                    prev = u.get(name, np.zeros_like(cur))
                    prev_s = spiked.get(name, np.zeros(cur.shape, dtype=bool))
                    val = _sat(_decay(prev, shifts) * (~prev_s) + cur, bits)
                    s = val > vth
                    u[name], spiked[name] = val, s
                    vals[name] = s.astype(np.int64)
                    rec[name] = s
                else:
                    vals[name] = cur
            elif kind == "maxpool":
                k, st = ly["kernel"], ly["stride"]
                c, h, wd = src.shape
                ho, wo = (h - k) // st + 1, (wd - k) // st + 1
                o = np.zeros((c, ho, wo), dtype=np.int64)
                for oy in range(ho):
                    for ox in range(wo):
                        o[:, oy, ox] = src[:, oy * st : oy * st + k, ox * st : ox * st + k].max(axis=(1, 2))
                vals[name] = o
                rec[name] = o.astype(bool)
            elif kind == "avgpool":
                vals[name] = src.sum(axis=(1, 2))
            elif kind == "flatten":
                vals[name] = src.reshape(-1)
                rec[name] = vals[name].astype(bool)
            elif kind == "add":
                short = vals[ly["inputs"][1]]
                short_is_spikes = ly["inputs"][1] in rec
                ops += int(short.sum()) if short_is_spikes else 0
                cur = src + (short * ly["shortcut_gain"] if short_is_spikes else short)
                if f"b/{name}" in wl.arrays:
                    cur = cur + wl.bias(name).astype(np.int64)[:, None, None]
                vth = wl.vth(name).astype(np.int64)[:, None, None]
                prev = u.get(name, np.zeros_like(cur))
                prev_s = spiked.get(name, np.zeros(cur.shape, dtype=bool))
                val = _sat(_decay(prev, shifts) * (~prev_s) + cur, bits)
                s = val > vth
                u[name], spiked[name] = val, s
                vals[name] = s.astype(np.int64)
                rec[name] = s
        membranes.append(vals[wl.layers[-1]["name"]].copy())
        spikes.append(rec)
        ops_per_t.append(ops)
    return np.array(membranes), spikes, ops_per_t


@pytest.mark.parametrize("seed", range(40))
def test_forward_matches_naive_witness(seed):
    wl = random_workload(seed, images=2)
    res = run_forward(wl, record_spikes=True, batch_size=1 + seed % 2)
    x = wl.inputs()
    for i in range(x.shape[0]):
        membranes, spikes, ops = naive_forward(wl, x[i])
        np.testing.assert_array_equal(res.out_membrane[i], membranes)
        np.testing.assert_array_equal(res.sops_per_image[i], ops, err_msg="synaptic ops (eq. 19 terms)")
        for t, rec in enumerate(spikes):
            for name, s in rec.items():
                np.testing.assert_array_equal(res.spikes[name][i, t], s, err_msg=f"{name} t={t + 1}")


@pytest.mark.parametrize("seed", range(20))
def test_early_exit_equals_post_hoc_policy(seed):
    wl = random_workload(seed, images=5, timesteps=4)
    full = run_forward(wl, record_spikes=True)
    for policy in (AtsnPolicy(0.6, 0.9), AtsnPolicy(0.6, 0.9, hardware=True), DtsnnPolicy(0.5), FixedPolicy()):
        expected = policy.exit_steps(full.logits, full.out_membrane, full.scale_per_t)
        early = run_forward(wl, policy=policy, record_spikes=True, batch_size=2)
        np.testing.assert_array_equal(early.exit_t, expected)
        np.testing.assert_array_equal(early.pred, predictions_at(full, expected, wl.layers[-1]["output_mode"]))
        for name, s in early.spikes.items():
            for i, te in enumerate(expected):
                np.testing.assert_array_equal(s[i, :te], full.spikes[name][i, :te])
                assert not s[i, te:].any()
        for i, te in enumerate(expected):  # the output as known at each t: up to the exit the full run's, then held
            np.testing.assert_array_equal(early.out_membrane[i, :te], full.out_membrane[i, :te])
            np.testing.assert_array_equal(early.out_membrane[i, te:], np.repeat(full.out_membrane[i, te - 1:te],
                                                                                 wl.timesteps - te, axis=0))


def test_sops_count_matches_naive_for_conv():
    wl = random_workload(3, images=1)
    res = run_forward(wl)
    # a second run with batch size 1 must count the same synaptic operations
    res1 = run_forward(wl, batch_size=1)
    for name in res.sops:
        np.testing.assert_array_equal(res.sops[name], res1.sops[name])
    assert sum(int(v.sum()) for v in res.sops.values()) > 0


def test_evaluate_policies_names():
    wl = random_workload(5, images=3, timesteps=3)
    full = run_forward(wl)
    out = evaluate_policies(full, [FixedPolicy(), AtsnPolicy(hardware=True), DtsnnPolicy()])
    assert set(out) == {"fixed", "atsn-hw", "dtsnn"}
    assert (out["fixed"] == 3).all()


def test_an_output_layer_reading_the_image_needs_no_out_features():
    """out_features is optional on the output layer (it is num_classes); a network whose output reads the
    image itself counted its first-layer operations from that key and stopped with a KeyError."""
    import json

    from satasim_atsn.workload.format import Workload, validate

    rng = np.random.default_rng(3)
    meta = {"name": "one_layer", "kind": "trained", "num_classes": 3, "timesteps": 2, "input_shape": [1, 4, 4],
            "neuron": {"decay_shifts": [1]}, "quant": {"vmem_bits": 16, "input_shift": 4},
            "layers": [{"name": "flat", "type": "flatten", "inputs": ["input"]},
                       {"name": "fc", "type": "output", "inputs": ["flat"], "output_mode": "membrane",
                        "logit_scale": 0.01}]}
    arrays = {"w/fc": rng.integers(-60, 61, (3, 16)).astype(np.int8), "b/fc": np.zeros(3, np.int32),
              "x": rng.integers(0, 256, (5, 1, 4, 4)).astype(np.uint8), "y": rng.integers(0, 3, 5)}
    wl = validate(Workload(meta=json.loads(json.dumps(meta)), arrays=arrays, source="<test>"))
    res = run_forward(wl)
    bits = np.unpackbits(arrays["x"].reshape(5, -1, 1), axis=-1).reshape(5, -1).sum(axis=1)
    # every set bit of the image x 3 classes, once per image (the current is the same at every timestep)
    assert res.sops_per_image[:, 0].tolist() == (bits * 3).tolist() and not res.sops_per_image[:, 1:].any()
