"""`satasim reproduce twin`: a trained workload and its fitted statistical twin, simulated side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from satasim_atsn.cli import main
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.engine import simulate
from satasim_atsn.traces.statistical import pooled_layers
from satasim_atsn.traces.twin_fit import fit_statistical_twin
from satasim_atsn.workload.format import read_workload, write_workload
from satasim_atsn.workload.synthetic import random_workload

ROOT = Path(__file__).resolve().parents[1]
ARCH = ROOT / "archs" / "atsn16x16.yaml"


def _trained_dir(tmp_path: Path) -> Path:
    for seed in range(100):
        wl = random_workload(seed, images=12, timesteps=3, size=8)
        if pooled_layers(wl.layers):
            break
    write_workload(tmp_path / "vgg_small_fmnist_atsn.npz", wl)
    return tmp_path


def test_twin_report_numbers_come_from_the_two_simulations(tmp_path):
    wdir = _trained_dir(tmp_path)
    out = tmp_path / "twin"
    try:
        main(["reproduce", "twin", "-o", str(out), "--workloads", str(wdir), "--arch", str(ARCH), "--quiet"])
    except SystemExit as stop:
        assert stop.code == 0
    results = json.loads((out / "results.json").read_text())
    trained = read_workload(wdir / "vgg_small_fmnist_atsn.npz")
    arch = load_arch(ARCH)
    rules = arch.exit_policy().describe()
    twin = fit_statistical_twin(trained, images=12, rates_policy=arch.policy_name, cl_init=rules["cl_init"],
                                tau_cl=rules["tau_cl"])
    assert f"rate/{pooled_layers(trained.layers)[0]['name']}" in twin.arrays
    expected_trained = simulate(arch, trained, images=12).metrics()["total_cycles"]
    expected_twin = simulate(arch, twin, images=12).metrics()["total_cycles"]
    assert results["metrics"]["total_cycles"]["trained"] == expected_trained
    assert results["metrics"]["total_cycles"]["twin"] == expected_twin
    assert set(results["within_tolerance"]) == {"cycles", "energy_per_image"}
    assert "What independent draws miss" in (out / "report.md").read_text()


def test_the_twin_is_fitted_at_the_designs_exit_thresholds(tmp_path):
    """`reproduce twin --arch` simulated the original at the design's CL_init and drew the twin's exits from a
    histogram at the workload's own: on a design at 0.9 the "twin error" was the gap between two exit rules
    (+196% in cycles on a helper's network)."""
    from satasim_atsn.study.twin import twin_check

    wl = random_workload(3, images=24, timesteps=6, size=8, output_mode="membrane")
    wl.meta["exit_policy"] = {"cl_init": 0.999, "tau_cl": 0.999, "theta": 0.1}
    write_workload(tmp_path / "w.npz", wl)
    design = tmp_path / "atsn_cl09.yaml"
    design.write_text(ARCH.read_text().replace("cl_init: 0.999", "cl_init: 0.3").replace("tau_cl: 0.999",
                                                                                          "tau_cl: 0.3"))
    arch = load_arch(design)
    assert arch.exit_policy().describe()["cl_init"] == 0.3
    _, results, _ = twin_check(tmp_path / "w.npz", design, 24, per_channel=False)
    at_design = fit_statistical_twin(wl, images=24, rates_policy="atsn", cl_init=0.3, tau_cl=0.3)
    at_workload = fit_statistical_twin(wl, images=24, rates_policy="atsn")
    assert not (at_design.arrays["exit_hist/atsn"] == at_workload.arrays["exit_hist/atsn"]).all()
    assert results["metrics"]["total_cycles"]["twin"] == simulate(arch, at_design, images=24).metrics()["total_cycles"]
    assert results["exit_thresholds"] == {"cl_init": 0.3, "tau_cl": 0.3, "lut_entries": 256, "frac_bits": 23}


def test_twin_of_a_missing_workload_is_a_one_line_error(tmp_path, capsys):
    try:
        main(["reproduce", "twin", "-o", str(tmp_path / "o"), "--workloads", str(tmp_path)])
    except SystemExit as stop:
        assert stop.code == 2
    err = capsys.readouterr().err
    assert "no such trained workload" in err and err.count("\n") == 1


def test_twin_of_another_trained_workload(tmp_path, capsys):
    wdir = _trained_dir(tmp_path)
    other = tmp_path / "my_cifar_net.npz"
    (wdir / "vgg_small_fmnist_atsn.npz").rename(other)
    out = tmp_path / "twin"
    try:
        main(["reproduce", "twin", "-o", str(out), "--trained", str(other), "--arch", str(ARCH), "--images", "6",
              "--quiet"])
    except SystemExit as stop:
        assert stop.code == 0
    results = json.loads((out / "results.json").read_text())
    # file names, not the paths as typed: the same bytes from any directory
    assert (results["trained"], results["arch"], results["images"]) == (other.name, ARCH.name, 6)
    assert "--trained" in (out / "report.md").read_text()
    try:
        main(["reproduce", "table3", "-o", str(tmp_path / "t3"), "--trained", str(other)])
    except SystemExit as stop:
        assert stop.code == 2
    err = capsys.readouterr().err
    assert "--trained" in err and err.count("\n") == 1


def test_reports_call_a_twins_statistics_measured(tmp_path):
    """A twin's rates and exit histograms were measured on the network it was fitted to; reports said "assumed"
    (they read only the provenance that `workload build --rates` writes)."""
    from satasim_atsn.study.metrics import statistics_origin, workload_meta, workload_notice

    wdir = _trained_dir(tmp_path)
    trained = read_workload(wdir / "vgg_small_fmnist_atsn.npz")
    write_workload(tmp_path / "twin.npz", fit_statistical_twin(trained, images=12))
    assert statistics_origin(workload_meta(str(tmp_path / "twin.npz"))) == "measured"
    assert workload_notice(tmp_path / "twin.npz").endswith(
        "Its statistics are measured: a twin fitted to vgg_small_fmnist_atsn.npz (satasim workload stats).")
    assert workload_notice(ROOT / "workloads" / "assumed" / "vgg16_cifar10.npz").endswith("are assumed.")


def test_a_yaml_given_as_trained_is_named_as_the_trained_option(tmp_path, capsys):
    """`reproduce twin --trained arch.yaml` said '(compare: the last argument)': the fix names --trained."""
    out = tmp_path / "twin"
    try:
        main(["reproduce", "twin", "-o", str(out), "--trained", str(ARCH), "--quiet"])
    except SystemExit as stop:
        assert stop.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a workload (.npz)" in err, err
    assert err.rstrip().endswith("(reproduce twin: --trained)") and "compare" not in err, err
    assert not out.exists()


def test_twin_asked_for_more_images_than_the_workload_holds_says_so_everywhere(tmp_path, capsys):
    """`reproduce twin --images 50` of a 12-image workload used 12 and said so in report.md alone; docs/studies.md
    promises it uses all of them and says so: the terminal and results.json say it too."""
    wdir = _trained_dir(tmp_path)
    out = tmp_path / "twin"
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "twin", "-o", str(out), "--workloads", str(wdir), "--arch", str(ARCH), "--images", "50"])
    stdout, err = capsys.readouterr()
    assert exc.value.code in (0, None), err
    note = "--images 50 asked for more: vgg_small_fmnist_atsn.npz holds 12 images, all used"
    assert f"note: {note}" in stdout.splitlines()
    results = json.loads((out / "results.json").read_text())
    assert results["images"] == 12 and results["notes"] == [note]
    with pytest.raises(SystemExit):
        main(["reproduce", "twin", "-o", str(tmp_path / "exact"), "--workloads", str(wdir), "--arch", str(ARCH),
              "--images", "12", "--quiet"])
    assert "notes" not in json.loads((tmp_path / "exact" / "results.json").read_text())


def test_twin_results_hold_the_energy_by_component_the_report_shows(tmp_path):
    """results.json held the metrics alone, not the report's energy-by-component table, whose three decimals showed
    a small non-zero component as 0.000."""
    wdir = _trained_dir(tmp_path)
    out = tmp_path / "twin"
    with pytest.raises(SystemExit) as stop:
        main(["reproduce", "twin", "-o", str(out), "--workloads", str(wdir), "--arch", str(ARCH), "--quiet"])
    assert stop.value.code == 0
    results = json.loads((out / "results.json").read_text())
    table = results["energy_by_component_uJ_per_image"]
    run = simulate(load_arch(ARCH), read_workload(wdir / "vgg_small_fmnist_atsn.npz"), images=12)
    trained = run.metrics()
    assert set(table) == set(trained["energy_by_component_pJ"])
    # on run --json's 1 fJ grid: the same numbers as its per_image block, not their float noise
    assert {comp: row["trained"] for comp, row in table.items()} == run.to_dict()["per_image"]["energy_by_component_uJ"]
    assert sum(row["trained"] for row in table.values()) == pytest.approx(
        results["metrics"]["energy_per_image_uJ"]["trained"], rel=1e-9)
    report = (out / "report.md").read_text()
    for comp, row in table.items():
        assert f"| {comp} | {row['trained']:,.4g} | {row['twin']:,.4g} |" in report, comp
        assert row["trained"] == 0 or f"{row['trained']:,.4g}" != "0", comp
