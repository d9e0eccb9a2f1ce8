"""`satasim workload info|stats|build`: outputs, JSON, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from satasim_atsn.cli import main
from satasim_atsn.traces.exit_histograms import histogram_mean
from satasim_atsn.workload.format import read_workload, write_workload
from satasim_atsn.workload.synthetic import random_workload

ROOT = Path(__file__).resolve().parents[1]
RATES = ROOT / "workloads" / "rates"


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code), out, err


def test_info_vgg16_prints_totals_and_json(tmp_path, capsys):
    target = tmp_path / "info.json"
    code, out, _ = run(
        ["workload", "info", str(ROOT / "workloads" / "assumed" / "vgg16_cifar10.npz"), "--json", str(target)], capsys
    )
    assert code == 0
    assert "STATISTICAL" in out and "14715584 weights" in out and "313201664 MACs" in out
    assert "mean timestep 2.1900" in out
    data = json.loads(target.read_text())
    assert data["totals"]["params"] == 14_715_584
    assert abs(data["exit_mean_timestep"]["atsn"] - 2.19) < 1e-9
    assert data["rates"]["conv1"] == [0.1, 0.1, 0.1, 0.1]
    first = target.read_bytes()
    run(["workload", "info", str(ROOT / "workloads" / "assumed" / "vgg16_cifar10.npz"), "--json", str(target)], capsys)
    assert target.read_bytes() == first


def test_info_resnet19_and_trained(tmp_path, capsys):
    code, out, _ = run(["workload", "info", str(ROOT / "workloads" / "resnet19_cifar100.npz")], capsys)
    assert code == 0 and "12604800 weights" in out and "s3b1_sc" in out
    path = tmp_path / "trained.npz"
    write_workload(path, random_workload(4, images=5))
    code, out, _ = run(["workload", "info", str(path)], capsys)
    assert code == 0 and "(trained)" in out and "provenance" in out


def test_info_columns_hold_long_layer_names(tmp_path, capsys):
    """A layer named input_flatten pushed its row out of line with the header."""
    workload = random_workload(4, images=2)
    renamed = {ly["name"]: f"{ly['name']}_with_a_long_name" for ly in workload.layers[:2]}
    for ly in workload.layers:
        ly["inputs"] = [renamed.get(src, src) for src in ly["inputs"]]
        ly["name"] = renamed.get(ly["name"], ly["name"])
    def renamed_key(key: str) -> str:
        prefix, _, layer = key.rpartition("/")
        return f"{prefix}/{renamed[layer]}" if prefix and layer in renamed else key

    workload.arrays = {renamed_key(key): value for key, value in workload.arrays.items()}
    path = tmp_path / "long.npz"
    write_workload(path, workload)
    code, out, _ = run(["workload", "info", str(path)], capsys)
    assert code == 0
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("layer "))
    column = lines[header].index(" type ") + 1
    rows = lines[header + 1: header + 1 + len(workload.layers)]
    assert all(row[column - 1] == " " and row[column:].split()[0] == row.split()[1] for row in rows), rows


@pytest.mark.parametrize(
    ("content", "needle"),
    [(None, "no such file"), (b"garbage", "not a readable .npz"), (b"PK\x03\x04broken", "not a readable .npz")],
)
def test_info_bad_files_exit_2(tmp_path, capsys, content, needle):
    path = tmp_path / "bad.npz"
    if content is not None:
        path.write_bytes(content)
    code, out, err = run(["workload", "info", str(path)], capsys)
    assert code == 2 and needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_build_reproduces_shipped_file(tmp_path, capsys):
    out_path = tmp_path / "v.npz"
    argv = [
        "workload",
        "build",
        "--network",
        "resnet19",
        "--dataset",
        "cifar10",
        "--rates",
        str(RATES / "resnet19.yaml"),
    ]
    code, out, _ = run(argv + ["-o", str(out_path)], capsys)
    assert code == 0 and "atsn 2.00" in out
    assert out_path.read_bytes() == (ROOT / "workloads" / "assumed" / "resnet19_cifar10.npz").read_bytes()
    code, _, _ = run(argv + ["-o", str(out_path), "--num-images", "50", "--seed", "3"], capsys)
    wl = read_workload(out_path)
    assert code == 0 and wl.num_images == 50 and int(wl.arrays["seed"]) == 3


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rates.yaml"
    path.write_text(text)
    return path


BASE = """network: vgg16
timesteps: 4
default_rate: 0.1
datasets:
  cifar10: {seed: 1, exit_mean_timesteps: {dtsnn: 2.5, atsn: 2.0}}
"""


@pytest.mark.parametrize(
    ("text", "args", "needle"),
    [
        (BASE, ["--network", "resnet19"], "use the matching rate table"),
        (BASE, ["--dataset", "cifar100"], "datasets.cifar100: missing"),
        (BASE + "rates: {conv99: 0.1}\n", [], "rates.conv99"),
        (BASE + "rates: {conv1: 1.5}\n", [], "in [0, 1]"),
        (BASE + "rates: {conv1: [0.1, 0.2]}\n", [], "has shape [2]"),
        (BASE + "ratez: {}\n", [], "did you mean 'rates'"),
        (BASE.replace("atsn: 2.0", "atsn: 7"), [], "7 is not in [1, 4]"),
        (BASE.replace("atsn: 2.0", "atsn: fast"), [], "is not a number"),
        (BASE.replace("default_rate: 0.1\n", ""), [], "set default_rate"),
        (BASE + "input_bit_density: [0.5]\n", [], "8 densities"),
        ("network: [\n", [], "not a readable YAML"),
        ("- 1\n", [], "must be a YAML mapping"),
    ],
)
def test_build_bad_rate_tables_exit_2(tmp_path, capsys, text, args, needle):
    path = _write(tmp_path, text)
    argv = ["workload", "build", "--network", "vgg16", "--dataset", "cifar10", "--rates", str(path)]
    for i in range(0, len(args), 2):
        flag = args[i]
        idx = argv.index(flag)
        argv[idx + 1] = args[i + 1]
    code, _, err = run(argv + ["-o", str(tmp_path / "o.npz")], capsys)
    assert code == 2, err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "o.npz").exists()


def test_build_missing_table_and_bad_choice(tmp_path, capsys):
    argv = ["workload", "build", "--network", "vgg16", "--dataset", "cifar10", "-o", str(tmp_path / "o.npz")]
    code, _, err = run(argv + ["--rates", str(tmp_path / "none.yaml")], capsys)
    assert code == 2 and "no such file" in err
    code, _, err = run(["workload", "build", "--network", "vgg19", "--dataset", "cifar10", "--rates", "x"], capsys)
    assert code == 2


def test_stats_fits_a_twin(tmp_path, capsys):
    trained = tmp_path / "trained.npz"
    wl = random_workload(3, images=12, timesteps=4, encoding="direct")
    write_workload(trained, wl)
    twin_path = tmp_path / "twin.npz"
    code, out, _ = run(["workload", "stats", str(trained), "-o", str(twin_path), "--per-channel"], capsys)
    assert code == 0 and "conv1" in out and "exit atsn" in out
    twin = read_workload(twin_path)
    assert twin.is_statistical and twin.num_images == 12 and twin.layers == read_workload(trained).layers
    assert twin.arrays["rate/conv1"].ndim == 2
    assert histogram_mean(twin.arrays["exit_hist/fixed"]) == 4
    code, _, err = run(["workload", "stats", str(trained), "-o", str(twin_path), "--cl-init", "1.5"], capsys)
    assert code == 2 and "--cl-init: must be in (0, 1], got 1.5" in err
    code, _, err = run(["workload", "stats", str(twin_path), "-o", str(tmp_path / "t2.npz")], capsys)
    assert code == 2 and "already statistical" in err
    code, _, err = run(["workload", "stats", str(trained), "-o", str(twin_path), "--images", "99"], capsys)
    assert code == 2 and "not in 1..12" in err


def test_info_shows_the_confidence_ceiling_of_a_trained_workload(tmp_path, capsys):
    target = tmp_path / "info.json"
    code, out, _ = run(["workload", "info", str(ROOT / "workloads" / "vgg16w025_cifar10_atsn.npz"),
                        "--json", str(target)], capsys)
    assert code == 0
    assert "t=1 0.984456 (cannot clear CL_t = 0.999)  t=2 0.999178" in out
    assert "from the output weights, eq. 8)" in out  # a non-reset membrane output
    code, out, _ = run(["workload", "info", str(ROOT / "workloads" / "vgg16w025_cifar10_snn.npz")], capsys)
    assert code == 0 and "from the output weights, eq. 5)" in out  # the CE baseline's accumulate output
    rows = json.loads(target.read_text())["confidence_ceiling"]
    assert [r["can_clear_cl_t"] for r in rows] == [False, True, True, True]
    statistical = tmp_path / "stat.json"
    run(["workload", "info", str(ROOT / "workloads" / "vgg16_cifar10.npz"), "--json", str(statistical)], capsys)
    numbers = json.loads(statistical.read_text())
    assert "confidence_ceiling" not in numbers  # no weights to bound it from
    assert numbers["output_mode"] == "membrane"  # the docs list it for any network with an output layer


COMPARE_PLACE = "compare: the last argument, or the WORKLOAD of an ARCH=WORKLOAD pair"


@pytest.mark.parametrize("argv, place", [
    (["run", "atsn16x16", "{yaml}"], "run: the second argument"),
    (["verify", "atsn16x16", "{yaml}"], "verify: the second argument"),
    (["bench", "atsn16x16"], "bench: its argument"),
    (["workload", "info", "{yaml}"], "workload info: its argument"),
    (["workload", "stats", "{yaml}", "-o", "{out}"], "workload stats: its argument"),
    (["evaluate", "{yaml}"], "evaluate: its argument"),
    (["compare", "-o", "{out}", "atsn16x16", "{yaml}"], COMPARE_PLACE),
    (["compare", "-o", "{out}", "atsn16x16={yaml}", "dtsnn16x16", "{npz}"], COMPARE_PLACE),
])
def test_a_path_that_is_no_workload_is_named_as_the_command_took_it(argv, place, tmp_path, capsys):
    """Every command's refusal of a YAML or an architecture name as a workload said '(compare: the last argument)';
    the fix names the argument of the command that read it."""
    yaml = Path(__file__).resolve().parents[1] / "archs" / "atsn16x16.yaml"
    npz = yaml.parents[1] / "workloads" / "vgg16_cifar10.npz"
    args = [a.format(yaml=yaml, out=tmp_path / "out", npz=npz) for a in argv]
    code, _, err = run(args, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert err.rstrip().endswith(f"workloads/vgg16_cifar10.npz ({place})"), err


@pytest.mark.parametrize("argv", [["workload", "info", "{nir}"], ["run", "atsn16x16", "{nir}"],
                                  ["evaluate", "{nir}"]])
def test_a_nir_graph_given_as_a_workload_is_named_as_one(argv, tmp_path, capsys):
    """A NIR graph (HDF5) was 'not a readable .npz file (does not start with a zip member); ... regenerate it'."""
    nir = tmp_path / "model.nir"
    nir.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    code, _, err = run([a.format(nir=nir) for a in argv], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert f"{nir}: is an HDF5 file (a NIR graph), not a workload (.npz); import it first: satasim workload " in err


def test_stats_to_standard_output_or_dev_null_reports_the_bytes_written(tmp_path, capsys):
    """`workload stats T -o -` (or `-o /dev/null`, a FIFO) wrote the twin, then read the output back for its sizes:
    a FileNotFoundError / BadZipFile traceback (a FIFO hung). The sizes come from the bytes written."""
    import subprocess
    import sys

    trained = tmp_path / "trained.npz"
    write_workload(trained, random_workload(3, images=4, timesteps=3, encoding="direct"))
    code, _, err = run(["workload", "stats", str(trained), "-o", str(tmp_path / "twin.npz"),
                        "--json", str(tmp_path / "file.json")], capsys)
    assert code == 0, err
    as_file = json.loads((tmp_path / "file.json").read_text())
    assert as_file["file_bytes"] == (tmp_path / "twin.npz").stat().st_size
    code, _, err = run(["workload", "stats", str(trained), "-o", "/dev/null", "--json", str(tmp_path / "n.json")],
                       capsys)
    assert code == 0 and "Traceback" not in err, err
    assert {**json.loads((tmp_path / "n.json").read_text()), "file": "twin.npz"} == as_file
    with open(tmp_path / "stdout.npz", "wb") as handle:
        done = subprocess.run([sys.executable, "-m", "satasim_atsn", "workload", "stats", str(trained), "-o", "-",
                               "--json", str(tmp_path / "s.json")], stdout=handle, stderr=subprocess.PIPE,
                              text=True, timeout=600)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert (tmp_path / "stdout.npz").read_bytes() == (tmp_path / "twin.npz").read_bytes()
    assert {**json.loads((tmp_path / "s.json").read_text()), "file": "twin.npz"} == as_file


def test_stats_of_spike_frames_prints_and_writes_the_input_frame_rate(tmp_path, capsys):
    """stats fitted a spike-frame network's input as rate/input (info of the twin shows it) but printed and wrote
    nothing of it, while an image network's bit-plane densities are printed and in --json: now the frame rate per t
    is both, the numbers info shows."""
    trained = tmp_path / "frames.npz"
    write_workload(trained, random_workload(3, images=4, timesteps=3, encoding="spike_frames"))
    twin, numbers = tmp_path / "twin.npz", tmp_path / "stats.json"
    code, out, err = run(["workload", "stats", str(trained), "-o", str(twin), "--json", str(numbers)], capsys)
    assert code == 0, err
    run(["workload", "info", str(twin), "--json", str(tmp_path / "info.json")], capsys)
    rate = json.loads((tmp_path / "info.json").read_text())["input_frame_rate"]
    assert len(rate) == 3 and json.loads(numbers.read_text())["input_frame_rate"] == rate
    assert "  input frame rate per t " + " ".join(f"{r:.4f}" for r in rate) in out.splitlines(), out


@pytest.mark.parametrize("label", ["", "  ", "a\nb", "x\x07"])
@pytest.mark.parametrize("command", ["import", "build", "rates"])
def test_a_dataset_label_that_is_not_one_line_is_refused_naming_the_option(tmp_path, capsys, command, label):
    """import stored --dataset '' or 'a\\nb' (info then printed 'dataset a' and 'b, 7 classes' on two lines); build
    blamed a line break on the network file's meta.name: each now names --dataset and writes nothing."""
    nir = pytest.importorskip("nir")  # noqa: F841 (import needs it)
    from satasim_atsn.interchange.nir_io import export_nir, write_nir

    wl = random_workload(11, images=2, timesteps=2)
    write_workload(tmp_path / "w.npz", wl)
    write_nir(tmp_path / "w.nir", export_nir(wl))
    argv = {"import": ["workload", "import", str(tmp_path / "w.nir"), "--inputs", str(tmp_path / "w.npz")],
            "build": ["workload", "build", "--network", "vgg16", "--rate", "0.1", "--timesteps", "2"],
            "rates": ["workload", "rates", str(ROOT / "workloads" / "vgg16w025_cifar10_atsn.npz"), "--network",
                      "vgg16", "--images", "1"]}[command]
    code, _, err = run(argv + ["--dataset", label, "-o", str(tmp_path / "o.out")], capsys)
    assert code == 2 and err.count("\n") == 1 and "--dataset" in err and "meta.name" not in err, err
    assert not (tmp_path / "o.out").exists()


def test_a_twin_of_a_workload_without_a_dataset_is_not_labelled_none(tmp_path, capsys):
    """meta.dataset may be null (docs/workload-format.md); its twin stored the text 'None' as its dataset (info and
    results then named a dataset called None): it is labelled 'unknown', as when the key is absent."""
    wl = random_workload(5, images=3, timesteps=2)
    wl.meta["dataset"] = None
    write_workload(tmp_path / "w.npz", wl)
    code, _, err = run(["workload", "stats", str(tmp_path / "w.npz"), "-o", str(tmp_path / "t.npz")], capsys)
    assert code == 0, err
    assert read_workload(tmp_path / "t.npz").meta["dataset"] == "unknown"


def test_info_of_a_workload_without_a_dataset_says_so(tmp_path, capsys):
    """info printed 'dataset None' for a null meta.dataset (the JSON keeps null)."""
    wl = random_workload(5, images=3, timesteps=2)
    wl.meta["dataset"] = None
    write_workload(tmp_path / "w.npz", wl)
    code, out, err = run(["workload", "info", str(tmp_path / "w.npz"), "--json", str(tmp_path / "i.json")], capsys)
    assert code == 0 and "dataset None" not in out and "  dataset not given, " in out, out
    assert json.loads((tmp_path / "i.json").read_text())["dataset"] is None


def test_info_of_a_network_ending_in_spikes_says_its_exit_defaults_are_unused(tmp_path, capsys):
    """A network without an output layer runs all T (its spike counts are the output): info listed its exit
    defaults as if an exit unit would read them."""
    path = tmp_path / "spiking.npz"
    write_workload(path, random_workload(3, images=2, output_layer=False))
    code, out, err = run(["workload", "info", str(path)], capsys)
    assert code == 0, err
    line = next(text for text in out.splitlines() if "exit defaults" in text)
    assert line.endswith("(unused: a network ending in spikes runs all T)")
    write_workload(path, random_workload(3, images=2))
    code, out, err = run(["workload", "info", str(path)], capsys)
    assert "unused" not in next(text for text in out.splitlines() if "exit defaults" in text)


def test_the_legend_of_currents_names_the_layer_kinds_present(tmp_path, capsys):
    """A `linear*` current (a linear layer without LIF feeding a join) was explained as "conv without LIF"."""
    net = tmp_path / "lin.yaml"
    net.write_text("name: linres\ninput_shape: [1, 6, 6]\nnum_classes: 3\nlayers:\n  - {name: f, type: flatten}\n"
                   "  - {name: h, type: linear, out_features: 8}\n"
                   "  - {name: m, type: linear, out_features: 8, spiking: false}\n"
                   "  - {name: j, type: add, inputs: [m, h]}\n  - {name: out, type: output}\n")
    code, _, err = run(["workload", "build", "--network", str(net), "--rate", "0.1", "--timesteps", "2",
                        "--num-images", "2", "-o", str(tmp_path / "lin.npz")], capsys)
    assert code == 0, err
    code, out, err = run(["workload", "info", str(tmp_path / "lin.npz")], capsys)
    assert code == 0, err
    assert "  (* = linear without LIF: a current feeding a residual join)" in out.splitlines()
