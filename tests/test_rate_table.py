"""Rate tables measured on a trained network (`workload rates`) and built into a paper-scale workload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from satasim_atsn.cli import main
from satasim_atsn.errors import WorkloadError
from satasim_atsn.traces.rate_table import build_from_spec, load_rate_spec
from satasim_atsn.traces.twin_fit import fit_statistical_twin
from satasim_atsn.train.config import TrainConfig
from satasim_atsn.train.trainer import train_model
from satasim_atsn.workload.datasets import synthetic
from satasim_atsn.workload.format import read_workload
from satasim_atsn.workload.networks import network_totals


@pytest.fixture(scope="module")
def tiny_vgg16(tmp_path_factory):
    """A VGG16-topology network at width 1/16 trained one epoch on 32x32 synthetic images."""
    out = tmp_path_factory.mktemp("rates") / "vgg16_tiny.npz"
    data = (synthetic("train", 64, num_classes=10, shape=(3, 32, 32)),
            synthetic("test", 24, num_classes=10, shape=(3, 32, 32)))
    cfg = TrainConfig(model="vgg16", dataset="synthetic", method="atsn", epochs=1, batch_size=32, width=1 / 16,
                      test_images=24, seed=2, cl_init=0.9, tau_cl=0.9)
    train_model(cfg, out, quiet=True, data=data)
    return out


def _cli(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def test_measured_table_builds_the_full_network(tiny_vgg16, tmp_path, capsys):
    table_path = tmp_path / "t.yaml"
    code, out, err = _cli(["workload", "rates", str(tiny_vgg16), "--network", "vgg16", "--dataset", "cifar10",
                           "-o", str(table_path)], capsys)
    assert code == 0, err
    table = yaml.safe_load(table_path.read_text())
    names = [f"conv{i}" for i in range(1, 14)] + [f"pool{i}" for i in range(1, 6)]
    assert sorted(table["rates"]) == sorted(names)
    for values in table["rates"].values():
        assert len(values) == 4 and all(0.0 <= v <= 1.0 for v in values)
    hists = table["datasets"]["cifar10"]["exit_histograms"]
    assert set(hists) == {"dtsnn", "atsn"} and all(abs(sum(h) - 1) < 1e-8 for h in hists.values())
    assert "measured" in table["sources"]["rates"] and len(table["input_bit_density"]) == 8

    # the same command gives the same bytes
    again = tmp_path / "again.yaml"
    _cli(["workload", "rates", str(tiny_vgg16), "--network", "vgg16", "--dataset", "cifar10", "-o", str(again)],
         capsys)
    assert again.read_bytes().split(b"\n", 2)[2] == table_path.read_bytes().split(b"\n", 2)[2]

    built = build_from_spec(load_rate_spec(table_path), "vgg16", "cifar10", num_images=5)
    for name in names:
        assert np.allclose(built.arrays[f"rate/{name}"], table["rates"][name])
    assert np.allclose(built.arrays["exit_hist/atsn"], hists["atsn"], atol=1e-8)
    assert np.allclose(built.meta["input_bit_density"], table["input_bit_density"])
    assert "measured" in built.meta["provenance"]["exit_histograms"]["atsn"]
    assert network_totals(built.layers)["params"] > 14_000_000  # the full-width network, not the tiny one
    assert "satasim workload build --network vgg16 --rates THIS --dataset cifar10" in table_path.read_text()


def test_the_build_hint_names_a_network_file_as_given(tiny_vgg16, tmp_path, capsys):
    """For a network file the header said '--network <its name>', which build refuses ('unknown network')."""
    from satasim_atsn.workload.network_file import NETWORKS_DIR

    net = tmp_path / "my vgg.yaml"
    net.write_text((NETWORKS_DIR / "vgg16.yaml").read_text())
    table_path = tmp_path / "t.yaml"
    code, out, err = _cli(["workload", "rates", str(tiny_vgg16), "--network", str(net), "--dataset", "cifar10",
                           "-o", str(table_path)], capsys)
    assert code == 0, err
    hint = table_path.read_text().splitlines()[2]
    assert hint == f"# Build the statistical workload with: satasim workload build --network '{net}' --rates THIS " \
                   "--dataset cifar10"


def test_topology_mismatch_is_one_line(tmp_path, capsys):
    code, _, err = _cli(["workload", "rates", "workloads/vgg_small_fmnist_atsn.npz", "--network", "vgg16",
                         "--dataset", "cifar10", "-o", str(tmp_path / "t.yaml")], capsys)
    assert code == 2 and err.count("\n") == 1 and "--model vgg16" in err
    assert not (tmp_path / "t.yaml").exists()


def test_a_network_file_with_other_windows_is_another_topology(tmp_path, capsys):
    """Rates are mapped layer by layer onto the target: a kernel of 5 against the trained 3 was accepted."""
    from satasim_atsn.workload.network_file import NETWORKS_DIR

    text = (NETWORKS_DIR / "vgg16.yaml").read_text()
    assert "kernel: 3, stride: 1, padding: 1" in text
    other = tmp_path / "vgg16k5.yaml"
    other.write_text(text.replace("kernel: 3, stride: 1, padding: 1", "kernel: 5, stride: 1, padding: 2", 1))
    trained = "workloads/vgg16w03125e40_cifar10_atsn.npz"
    code, _, err = _cli(["workload", "rates", trained, "--network", str(other), "--dataset", "cifar10",
                         "-o", str(tmp_path / "t.yaml"), "--images", "2"], capsys)
    assert code == 2 and err.count("\n") == 1 and "kernel 3" in err and "kernel 5" in err, err
    assert not (tmp_path / "t.yaml").exists()
    # a pool of another stride is named too (it is not rated, and the message only counted "2 against 1")
    other.write_text(text.replace("{name: pool1, type: maxpool, kernel: 2, stride: 2}",
                                  "{name: pool1, type: maxpool, kernel: 2, stride: 1}", 1))
    code, _, err = _cli(["workload", "rates", trained, "--network", str(other), "--dataset", "cifar10",
                         "-o", str(tmp_path / "t.yaml"), "--images", "2"], capsys)
    assert code == 2 and "pool1 (maxpool, kernel 2, stride 2) against pool1 (maxpool, kernel 2, stride 1)" in err, err
    other.write_text(text)  # the same file under another name: accepted
    code, _, err = _cli(["workload", "rates", trained, "--network", str(other), "--dataset", "cifar10",
                         "-o", str(tmp_path / "t.yaml"), "--images", "2"], capsys)
    assert code == 0, err


def test_a_network_file_that_only_renames_layers_is_told_to_rename_them(tmp_path, capsys):
    """Rates are mapped by layer name: a target that renamed conv1 to c1 was refused as "the topology differs",
    naming two identical windows, with a fix (train that topology, or pass its file) the user had followed."""
    from satasim_atsn.workload.network_file import NETWORKS_DIR

    other = tmp_path / "vgg16r.yaml"
    other.write_text((NETWORKS_DIR / "vgg16.yaml").read_text().replace("{name: conv1,", "{name: c1,", 1)
                     .replace("inputs: [conv1]", "inputs: [c1]"))
    code, _, err = _cli(["workload", "rates", "workloads/vgg16w03125e40_cifar10_atsn.npz", "--network", str(other),
                         "--dataset", "cifar10", "-o", str(tmp_path / "t.yaml"), "--images", "2"], capsys)
    assert code == 2 and err.count("\n") == 1 and "(conv1 -> c1)" in err and "name the layers of" in err, err
    assert not (tmp_path / "t.yaml").exists()


def _table(tmp_path, **dataset_entry):
    spec = {"network": "vgg16", "timesteps": 4, "default_rate": 0.1, "pool_rate_ratio": 2.0,
            "datasets": {"cifar10": {"seed": 1, **dataset_entry}}}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(spec))
    return load_rate_spec(path)


def test_explicit_pool_rate_wins_over_the_ratio(tmp_path):
    spec = _table(tmp_path)
    spec["rates"] = {"pool2": 0.33}
    built = build_from_spec(spec, "vgg16", "cifar10", num_images=3)
    assert np.allclose(built.arrays["rate/pool2"], 0.33)
    assert np.allclose(built.arrays["rate/pool1"], 0.2)


@pytest.mark.parametrize("entry,needle", [
    ({"exit_histograms": {"atsn": [0.5, 0.5]}}, "needs 4 non-negative probabilities"),
    ({"exit_histograms": {"atsn": [0.5, 0.6, 0.0, 0.0]}}, "summing to 1"),
    ({"exit_histograms": {"greedy": [1, 0, 0, 0]}}, "unknown key"),
    ({"exit_histograms": {"atsn": [1, 0, 0, 0]}, "exit_mean_timesteps": {"atsn": 2.0}}, "not both"),
    # YAML true/false, or text, inside the list: numpy read them as 1/0 and the numbers
    ({"exit_histograms": {"atsn": [True, False, False, False]}}, "needs 4 non-negative probabilities"),
    ({"exit_histograms": {"atsn": ["0.25", 0.25, 0.25, 0.25]}}, "needs 4 non-negative probabilities"),
])
def test_bad_histograms(tmp_path, entry, needle):
    with pytest.raises(WorkloadError, match=needle):
        build_from_spec(_table(tmp_path, **entry), "vgg16", "cifar10", num_images=3)


def test_measured_histogram_is_used(tmp_path):
    built = build_from_spec(_table(tmp_path, exit_histograms={"atsn": [0.25, 0.25, 0.25, 0.25]},
                                   exit_mean_timesteps={"dtsnn": 3.0}), "vgg16", "cifar10", num_images=3)
    assert np.allclose(built.arrays["exit_hist/atsn"], 0.25)
    assert set(k for k in built.arrays if k.startswith("exit_hist/")) == {"exit_hist/fixed", "exit_hist/dtsnn",
                                                                          "exit_hist/atsn"}


def test_given_histograms_land_on_the_2_32_grid(tmp_path):
    """Measured decimals become integer counts out of 2^32 that sum exactly to 2^32 (no float division)."""
    built = build_from_spec(_table(tmp_path, exit_histograms={"atsn": [0.0, 0.1, 0.0273, 0.8727],
                                                              "dtsnn": [1 / 3, 1 / 3, 1 / 3, 0.0]}),
                            "vgg16", "cifar10", num_images=3)
    for policy in ("atsn", "dtsnn"):
        counts = built.arrays[f"exit_hist/{policy}"] * 2**32
        assert np.array_equal(counts, np.rint(counts)) and int(counts.sum()) == 2**32
    assert built.arrays["exit_hist/atsn"][0] == 0.0 and built.arrays["exit_hist/dtsnn"][3] == 0.0
    assert abs(built.arrays["exit_hist/atsn"][2] - 0.0273) < 2**-32


def test_borrowed_dataset_keeps_measured_rates_and_names_its_source(tiny_vgg16, tmp_path, capsys):
    table_path = tmp_path / "t.yaml"
    code, _, err = _cli(["workload", "rates", str(tiny_vgg16), "--network", "vgg16", "--dataset", "cifar10",
                         "--borrow-dataset", "cifar100=workloads/rates/vgg16.yaml", "-o", str(table_path)], capsys)
    assert code == 0, err
    table = yaml.safe_load(table_path.read_text())
    assumed = yaml.safe_load(Path("workloads/rates/vgg16.yaml").read_text(encoding="utf-8"))
    assert table["datasets"]["cifar100"] == assumed["datasets"]["cifar100"]
    assert "borrowed from vgg16.yaml" in table["sources"]["datasets.cifar100"]
    assert "--borrow-dataset cifar100=workloads/rates/vgg16.yaml" in table_path.read_text().split("\n")[1]
    # the table names the borrowed file by name, so typing its path another way changes only the command line
    again = tmp_path / "t2.yaml"
    code, _, err = _cli(["workload", "rates", str(tiny_vgg16), "--network", "vgg16", "--dataset", "cifar10",
                         "--borrow-dataset", f"cifar100={Path('workloads/rates/vgg16.yaml').resolve()}",
                         "-o", str(again)], capsys)
    assert code == 0, err
    assert yaml.safe_load(again.read_text()) == table

    c100 = build_from_spec(load_rate_spec(table_path), "vgg16", "cifar100", num_images=5)
    c10 = build_from_spec(load_rate_spec(table_path), "vgg16", "cifar10", num_images=5)
    for name in table["rates"]:  # the measured rates serve both datasets
        assert np.array_equal(c100.arrays[f"rate/{name}"], c10.arrays[f"rate/{name}"])
    assert c100.num_classes == 100 and c100.meta["provenance"]["exit_mean_timesteps"] == {"dtsnn": 3.58, "atsn": 2.49}
    sources = c100.meta["provenance"]["sources"]
    assert "datasets.cifar100" in sources and "exit_histograms" not in sources  # cifar10's histograms not claimed
    assert "datasets.cifar100" not in c10.meta["provenance"]["sources"]


@pytest.mark.parametrize("borrow, needle", [
    ("cifar100", "is not NAME=TABLE"),
    ("cifar10=workloads/rates/vgg16.yaml", "is the measured dataset"),
    ("cifar100=workloads/rates/resnet19.yaml", "network"),
    ("imagenet=workloads/rates/vgg16.yaml", "datasets.imagenet"),
    ("cifar100=no/such.yaml", "no such file"),
])
def test_bad_borrow_is_one_line(tiny_vgg16, tmp_path, capsys, borrow, needle):
    out = tmp_path / "t.yaml"
    code, _, err = _cli(["workload", "rates", str(tiny_vgg16), "--network", "vgg16", "--dataset", "cifar10",
                         "--borrow-dataset", borrow, "-o", str(out)], capsys)
    assert code == 2 and err.count("\n") == 1 and needle in err, err
    assert not out.exists()


def test_a_target_of_another_input_size_or_readout_is_noted(tmp_path, capsys):
    """Rates mapped onto a 64x64 network, or exit histograms under another readout, were written without a word:
    now the table's sources and stderr say what the numbers were not measured with (and the build still works)."""
    from satasim_atsn.workload.network_file import NETWORKS_DIR

    text = (NETWORKS_DIR / "vgg16.yaml").read_text()
    trained = "workloads/vgg16w03125e40_cifar10_atsn.npz"
    same = tmp_path / "same.yaml"
    same.write_text(text)
    code, _, err = _cli(["workload", "rates", trained, "--network", str(same), "--dataset", "cifar10",
                         "-o", str(tmp_path / "same_t.yaml"), "--images", "2"], capsys)
    assert code == 0 and "note:" not in err, err
    assert "differences" not in yaml.safe_load((tmp_path / "same_t.yaml").read_text())["sources"]
    assert "input_shape: [3, 32, 32]" in text
    other = tmp_path / "vgg16_64px_accumulate.yaml"
    assert "output_mode: membrane" in text
    other.write_text(text.replace("input_shape: [3, 32, 32]", "input_shape: [3, 64, 64]", 1)
                     .replace("output_mode: membrane", "output_mode: accumulate", 1))
    table_path = tmp_path / "t.yaml"
    code, _, err = _cli(["workload", "rates", trained, "--network", str(other), "--dataset", "cifar10",
                         "-o", str(table_path), "--images", "2"], capsys)
    assert code == 0, err
    differences = yaml.safe_load(table_path.read_text())["sources"]["differences"]
    assert "the input is [3, 64, 64] in vgg16 but [3, 32, 32] in the trained network" in differences
    assert "the output layer reads its membranes as 'accumulate' in vgg16 but 'membrane'" \
        in differences
    assert "note: the input is [3, 64, 64]" in err and err.count("note:") == 2
    built = build_from_spec(load_rate_spec(table_path), str(other), "cifar10", num_images=3)
    assert list(built.input_shape) == [3, 64, 64]


def test_a_text_rate_is_refused(tmp_path):
    """numpy reads the YAML string '0.1' as a number; a rate table's rate must be one."""
    net = tmp_path / "mlp.yaml"
    net.write_text("name: mlp\ninput_shape: [70]\nnum_classes: 4\nlayers:\n"
                   "  - {name: fc1, type: linear, out_features: 16}\n  - {name: out, type: output}\n")
    for value in ("'0.1'", "true", "['0.1', 0.2]"):
        rates = tmp_path / "rates.yaml"
        rates.write_text(f"network: mlp\ntimesteps: 2\nnum_images: 8\nrates: {{fc1: {value}}}\n"
                         "datasets: {d: {seed: 1}}\n")
        with pytest.raises(WorkloadError, match="rates.fc1: is not a number or a list of numbers"):
            build_from_spec(load_rate_spec(rates), str(net), "d")


def test_the_summary_of_a_spiking_end_table_says_it_has_no_exit_histograms(tmp_path, capsys):
    """A network without an output layer runs fixed T, so its table has no exit histograms: the summary line
    ended in "mean exit " with nothing after it."""
    from satasim_atsn.workload.format import write_workload
    from satasim_atsn.workload.synthetic import random_workload

    wl = random_workload(3, images=4, output_layer=False)
    trained = tmp_path / "spiking_end.npz"
    write_workload(trained, wl)
    layers = [{k: v for k, v in ly.items() if k not in ("in_shape", "out_shape")} for ly in wl.layers]
    net = tmp_path / "n.yaml"
    net.write_text(yaml.safe_dump({"name": "n", "input_shape": list(wl.input_shape), "layers": layers}))
    code, out, err = _cli(["workload", "rates", str(trained), "--network", str(net), "--dataset", "d",
                           "-o", str(tmp_path / "t.yaml")], capsys)
    assert code == 0, err
    assert yaml.safe_load((tmp_path / "t.yaml").read_text())["datasets"]["d"].get("exit_histograms") in (None, {})
    line = out.strip().splitlines()[-1]
    assert not line.rstrip().endswith("mean exit"), line
    assert "fixed T" in line, line


def test_a_table_without_exit_statistics_does_not_claim_maximum_entropy_histograms(tmp_path):
    """A dataset entry with neither exit means nor histograms builds the fixed histogram alone (all images at T), but
    the provenance said "maximum-entropy distribution on t = 1..T with the given mean", of a mean nobody gave."""
    table = _table(tmp_path)
    built = build_from_spec(table, "vgg16", "cifar10", num_images=2)
    assert sorted(k for k in built.arrays if k.startswith("exit_hist/")) == ["exit_hist/fixed"]
    said = built.meta["provenance"]["exit_histograms"]
    assert "maximum-entropy" not in str(said) and "all images at T" in str(said), said
    with_means = build_from_spec(_table(tmp_path, exit_mean_timesteps={"atsn": 2.0}), "vgg16", "cifar10",
                                 num_images=2)
    assert "maximum-entropy" in str(with_means.meta["provenance"]["exit_histograms"])


def test_a_data_dir_without_a_test_dataset_is_refused(tmp_path, capsys):
    """--data-dir without --test-dataset was ignored: the table was measured on the embedded images, without a word,
    by a user who meant the folder's test split (satasim evaluate refuses the same mistake)."""
    code, _, err = _cli(["workload", "rates", "workloads/vgg16w03125e40_cifar10_atsn.npz", "--network", "vgg16",
                         "--dataset", "cifar10", "-o", str(tmp_path / "t.yaml"), "--images", "2",
                         "--data-dir", str(tmp_path)], capsys)
    assert code == 2 and err.count("\n") == 1 and "--data-dir: applies only to a --test-dataset" in err, err
    assert not (tmp_path / "t.yaml").exists()



def test_a_table_measured_on_part_of_a_test_split_does_not_say_the_whole(tmp_path, capsys):
    """`--test-dataset D --images 3` wrote '3 images (the whole D test split)' into the table's sources."""
    from PIL import Image

    from satasim_atsn.workload.format import read_workload

    trained = Path(__file__).resolve().parents[1] / "workloads" / "vgg16w025_cifar10_atsn.npz"
    rng = np.random.default_rng(0)
    for name in read_workload(trained).meta["provenance"]["class_names"]:  # an image folder of its classes
        (tmp_path / "images" / "test" / name).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "images" / "test"
                                                                                    / name / f"{i}.png")
    base = ["workload", "rates", str(trained), "--network", "vgg16", "--dataset", "cifar10",
            "--test-dataset", "imagefolder", "--data-dir", str(tmp_path / "images")]
    for extra, wanted in ((["--images", "3"], "3 images (the first 3 of the 20 in the imagefolder test split)"),
                          ([], "20 images (the whole imagefolder test split)")):
        code, _, err = _cli([*base, *extra, "-o", str(tmp_path / "t.yaml")], capsys)
        assert code == 0, err
        sources = " ".join(" ".join(str(v) for v in yaml.safe_load((tmp_path / "t.yaml").read_text())["sources"]
                                    .values()).split())
        assert wanted in sources and sources.count("the whole") == (0 if extra else sources.count("images ("))


def test_a_table_keeps_the_thresholds_its_exit_histograms_were_measured_at(tiny_vgg16, tmp_path, capsys):
    """A network trained at CL = 0.9 gave a table whose build recorded meta.exit_policy 0.999: `run` on a 0.999
    design said nothing, and on a 0.9 one claimed the thresholds differed. The table carries them to the build."""
    table_path = tmp_path / "t.yaml"
    code, _, err = _cli(["workload", "rates", str(tiny_vgg16), "--network", "vgg16", "--dataset", "cifar10",
                         "-o", str(table_path), "--images", "4"], capsys)
    assert code == 0, err
    table = yaml.safe_load(table_path.read_text())
    assert table["datasets"]["cifar10"]["exit_policy"] == {"cl_init": 0.9, "tau_cl": 0.9, "theta": 0.1}
    built = build_from_spec(load_rate_spec(table_path), "vgg16", "cifar10", num_images=2)
    assert built.meta["exit_policy"] == {"cl_init": 0.9, "tau_cl": 0.9, "theta": 0.1}
    del table["datasets"]["cifar10"]["exit_policy"]  # a table without it (the shipped ones): the defaults
    table_path.write_text(yaml.safe_dump(table))
    built = build_from_spec(load_rate_spec(table_path), "vgg16", "cifar10", num_images=2)
    assert built.meta["exit_policy"] == {"cl_init": 0.999, "tau_cl": 0.999, "theta": 0.1}
    for value, needle in ((1.5, "datasets.cifar10.exit_policy.cl_init: 1.5 is not a number in (0, 1]"),
                          ("x", "datasets.cifar10.exit_policy.cl_init: 'x' is not a number in (0, 1]")):
        table["datasets"]["cifar10"]["exit_policy"] = {"cl_init": value}
        table_path.write_text(yaml.safe_dump(table))
        code, out, err = _cli(["workload", "build", "--network", "vgg16", "--rates", str(table_path), "--dataset",
                               "cifar10", "-o", str(tmp_path / "w.npz")], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err and f"{table_path}:" in err, err
        assert not (tmp_path / "w.npz").exists()
    table["datasets"]["cifar10"]["exit_policy"] = {"cl": 0.9}
    table_path.write_text(yaml.safe_dump(table))
    code, _, err = _cli(["workload", "build", "--network", "vgg16", "--rates", str(table_path), "--dataset",
                         "cifar10", "-o", str(tmp_path / "w.npz")], capsys)
    assert code == 2 and "datasets.cifar10.exit_policy.cl: unknown key" in err, err


@pytest.mark.parametrize("key, kind", [("10", "a number"), ("null", "null"), ("yes", "a boolean")])
def test_a_dataset_name_yaml_reads_as_no_text_is_named(tmp_path, capsys, key, kind):
    """`datasets: {10: ...}` with `--dataset 10` said 'datasets.10: missing; the table covers 10'."""
    net = tmp_path / "n.yaml"
    net.write_text("name: n\ninput_shape: [1, 4, 4]\nnum_classes: 2\nlayers:\n"
                   "  - {name: c1, type: conv, out_channels: 2, kernel: 3, padding: 1}\n"
                   "  - {name: f, type: flatten}\n  - {name: out, type: output}\n")
    table = tmp_path / "t.yaml"
    table.write_text(f"network: n\ntimesteps: 2\ndefault_rate: 0.1\ndatasets: {{{key}: {{seed: 1}}}}\n")
    code, out, err = _cli(["workload", "build", "--network", str(net), "--rates", str(table), "--dataset", key,
                           "-o", str(tmp_path / "w.npz")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and out == "", err
    assert f"{table}: datasets." in err and f"the name is {kind} to YAML, not text" in err and "quote" in err, err
    table.write_text(f"network: n\ntimesteps: 2\ndefault_rate: 0.1\ndatasets: {{'{key}': {{seed: 1}}}}\n")
    code, _, err = _cli(["workload", "build", "--network", str(net), "--rates", str(table), "--dataset", key,
                         "-o", str(tmp_path / "w.npz")], capsys)
    assert code == 0, err


def test_a_table_without_input_densities_says_they_are_assumed(tmp_path):
    """A table without input_bit_density drew every pixel bit at 0.5 and its workload's provenance named no source
    for them (`--rate` says 'assumed'); a table that gives them keeps its own sources."""
    table = {"network": "vgg16", "timesteps": 2, "default_rate": 0.1, "datasets": {"cifar10": {"seed": 1}}}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(table))
    built = build_from_spec(load_rate_spec(path), "vgg16", "cifar10", num_images=2)
    assert built.meta["input_bit_density"] == [0.5] * 8
    assert built.meta["provenance"]["sources"]["input_bit_density"].startswith("assumed: uniform 8-bit pixels, 0.5")
    table.update(input_bit_density=[0.25] * 8, sources={"input_bit_density": "measured on my images"})
    path.write_text(yaml.safe_dump(table))
    built = build_from_spec(load_rate_spec(path), "vgg16", "cifar10", num_images=2)
    assert built.meta["provenance"]["sources"] == {"input_bit_density": "measured on my images"}


def test_rates_measures_the_exit_histograms_at_thresholds_given(tiny_vgg16, tmp_path, capsys):
    """`workload rates` had no --cl-init/--tau-cl/--theta (`workload stats` has), so a table, and the paper-scale
    workload built from it, could only hold the trained network's own exits (h3, session 35)."""
    own, other = tmp_path / "own.yaml", tmp_path / "other.yaml"
    base = ["workload", "rates", str(tiny_vgg16), "--network", "vgg16", "--dataset", "cifar10", "--images", "4"]
    assert _cli([*base, "-o", str(own)], capsys)[0] == 0
    code, _, err = _cli([*base, "-o", str(other), "--cl-init", "0.05", "--tau-cl", "0.6", "--theta", "1"], capsys)
    assert code == 0, err
    tables = [yaml.safe_load(p.read_text()) for p in (own, other)]
    assert tables[1]["datasets"]["cifar10"]["exit_policy"] == {"cl_init": 0.05, "tau_cl": 0.6, "theta": 1}
    assert tables[0]["rates"] == tables[1]["rates"]  # the rates are over the images running under atsn ...
    ours = tables[1]["datasets"]["cifar10"]["exit_histograms"]
    twin = fit_statistical_twin(read_workload(tiny_vgg16), 4, cl_init=0.05, tau_cl=0.6, theta=1,
                                input_rows=False, spike_rows=False, exit_steps=False)
    for policy, hist in ours.items():  # ... and the histograms are those of the thresholds given
        assert hist == pytest.approx(list(twin.arrays[f"exit_hist/{policy}"]), abs=1e-6), policy
    assert ours != tables[0]["datasets"]["cifar10"]["exit_histograms"]  # not the network's own (CL 0.9)
    assert "--cl-init 0.05 --tau-cl 0.6 --theta 1" in other.read_text()  # the command in the table's header
    code, _, err = _cli([*base, "-o", str(tmp_path / "bad.yaml"), "--cl-init", "1.5"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "cl_init" in err.replace("-", "_"), err
    assert not (tmp_path / "bad.yaml").exists()


@pytest.mark.parametrize(("dataset", "classes"), [("cifar100", 100), ("fashion-mnist", 10)])
def test_a_target_of_other_classes_is_noted(tmp_path, capsys, dataset, classes):
    """A 10-class network measured for cifar100 (a build gives it 100 classes) wrote its exit histograms, decided
    by a 10-way softmax, without a word, while another input size or readout is noted: now it is noted too (a
    dataset that keeps the network's classes is not)."""
    table_path = tmp_path / "t.yaml"
    code, _, err = _cli(["workload", "rates", "workloads/vgg16w03125e40_cifar10_atsn.npz", "--network", "vgg16",
                         "--dataset", dataset, "-o", str(table_path), "--images", "2"], capsys)
    assert code == 0, err
    sources = yaml.safe_load(table_path.read_text())["sources"]
    needle = "the output layer has 100 classes in vgg16 (--dataset cifar100) but 10 in the trained network"
    if classes == 10:
        assert "differences" not in sources and "note:" not in err, err
        return
    assert needle in sources["differences"] and f"note: {needle}" in err and err.count("note:") == 1, err
    assert build_from_spec(load_rate_spec(table_path), "vgg16", dataset, num_images=3).num_classes == classes


@pytest.mark.parametrize("sources", ["measured", -1, ["a", "b"], {"rates": ["x"]}])
def test_sources_that_are_not_a_mapping_of_text_are_one_line(tmp_path, capsys, sources):
    """`sources: measured` in a rate table raised a bare ValueError (dict() of a string) out of build."""
    table = yaml.safe_load((Path(__file__).resolve().parents[1] / "workloads" / "rates" / "vgg16.yaml").read_text())
    table["sources"] = sources
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(table))
    with pytest.raises(WorkloadError, match=r"^.*t\.yaml: sources.*: .*text.*; "):
        load_rate_spec(path)
    code, _, err = _cli(["workload", "build", "--network", "vgg16", "--rates", str(path), "--dataset", "cifar10",
                         "-o", str(tmp_path / "o.npz"), "--num-images", "2"], capsys)
    assert code == 2 and err.count("\n") == 1 and "sources" in err and not (tmp_path / "o.npz").exists(), err


def test_table_counts_take_whole_numbers_as_architecture_files_do(tmp_path):
    # architecture sizes take 16.0 and '1e3'; a rate table's timesteps: 4.0 was refused ('not an integer in 1..1024')
    text = yaml.safe_dump({"network": "vgg16", "timesteps": 4.0, "num_images": "3e0", "default_rate": 0.1,
                           "datasets": {"cifar10": {"seed": 7.0}}})
    (tmp_path / "t.yaml").write_text(text)
    built = build_from_spec(load_rate_spec(tmp_path / "t.yaml"), "vgg16", "cifar10")
    assert (built.timesteps, built.num_images, int(built.arrays["seed"])) == (4, 3, 7)
    (tmp_path / "t.yaml").write_text(text.replace("timesteps: 4.0", "timesteps: 4.5"))
    with pytest.raises(WorkloadError, match=r"timesteps: 4.5 is not an integer in 1..1024"):
        build_from_spec(load_rate_spec(tmp_path / "t.yaml"), "vgg16", "cifar10")


def test_a_per_channel_default_over_layers_of_two_widths_says_so(tmp_path):
    """default_rate as [T][C] lists over layers of 3 and 5 channels asked for lists of 5, then, given 5, for 3."""
    net = tmp_path / "two.yaml"
    net.write_text("name: two\ninput_shape: [3, 6, 6]\nnum_classes: 4\nlayers:\n"
                   "  - {name: c1, type: conv, out_channels: 3, kernel: 3, padding: 1}\n"
                   "  - {name: c2, type: conv, out_channels: 5, kernel: 3, padding: 1}\n"
                   "  - {name: flat, type: flatten}\n  - {name: out, type: output}\n")
    rates = tmp_path / "rates.yaml"
    for width in (3, 5):
        lists = [[0.1] * width, [0.2] * width]
        rates.write_text(yaml.safe_dump({"network": "two", "timesteps": 2, "default_rate": lists,
                                         "datasets": {"d": {"seed": 1}}}))
        with pytest.raises(WorkloadError, match=r"default_rate: per-channel lists rate layers of different widths "
                           r"\(channels: c1 3, c2 5\); give those layers their own rates\.<layer>, or a "
                           r"default_rate of one number or 2 values"):
            build_from_spec(load_rate_spec(rates), str(net), "d", num_images=2)
    rates.write_text(yaml.safe_dump({"network": "two", "timesteps": 2, "default_rate": [[0.1] * 3, [0.2] * 3],
                                     "rates": {"c2": 0.3}, "datasets": {"d": {"seed": 1}}}))
    built = build_from_spec(load_rate_spec(rates), str(net), "d", num_images=2)
    assert np.allclose(built.arrays["rate/c1"], [[0.1] * 3, [0.2] * 3]) and np.allclose(built.arrays["rate/c2"], 0.3)


def test_a_pool_rate_ratio_every_pool_overrides_is_refused(tmp_path):
    """Every pool it could rate had a rate of its own: the ratio did nothing, silently (a network without such
    pools was already refused)."""
    net = tmp_path / "pools.yaml"
    net.write_text("name: pools\ninput_shape: [3, 8, 8]\nnum_classes: 4\nlayers:\n"
                   "  - {name: c1, type: conv, out_channels: 3, kernel: 3, padding: 1}\n"
                   "  - {name: p1, type: maxpool, kernel: 2}\n"
                   "  - {name: c2, type: conv, out_channels: 4, kernel: 3, padding: 1}\n"
                   "  - {name: p2, type: maxpool, kernel: 2}\n"
                   "  - {name: flat, type: flatten}\n  - {name: out, type: output}\n")
    rates = tmp_path / "rates.yaml"
    spec = {"network": "pools", "timesteps": 2, "default_rate": 0.1, "pool_rate_ratio": 3.0,
            "rates": {"p1": 0.15, "p2": 0.2}, "datasets": {"d": {"seed": 1}}}
    rates.write_text(yaml.safe_dump(spec))
    with pytest.raises(WorkloadError, match=r"pool_rate_ratio: applies to no max-pool of pools: every pool it could "
                       r"rate has a rate of its own in rates \(p1, p2\); drop it"):
        build_from_spec(load_rate_spec(rates), str(net), "d", num_images=2)
    del spec["rates"]["p2"]  # one pool left to it: used
    rates.write_text(yaml.safe_dump(spec))
    built = build_from_spec(load_rate_spec(rates), str(net), "d", num_images=2)
    assert np.allclose(built.arrays["rate/p2"], 0.3) and np.allclose(built.arrays["rate/p1"], 0.15)


def test_a_gapped_pools_range_error_says_why_and_names_the_dataset_that_moved_its_input(tmp_path):
    """A 2x2 pool at stride 3 was said to have 'neighbouring windows [that] share neurons', and a range broken by one
    dataset's rate of the pool's input did not name that dataset."""
    net = tmp_path / "gap.yaml"
    net.write_text("name: gap\ninput_shape: [3, 5, 7]\nnum_classes: 3\nlayers:\n"
                   "  - {name: conv1, type: conv, out_channels: 7, kernel: 3, padding: 1}\n"
                   "  - {name: p1, type: maxpool, kernel: 2, stride: 3}\n"
                   "  - {name: conv2, type: conv, out_channels: 7, kernel: 1}\n"
                   "  - {name: flat, type: flatten}\n  - {name: fc, type: output}\n")
    rates = tmp_path / "rates.yaml"
    rates.write_text(yaml.safe_dump({"network": "gap", "timesteps": 2, "default_rate": 0.2, "rates": {"p1": 0.9},
                                     "datasets": {"a": {}, "b": {"rates": {"conv1": 0.05}}}}))
    with pytest.raises(WorkloadError) as info:
        build_from_spec(load_rate_spec(rates), str(net), "b", num_images=2)
    message = str(info.value)
    assert "and neurons between the windows belong to none" in message and "share neurons" not in message
    assert "(or change conv1's, which datasets.b.rates gives)" in message
    with pytest.raises(WorkloadError) as info:
        build_from_spec(load_rate_spec(rates), str(net), "a", num_images=2)
    assert "(or change conv1's)" in str(info.value)
