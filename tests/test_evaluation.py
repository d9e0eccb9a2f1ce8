"""`evaluate_workload` takes every policy from one full-T forward: the same numbers as separate early-exit forwards."""

from __future__ import annotations

import numpy as np
import pytest

from satasim_atsn.snn.complexity import complexity, synaptic_ops_per_image
from satasim_atsn.snn.exit_policies import AtsnPolicy, DtsnnPolicy, FixedPolicy, hardware_predictions
from satasim_atsn.snn.forward import run_forward
from satasim_atsn.train.evaluation import evaluate_workload, format_table
from satasim_atsn.workload.synthetic import random_workload


def _separate_run_entry(workload, policy, full, labels) -> dict:
    """The entry as the earlier evaluate computed it: an early-exit forward of its own per policy."""
    res = run_forward(workload, policy=policy)
    mode = workload.layers[-1]["output_mode"]
    alone = hardware_predictions(res.out_membrane, res.exit_t, mode, "membrane")
    return {
        "exit_t": res.exit_t,
        "avg_timestep": round(res.avg_timestep(), 6),
        "complexity": round(complexity(res, full), 6),
        "complexity_spiking_layers": round(complexity(res, full, include_first_layer=False), 6),
        "sops_per_image": round(synaptic_ops_per_image(res), 6),
        "accuracy": round(res.accuracy(labels), 6),
        "accuracy_hw_pred": round(float((res.pred_hw == labels).mean()), 6),
        "hw_pred_differs": round(float((res.pred_hw != res.pred).mean()), 6),
        "hw_pred_membrane_differs": round(float((alone != res.pred).mean()), 6),
        "accuracy_hw_pred_membrane": round(float((alone == labels).mean()), 6),
    }


@pytest.mark.parametrize("seed", range(10))
def test_after_the_fact_policies_equal_separate_early_exit_forwards(seed):
    # low thresholds so that images really leave early and the per-image bookkeeping matters
    wl = random_workload(seed, images=12, timesteps=4)
    cl, tau, theta = 0.6, 0.9, 0.5
    table = evaluate_workload(wl, cl_init=cl, tau_cl=tau, theta=theta, batch_size=5)
    labels = wl.labels()
    full = run_forward(wl)
    policies = {"fixed": FixedPolicy(), "atsn": AtsnPolicy(cl, tau), "atsn_hw": AtsnPolicy(cl, tau, hardware=True),
                "dtsnn": DtsnnPolicy(theta)}
    exits = {}
    for key, policy in policies.items():
        expected = _separate_run_entry(wl, policy, full, labels)
        exits[key] = expected.pop("exit_t")
        got = {k: v for k, v in table[key].items() if k not in ("exit_agrees_with_float", "lut_entries", "frac_bits")}
        assert got == expected, key
    assert table["atsn_hw"]["exit_agrees_with_float"] == round(float((exits["atsn_hw"] == exits["atsn"]).mean()), 6)
    hardware = policies["atsn_hw"]  # the AT unit the table's hardware line is for
    assert (table["atsn_hw"]["lut_entries"], table["atsn_hw"]["frac_bits"]) == (hardware.lut_entries,
                                                                             hardware.frac_bits)
    assert table["sops_per_image_fixed"] == round(synaptic_ops_per_image(full), 6)


def test_some_random_workloads_exit_early_so_the_comparison_is_not_vacuous():
    early = 0
    for seed in range(10):
        wl = random_workload(seed, images=12, timesteps=4)
        early += int((run_forward(wl, policy=AtsnPolicy(0.6, 0.9)).exit_t < 4).sum())
    assert early > 20


def test_first_layer_share_of_the_operations_is_recorded():
    for seed in range(6):
        wl = random_workload(seed, images=4)
        res = run_forward(wl)
        first = next(iter(res.sops))
        assert res.first_layer_sops_per_image.sum() == res.sops[first].sum()
        assert (res.first_layer_sops_per_image <= res.sops_per_image).all()
        assert np.array_equal(res.sops_per_image.sum(axis=0), sum(res.sops.values()))


def test_calibration_rows_come_from_the_full_run_logits():
    from satasim_atsn.snn.calibration import calibration

    wl = random_workload(3, images=12, timesteps=4)
    table = evaluate_workload(wl)
    full = run_forward(wl)
    assert table["calibration"] == calibration(full.logits, wl.labels())
    assert [row["t"] for row in table["calibration"]] == [1, 2, 3, 4]
    for row in table["calibration"]:
        argmax = full.logits[:, row["t"] - 1].argmax(axis=-1)
        assert row["accuracy_argmax"] == round(float((argmax == wl.labels()).mean()), 6)
        assert 0.0 < row["mean_confidence"] <= 1.0


@pytest.mark.parametrize(("mode", "equation"), [("membrane", "eq. 10"), ("accumulate", "eq. 5")])
def test_the_hardware_prediction_is_compared_with_the_modes_own_software_prediction(mode, equation):
    """An accumulating output predicts by eq. 5 (its mean output), a membrane output by eq. 10: the line names it."""
    entry = {"accuracy": 0.5, "avg_timestep": 2.0, "hw_pred_differs": 0.01, "hw_pred_membrane_differs": 0.02}
    text = format_table({"output_mode": mode, "atsn": entry})
    assert f"hw prediction != {equation}: 1.00% (running sum), 2.00% (membrane alone)" in text


@pytest.mark.parametrize("seed", [1, 4, 9])
def test_a_network_without_an_output_layer_is_evaluated_by_its_spike_counts(seed):
    """`satasim evaluate` refused a network that ends in a spiking layer; it runs fixed T, and the class with the
    most spikes so far (ties to the lowest) is the prediction at each t."""
    wl = random_workload(seed, images=12, timesteps=3, output_layer=False)
    assert not wl.has_output
    table = evaluate_workload(wl)
    fwd = run_forward(wl, record_spikes=True)
    last = wl.layers[-1]["name"]
    per_t = fwd.spikes[last].reshape(12, 3, -1).cumsum(axis=1)  # running counts of every class neuron
    labels = wl.labels()
    for t in range(1, 4):
        assert table["fixed_t"][str(t)] == pytest.approx((per_t[:, t - 1].argmax(axis=1) == labels).mean(), abs=1e-6)
    final = per_t[:, -1]
    ties = ((final == final.max(axis=1, keepdims=True)).sum(axis=1) > 1).mean()
    assert table["fixed"]["top_class_ties"] == pytest.approx(ties, abs=1e-6)
    assert table["output_mode"] == "spike_count" and "atsn" not in table and "dtsnn" not in table
    text = format_table(table)
    assert f"ends in the spiking layer '{last}'" in text and "exit rules need an output layer" in text


def test_exit_options_on_a_spike_count_network_are_refused(tmp_path, capsys):
    """`evaluate --policy atsn` or `--theta` on a network without an output layer printed the fixed-T table and
    dropped the option without a word."""
    from satasim_atsn.cli import main
    from satasim_atsn.workload.format import write_workload

    write_workload(tmp_path / "w.npz", random_workload(4, images=6, timesteps=2, output_layer=False))
    for extra, named in ((["--policy", "dtsnn"], "--policy"), (["--cl-init", "0.9"], "--cl-init")):
        with pytest.raises(SystemExit) as stop:
            main(["evaluate", str(tmp_path / "w.npz"), "-q", *extra])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and f"{named}: sets an exit rule" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", str(tmp_path / "w.npz"), "-q", "--policy", "fixed"])
    assert stop.value.code == 0 and "exit rules need an output layer" in capsys.readouterr().out


@pytest.mark.parametrize("images, header", [(1, ": 1 image, T = 3"), (2, ": 2 images, T = 3")])
def test_evaluate_counts_its_images_in_the_singular_and_plural(tmp_path, capsys, images, header):
    """`evaluate` on a one-image workload printed '1 images'."""
    from satasim_atsn.cli import main
    from satasim_atsn.workload.format import write_workload

    path = tmp_path / "w.npz"
    write_workload(path, random_workload(2, images=images, timesteps=3, num_classes=3))
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(path), "--quiet"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and header in out, out


def test_the_exit_settings_line_shows_a_threshold_just_below_1_as_given(tmp_path, capsys):
    """':g' printed --cl-init 0.9999999 as 'CL_init 1', a threshold no image could clear."""
    from satasim_atsn.cli import main
    from satasim_atsn.workload.format import write_workload

    path = tmp_path / "w.npz"
    write_workload(path, random_workload(2, images=2, timesteps=3, num_classes=3))
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(path), "--quiet", "--cl-init", "0.9999999", "--tau-cl", "0.99", "--theta", "0.25"])
    out = capsys.readouterr().out
    assert exc.value.code == 0, out
    assert "exit settings: ATSN CL_init 0.9999999, tau_CL 0.99; DTSNN theta 0.25" in out, out


@pytest.mark.parametrize("policy, shown, hidden", [
    ("dtsnn", ["DTSNN ", "exit settings: DTSNN theta 0.25"], ["ATSN", "CL_t", "CL_init"]),
    ("fixed", ["SNN fixed T"], ["ATSN", "CL_t", "DTSNN", "exit settings"]),
    ("atsn", ["ATSN (float rule)", "ATSN sweep", "max o^t > CL_t", "exit settings: ATSN CL_init 0.9, tau_CL 0.95\n"],
     ["DTSNN"]),
    ("all", ["ATSN sweep", "exit settings: ATSN CL_init 0.9, tau_CL 0.95; DTSNN theta 0.25", "DTSNN "], []),
])
def test_evaluate_prints_only_what_its_policy_reads(tmp_path, capsys, policy, shown, hidden):
    """`--policy dtsnn` printed the ATSN rule's sweep, exit-test profile and thresholds too; --json keeps them all."""
    import json

    from satasim_atsn.cli import main
    from satasim_atsn.workload.format import write_workload

    path = tmp_path / "w.npz"
    write_workload(path, random_workload(2, images=4, timesteps=3, num_classes=3))
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(path), "--quiet", "--policy", policy, "--cl-init", "0.9", "--tau-cl", "0.95",
              "--theta", "0.25", "--json", str(tmp_path / "e.json")])
    out = capsys.readouterr().out
    assert exc.value.code == 0, out
    for text in shown:
        assert text in out, (text, out)
    for text in hidden:
        assert text not in out, (text, out)
    record = json.loads((tmp_path / "e.json").read_text())
    assert {"atsn_sweep", "dtsnn", "atsn"} <= set(record) and record["policy_params"]["cl_init"] == 0.9
