"""`satasim workload build --rate` (traces/commands.py): a policy given twice with --exit-mean is
refused in one line (exit code 2) instead of the last mean silently winning; --dataset stays a label,
but a near miss of a dataset that sets the classes (cifar-100) is refused."""

from __future__ import annotations

import pytest

from satasim_atsn.cli import main
from satasim_atsn.workload.format import read_workload

BUILD = ["workload", "build", "--network", "vgg16", "--rate", "0.1", "--timesteps", "4", "--num-images", "8"]


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


@pytest.mark.parametrize("means", [["atsn=2.5", "atsn=3"], ["atsn=2.5", "dtsnn=3", " atsn =2.5"]])
def test_exit_mean_given_twice_is_refused(tmp_path, capsys, means):
    target = tmp_path / "w.npz"
    argv = BUILD + [a for m in means for a in ("--exit-mean", m)] + ["-o", str(target)]
    code, out, err = run(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err
    assert "--exit-mean: gives 'atsn' twice" in lines[0] and repr(means[-1]) in lines[0]
    assert not target.exists()


@pytest.mark.parametrize(("mean", "needle"), [
    ("atsn=nan", "--exit-mean.atsn: 'nan' is not a finite number; give a mean exit timestep in [1, 4]"),
    ("atsn=-inf", "--exit-mean.atsn: '-inf' is not a finite number; give a mean exit timestep in [1, 4]"),
    ("atsn=abc", "--exit-mean.atsn: 'abc' is not a number; give a mean exit timestep in [1, 4]"),
    ("atsn=", "--exit-mean.atsn: '' is not a number; give a mean exit timestep in [1, 4]"),
    ("=2", "--exit-mean: '=2' is not POLICY=MEAN (no policy before '=')"),
    ("atsn", "--exit-mean: 'atsn' is not POLICY=MEAN (no '=')"),
])
def test_exit_mean_not_a_finite_number_says_so(tmp_path, capsys, mean, needle):
    """`--exit-mean atsn=nan` said "'atsn=nan' is not POLICY=MEAN" (it is that form); `=2` said
    "--exit-mean.: unknown key"."""
    target = tmp_path / "w.npz"
    code, _, err = run(BUILD + ["--exit-mean", mean, "-o", str(target)], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and needle in lines[0], err
    assert not target.exists()


def test_one_mean_per_policy_still_builds(tmp_path, capsys):
    target = tmp_path / "w.npz"
    code, out, _ = run(BUILD + ["--exit-mean", "atsn=2.5", "--exit-mean", "dtsnn=3", "-o", str(target)], capsys)
    assert code == 0 and "dtsnn 3.00, atsn 2.50" in out and target.is_file()


def test_dataset_with_rate_is_a_label(tmp_path, capsys):
    """With --rate no dataset is read: --dataset names the workload and its meta.dataset (a network file of one's
    own may be trained on any dataset), and only cifar10/cifar100 also set the classes. So it is not refused."""
    target = tmp_path / "w.npz"
    code, out, _ = run(BUILD + ["--dataset", "fashion-mnist", "-o", str(target)], capsys)
    workload = read_workload(target)
    assert code == 0 and workload.meta["dataset"] == "fashion-mnist"
    assert workload.name == "vgg16-fashion-mnist-statistical"


@pytest.mark.parametrize(("label", "meant"), [("cifar-100", "cifar100"), ("CIFAR100", "cifar100"),
                                               ("Cifar_10", "cifar10"), ("cifar1000", "cifar100")])
def test_a_near_miss_of_a_dataset_that_sets_classes_is_refused(tmp_path, capsys, label, meant):
    """``cifar-100`` as a label would keep the network file's 10 classes without a word; it is refused, naming
    the dataset it is close to and the classes that one sets."""
    target = tmp_path / "w.npz"
    code, _, err = run(BUILD + ["--dataset", label, "-o", str(target)], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and not target.exists()
    assert f"--dataset: {label!r} is not a dataset name but is close to {meant!r}" in lines[0]
    assert f"write --dataset {meant}" in lines[0]


@pytest.mark.parametrize("label", ["", " "])
def test_an_empty_dataset_label_is_refused(tmp_path, capsys, label):
    """`--dataset ''` built as if it were left out, `--dataset ' '` a workload named 'vgg16- -statistical'."""
    target = tmp_path / "w.npz"
    code, _, err = run(BUILD + ["--dataset", label, "-o", str(target)], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "--dataset: is empty; give a dataset label" in lines[0], err
    assert not target.exists()


def test_the_named_dataset_sets_its_classes(tmp_path, capsys):
    target = tmp_path / "w.npz"
    code, _, _ = run(BUILD + ["--dataset", "cifar100", "-o", str(target)], capsys)
    assert code == 0 and read_workload(target).num_classes == 100


def test_a_seed_beyond_int64_is_refused_and_the_largest_builds(tmp_path, capsys):
    """The draw seed is stored as int64: 2^63 was an OverflowError traceback; now click's range names it."""
    target = tmp_path / "w.npz"
    code, _, err = run(BUILD + ["--seed", str(2**63), "-o", str(target)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "--seed" in err and "0<=x<=9223372036854775807" in err and not target.exists()
    code, _, _ = run(BUILD + ["--seed", str(2**63 - 1), "-o", str(target)], capsys)
    assert code == 0 and int(read_workload(target).arrays["seed"]) == 2**63 - 1
    stats_target = tmp_path / "twin.npz"
    code, _, err = run(["workload", "stats", str(target), "--seed", str(2**64), "-o", str(stats_target)], capsys)
    assert code == 2 and "--seed" in err and not stats_target.exists()


def test_the_same_file_for_output_and_json_is_refused(tmp_path, capsys):
    """`-o X --json X` wrote the workload, then replaced it with the JSON (exit 0); `workload stats` too."""
    target = tmp_path / "w.npz"
    code, _, err = run(BUILD + ["-o", str(target), "--json", str(target)], capsys)
    assert code == 2 and "one would replace the other" in err and not target.exists()
    code, _, err = run(BUILD + ["-o", str(target), "--json", ""], capsys)
    assert code == 2 and "--json: is an empty path" in err and not target.exists()
    assert run(BUILD + ["-o", str(target)], capsys)[0] == 0
    twin = tmp_path / "twin.npz"
    code, _, err = run(["workload", "stats", str(target), "-o", str(twin), "--json", str(twin)], capsys)
    assert code == 2 and "one would replace the other" in err and not twin.exists()


ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("rates, needle, fix", [
    (ROOT / "examples" / "my_net.yaml", "is a network file (docs/networks.md), not a rate table",
     "give it as --network, and a rate table (workloads/rates/*.yaml, or `satasim workload rates`) as --rates"),
    (ROOT / "archs" / "atsn16x16.yaml", "is an architecture (archs/*.yaml; satasim run takes it), not a rate table",
     "give a rate table (workloads/rates/*.yaml, or `satasim workload rates`) as --rates"),
    # it said "not a readable YAML file (UnicodeDecodeError); fix it" (session 34)
    (ROOT / "workloads" / "vgg_small_fmnist_atsn.npz", "is a workload (.npz), not a rate table",
     "give a rate table (workloads/rates/*.yaml, or `satasim workload rates` of a trained workload) as --rates"),
])
def test_rates_given_another_kind_of_file_says_what_it_is(tmp_path, capsys, rates, needle, fix):
    """--rates NETWORK.yaml said 'input_shape: unknown key; allowed keys: network, ...'."""
    target = tmp_path / "w.npz"
    code, _, err = run(["workload", "build", "--network", "vgg16", "--rates", str(rates), "--dataset", "cifar10",
                        "-o", str(target)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{rates}: {needle}; {fix}" in err, err
    assert not target.exists()


@pytest.mark.parametrize("network, needle", [
    (ROOT / "workloads" / "rates" / "vgg16.yaml", "is a rate table (workload build takes it as --rates)"),
    (ROOT / "archs" / "atsn16x16.yaml", "is an architecture (archs/*.yaml; satasim run takes it)"),
])
def test_network_given_another_kind_of_file_says_what_it_is(tmp_path, capsys, network, needle):
    """--network RATES.yaml said 'network: unknown key; use one of name, input_shape, ...'."""
    code, _, err = run(["workload", "build", "--network", str(network), "--rate", "0.1", "--timesteps", "2",
                        "-o", str(tmp_path / "w.npz")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{network}: {needle}, not a network file; give a network file (docs/networks.md)" in err, err
    assert "as --network" in err and not (tmp_path / "w.npz").exists()


def test_num_images_beyond_the_format_is_refused_naming_the_option(tmp_path, capsys):
    """--num-images 10^12 was blamed on the shipped network file: 'vgg16.yaml: meta.num_images: must be ...'."""
    code, _, err = run([*BUILD[:-2], "--num-images", str(10**12), "-o", str(tmp_path / "w.npz")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--num-images" in err and "1<=x<=1000000000" in err and "vgg16.yaml" not in err, err
    assert not (tmp_path / "w.npz").exists()


def test_one_image_is_counted_in_the_singular(tmp_path, capsys):
    """`workload build --num-images 1` printed '1 images'; `info` and `stats` of one fitted image likewise."""
    target = tmp_path / "w.npz"
    code, out, err = run([*BUILD[:-2], "--num-images", "1", "-o", str(target)], capsys)
    assert code == 0 and ", 1 image, T = 4" in out, out + err
    code, out, err = run(["workload", "info", str(target)], capsys)
    assert code == 0 and "T = 4, 1 image\n" in out, out + err
    trained = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "workloads" / "vgg_small_fmnist_atsn.npz")
    code, out, err = run(["workload", "stats", trained, "--images", "1", "-o", str(tmp_path / "t.npz")], capsys)
    assert code == 0 and "fitted 1 image of " in out and "spike row profiles of 1 image: 4 layers" in out, out + err
    assert "1 images" not in out


@pytest.mark.parametrize("target, needle", [
    ("{tmp}/w.yaml", "w.yaml: -o: ends in .yaml, but a workload is an .npz"),
    ("{tmp}/w.yml", "w.yml: -o: ends in .yml, but a workload is an .npz"),
])
def test_a_workload_output_the_tool_could_not_use_is_refused(tmp_path, capsys, target, needle):
    """`-o w.yaml` wrote an .npz that every command then refused as 'a YAML file (an architecture, a network or a
    study)'."""
    out = target.format(tmp=tmp_path)
    code, stdout, err = run([*BUILD, "-o", out], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err and stdout == "", err
    assert not list(tmp_path.iterdir())
