"""Network files (workload/network_file.py): the YAML description of a network, its checks, and the
shipped paper networks as the one source of workload/networks.py's tables."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.errors import WorkloadError
from satasim_atsn.workload.network_file import load_network, parse_network, resolve_network, shipped_networks
from satasim_atsn.workload.schema import infer_out_shape

ROOT = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------------------------------
# the witness: the Python builders of workload/networks.py as they were before the tables
# moved into satasim_atsn/data/networks/*.yaml (frozen copy; the YAML must reproduce them)
# ------------------------------------------------------------------------------------------
_VGG16_CONFIG = (64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512, "P")
_RESNET19_STAGES = ((128, 3, 1), (256, 3, 2), (512, 2, 2))


def _conv(name, src, cout, kernel=3, stride=1, padding=1, spiking=True):
    return {"name": name, "type": "conv", "inputs": [src], "kernel": kernel, "stride": stride, "padding": padding,
            "out_channels": cout, "spiking": spiking}


def _s(channels, width):
    return max(1, int(round(channels * width)))


def _old_vgg16_body(width=1.0):
    layers, src, ci, pi = [], "input", 0, 0
    for item in _VGG16_CONFIG:
        if item == "P":
            pi += 1
            name = f"pool{pi}"
            layers.append({"name": name, "type": "maxpool", "inputs": [src], "kernel": 2, "stride": 2})
        else:
            ci += 1
            name = f"conv{ci}"
            layers.append(_conv(name, src, _s(int(item), width)))
        src = name
    layers.append({"name": "flatten", "type": "flatten", "inputs": [src]})
    return layers


def _old_resnet19_body(width=1.0, identity_gain=1):
    layers = [_conv("conv1", "input", _s(128, width))]
    src, cin = "conv1", _s(128, width)
    for stage, (channels, blocks, first_stride) in enumerate(_RESNET19_STAGES, start=1):
        channels = _s(channels, width)
        for block in range(1, blocks + 1):
            stride = first_stride if block == 1 else 1
            p = f"s{stage}b{block}"
            layers.append(_conv(f"{p}_a", src, channels, stride=stride))
            layers.append(_conv(f"{p}_b", f"{p}_a", channels, spiking=False))
            join = {"name": f"{p}_add", "type": "add"}
            if stride != 1 or cin != channels:
                layers.append(_conv(f"{p}_sc", src, channels, kernel=1, stride=stride, padding=0, spiking=False))
                join["inputs"] = [f"{p}_b", f"{p}_sc"]
            else:
                join["inputs"] = [f"{p}_b", src]
                if identity_gain is not None:
                    join["shortcut_gain"] = identity_gain
            layers.append(join)
            src, cin = f"{p}_add", channels
    layers.append({"name": "gap", "type": "avgpool", "inputs": [src]})
    return layers


def _old_with_shapes(layers, input_shape, num_classes):
    layers = copy.deepcopy(layers)
    shapes = {"input": list(input_shape)}
    for ly in layers:
        ins = [shapes[s] for s in ly["inputs"]]
        ly["in_shape"] = list(ins[0])
        ly["out_shape"] = infer_out_shape(ly, ins, num_classes)
        shapes[ly["name"]] = ly["out_shape"]
    return layers


def _old_table(body, num_classes):
    out = {"name": "fc", "type": "output", "inputs": [body[-1]["name"]], "out_features": num_classes,
           "output_mode": "membrane", "logit_scale": 1.0}
    return _old_with_shapes(body + [out], [3, 32, 32], num_classes)


def _same(a, b):
    """Equal lists of equal dicts with the same key order (JSON without sorting compares both)."""
    return json.dumps(a) == json.dumps(b)


@pytest.mark.parametrize("classes", [10, 100])
def test_shipped_yaml_reproduces_the_python_tables_exactly(classes):
    from satasim_atsn.workload import networks

    assert shipped_networks() == ("resnet19", "vgg16")
    assert _same(networks.vgg16(classes), _old_table(_old_vgg16_body(), classes))
    assert _same(networks.resnet19(classes), _old_table(_old_resnet19_body(), classes))
    assert _same(networks.network_layers("vgg16", classes), _old_table(_old_vgg16_body(), classes))


@pytest.mark.parametrize("width", [1.0, 0.5, 0.25, 0.125, 1 / 16, 0.01, 0.003, 1.5])
def test_bodies_with_width_match_the_old_builders(width):
    from satasim_atsn.workload import networks

    assert _same(networks.vgg16_body(width), _old_vgg16_body(width))
    assert _same(networks.resnet19_body(width), _old_resnet19_body(width))
    assert _same(networks.resnet19_body(width, identity_gain=None), _old_resnet19_body(width, None))
    assert _same(networks.resnet19_body(width, identity_gain=7), _old_resnet19_body(width, 7))


def test_trainer_models_still_build_from_the_yaml_tables():
    from satasim_atsn.train.models import build_spec

    spec = build_spec("resnet19", [3, 32, 32], 10, "membrane", width=0.125)
    assert [ly["name"] for ly in spec][-2:] == ["gap", "output"]
    assert all(ly.get("bn") for ly in spec if ly["type"] == "conv")
    assert not any("shortcut_gain" in ly for ly in spec)
    assert spec[0]["out_channels"] == 16


# ------------------------------------------------------------------------------------------
# the file format: a custom network, and every mistake as one line naming layer and field
# ------------------------------------------------------------------------------------------
MY_NET = """name: my_net
input_shape: [3, 16, 16]
num_classes: 10
layers:
  - {name: conv1, type: conv, out_channels: 8, kernel: 3, padding: 1}
  - {name: pool1, type: maxpool, kernel: 2}
  - {name: blk_b, type: conv, out_channels: 8, kernel: 3, padding: 1, spiking: false}
  - {name: join, type: add, inputs: [blk_b, pool1]}
  - {name: flat, type: flatten}
  - {name: fc1, type: linear, out_features: 32}
  - {name: fc, type: output}
"""


def _write(tmp_path, text, name="net.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_custom_network_shapes_defaults_and_order(tmp_path):
    net = load_network(_write(tmp_path, MY_NET))
    layers = net.build(identity_gain=3)
    assert [ly["name"] for ly in layers] == ["conv1", "pool1", "blk_b", "join", "flat", "fc1", "fc"]
    assert layers[1] == {"name": "pool1", "type": "maxpool", "inputs": ["conv1"], "kernel": 2, "stride": 2,
                         "in_shape": [8, 16, 16], "out_shape": [8, 8, 8]}
    assert layers[3]["shortcut_gain"] == 3 and layers[3]["out_shape"] == [8, 8, 8]
    assert layers[5]["in_shape"] == [512] and layers[-1]["out_shape"] == [10]
    assert net.build(100)[-1]["out_shape"] == [100]
    assert net.build(width=0.5)[0]["out_channels"] == 4


def test_layers_listed_out_of_order_run_in_dependency_order(tmp_path):
    text = MY_NET.replace("  - {name: pool1, type: maxpool, kernel: 2}\n", "").replace(
        "  - {name: fc, type: output}\n",
        "  - {name: fc, type: output}\n  - {name: pool1, type: maxpool, kernel: 2, inputs: [conv1]}\n",
    ).replace("spiking: false}", "spiking: false, inputs: [pool1]}")
    net = load_network(_write(tmp_path, text))
    assert [ly["name"] for ly in net.layers] == ["conv1", "pool1", "blk_b", "join", "flat", "fc1", "fc"]


def test_a_network_ending_in_a_spiking_layer_builds_with_its_neurons_as_classes(tmp_path, capsys):
    from satasim_atsn.cli import main
    from satasim_atsn.workload.format import read_workload

    text = MY_NET.replace("  - {name: fc, type: output}\n", "")
    path = _write(tmp_path, text)
    with pytest.raises(WorkloadError, match=r"num_classes: is 10 but the network ends in the spiking layer 'fc1' "
                                            r"of 32 neurons"):
        load_network(path)
    path = _write(tmp_path, "\n".join(line for line in text.splitlines() if not line.startswith("num_classes")))
    net = load_network(path)
    assert not net.has_output and net.build()[-1]["out_shape"] == [32]
    with pytest.raises(SystemExit) as exc:
        main(["workload", "build", "--network", str(path), "--rate", "0.1", "--timesteps", "4", "--num-images", "3",
              "-o", str(tmp_path / "o.npz")])
    assert exc.value.code == 0
    built = read_workload(tmp_path / "o.npz")
    assert built.num_classes == 32 and not built.has_output and "exit_hist/fixed" in built.arrays
    assert [k for k in built.arrays if k.startswith("exit_hist/")] == ["exit_hist/fixed"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:  # an exit rule needs an output layer
        main(["workload", "build", "--network", str(path), "--rate", "0.1", "--timesteps", "4",
              "--exit-mean", "atsn=2", "-o", str(tmp_path / "p.npz")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "ends in the spiking layer 'fc1'" in err and "the atsn exit rule needs an output layer" in err
    assert not (tmp_path / "p.npz").exists()


def _sub(old: str, new: str, count: int = -1) -> str:
    return MY_NET.replace(old, new, count)


JOIN = "inputs: [blk_b, pool1]"
CONV1 = "out_channels: 8, kernel: 3, padding: 1}"
OUT = "- {name: fc, type: output}"
BAD = [
    (_sub(JOIN, "inputs: [blk_b, fc1]"), "the inputs form a cycle"),
    (_sub("type: maxpool", "type: maxpol"),
     "layers[1] (pool1).type: unknown layer type 'maxpol'; did you mean 'maxpool'?"),
    (_sub("kernel: 2}", "kernal: 2}"),
     "layers[1] (pool1).kernal: unknown key for a maxpool layer; did you mean 'kernel'?"),
    (_sub(JOIN, "inputs: [blk_b, pool9]"), "layers[3] (join).inputs: names no layer 'pool9'; did you mean 'pool1'?"),
    (_sub("out_channels: 8, kernel: 3, padding: 1, spiking", "out_channels: 6, kernel: 3, padding: 1, spiking"),
     "layers[3] (join): shape mismatch: add needs two inputs of equal shape, got [[6, 8, 8], [8, 8, 8]] "
     "('blk_b' gives [6, 8, 8], 'pool1' gives [8, 8, 8])"),
    (_sub("- {name: flat, type: flatten}",
          "- {name: flat, type: conv, out_channels: 4, kernel: 3}\n"
          "  - {name: c2, type: conv, out_channels: 4, kernel: 9}"),
     "layers[5] (c2): shape mismatch: kernel 9 does not fit input [4, 6, 6] ('flat' gives [4, 6, 6])"),
    (_sub("- {name: fc1, type: linear, out_features: 32}", "- {name: fc1, type: conv, out_channels: 32, kernel: 1}"),
     "layers[5] (fc1): shape mismatch: conv needs a [C, H, W] input, got [512] ('flat' gives [512])"),
    (_sub(CONV1, "out_channels: eight, kernel: 3, padding: 1}", 1),
     "layers[0] (conv1).out_channels: must be a positive integer, got 'eight'"),
    (_sub("spiking: false", "spiking: no-thanks"), "layers[2] (blk_b).spiking: must be true or false"),
    (_sub(CONV1, "kernel: 3, padding: 1}", 1), "layers[0] (conv1).out_channels: missing"),
    (_sub("name: pool1", "name: conv1"), "layers[1] (conv1).name: duplicate of layers[0]"),
    (_sub(JOIN, "inputs: [blk_b]"), "layers[3] (join).inputs: an add layer takes 2 inputs, got 1"),
    (_sub("- {name: flat, type: flatten}", "- {name: flat, type: flatten, inputs: [join, pool1]}"),
     "(flat).inputs: a flatten layer takes 1 input, got 2"),
    (_sub(JOIN, "inputs: 7"), "layers[3] (join).inputs: 7 is not a list of layer names"),
    (_sub("num_classes: 10\n", ""), "num_classes: missing"),
    (_sub("input_shape: [3, 16, 16]", "input_shape: [3, 16]"), "input_shape: [3, 16] is not [C, H, W]"),
    (_sub("layers:", "layer:"), "layer: unknown key; did you mean 'layers'?"),
    (_sub(OUT, "- {name: fc, type: output, output_mode: membran}"),
     "layers[6] (fc).output_mode: unknown mode 'membran'; did you mean 'membrane'?"),
    (_sub(OUT, "- {name: dead, type: flatten, inputs: [conv1]}\n  - {name: fc, type: output, inputs: [fc1]}"),
     "layers[6] (dead): is not an input of any layer"),
    # an explicit null is not "left out" (it crashed shape inference with a KeyError, or read as the default)
    (_sub(CONV1, "out_channels: 8, kernel: 3, padding: null}", 1),
     "layers[0] (conv1).padding: is null; give a value, or leave padding out (default: 0)"),
    (_sub(CONV1, "out_channels: null, kernel: 3, padding: 1}", 1),
     "layers[0] (conv1).out_channels: is null; conv layers need out_channels"),
    (_sub("spiking: false", "spiking: null"), "layers[2] (blk_b).spiking: is null; give a value, or leave spiking out "
     "(default: true)"),
    (_sub("kernel: 2}", "kernel: 2, stride: null}"), "layers[1] (pool1).stride: is null; give a value, or leave "
     "stride out (default: the kernel)"),
    # sizes one process cannot map: the run spun for hours, and np.prod wrapped around int64 on bigger ones
    (_sub(CONV1, "out_channels: 8, kernel: 3, padding: 100000}", 1),
     "layers[0] (conv1): has 320,044,801,568 outputs [8, 200014, 200014], more than the 268,435,456 this simulator "
     "maps per layer; check its out_channels, kernel, stride and padding"),
    (_sub(CONV1, "out_channels: 1000000000, kernel: 3, padding: 1}", 1), "layers[0] (conv1): has 256,000,000,000 "
     "outputs"),
    (_sub("out_features: 32", "out_features: 10000000000000000000000"), "layers[5] (fc1): has "
     "10,000,000,000,000,000,000,000 outputs"),
    (_sub("out_features: 32", "out_features: 100000000"), "layers[5] (fc1): has 51,200,000,000 weights, more than "
     "the 2,147,483,648 this simulator holds per layer"),
    (_sub("num_classes: 10", "num_classes: 99999999999999999999999999"), "layers[6] (fc): has "
     "99,999,999,999,999,999,999,999,999 outputs [99999999999999999999999999], more than the 268,435,456 this "
     "simulator maps per layer; check num_classes"),
    # a name holding ')' is shown whole in the file's own label
    (_sub("name: conv1", "name: 'c)1'").replace("kernel: 3, padding: 1}", "kernel: 30}", 1),
     "layers[0] (c)1): shape mismatch: kernel 30 does not fit"),
    # YAML 1.1 reads 1:0 as 60 (base 60): refused with the number it would be
    (_sub(CONV1, "out_channels: 1:0, kernel: 3, padding: 1}", 1),
     "line 5: 1:0 is a base-60 number in YAML 1.1 (60); write 60 if that is meant, or quote it if it is text"),
    # a spiking end of one neuron: was 'meta.num_classes: must be at least 2', a field the file does not have
    ("input_shape: [1, 1, 1]\nlayers:\n  - {name: c, type: conv, out_channels: 1, kernel: 1}\n",
     "layers[0] (c): ends the network with 1 spiking neuron"),
    # the network's name heads every result: a line break was refused only later, as "meta.name" of the built
    # workload (a field the file does not have) and shown with the build's "-statistical" suffix
    (_sub("name: my_net", 'name: "my\\nnet"'), "name: 'my\\nnet' is not one line of visible text"),
    (_sub("name: my_net", "name: '   '"), "net.yaml: name: ' ' is not one line of visible text"),
    ("name: [\n", "is not valid YAML at line"),
    ("- 1\n", "must be a YAML mapping"),
]


@pytest.mark.parametrize(("text", "needle"), BAD)
def test_bad_network_files_give_one_line_exit_2_nothing_written(tmp_path, capsys, text, needle):
    from satasim_atsn.cli import main

    path = _write(tmp_path, text)
    with pytest.raises(WorkloadError) as info:
        load_network(path)
    assert needle in str(info.value), str(info.value)
    assert str(path) in str(info.value)
    with pytest.raises(SystemExit) as exc:
        main(["workload", "build", "--network", str(path), "--rate", "0.1", "--timesteps", "4",
              "-o", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o.npz").exists()


def test_output_out_features_stands_for_a_missing_num_classes(tmp_path):
    # docs/networks.md documents both keys: a file giving only the output layer's out_features was refused
    # with "num_classes: missing" although out_features already is the class count
    from satasim_atsn.cli import main

    path = _write(tmp_path, _sub("num_classes: 10\n", "").replace(OUT, "- {name: fc, type: output, out_features: 7}"))
    assert load_network(path).num_classes == 7
    assert load_network(path).build()[-1]["out_shape"] == [7]
    with pytest.raises(SystemExit) as exc:
        main(["workload", "build", "--network", str(path), "--rate", "0.1", "--timesteps", "4",
              "-o", str(tmp_path / "o.npz")])
    assert exc.value.code == 0
    one = _write(tmp_path, _sub("num_classes: 10\n", "").replace(OUT, "- {name: fc, type: output, out_features: 1}"),
                 "one.yaml")
    with pytest.raises(WorkloadError, match=r"one.yaml: layers\[6\] \(fc\).out_features: is 1, but the output "
                       r"layer needs one neuron per class \(at least 2\)"):
        load_network(one)


def test_network_counts_take_whole_numbers_as_architecture_files_do(tmp_path):
    # architecture sizes take 16.0 and '1e3'; a network file refused num_classes: 10.0, input_shape [3.0, ...]
    # and '8' as out_channels (it took 8.0 there only)
    text = (_sub("num_classes: 10", "num_classes: 10.0")
            .replace("input_shape: [3, 16, 16]", "input_shape: [3.0, '16', 16]")
            .replace(CONV1, "out_channels: '8', kernel: 3.0, padding: 1}", 1))
    spec = load_network(_write(tmp_path, text))
    assert spec.num_classes == 10 and spec.input_shape == [3, 16, 16]
    assert _same(spec.build(), load_network(_write(tmp_path, MY_NET, "plain.yaml")).build())
    with pytest.raises(WorkloadError, match=r"num_classes: 10.5 is not an integer >= 2"):
        load_network(_write(tmp_path, _sub("num_classes: 10", "num_classes: 10.5"), "frac.yaml"))


def test_parse_network_rejects_non_mappings_in_memory():
    with pytest.raises(WorkloadError, match="layers\\[0\\]: must be a mapping"):
        parse_network({"input_shape": [1, 4, 4], "layers": [3]}, "<mem>")
    with pytest.raises(WorkloadError, match="unknown network 'vgg19'"):
        resolve_network("vgg19")


# ------------------------------------------------------------------------------------------
# `satasim workload build --network FILE --rate R --timesteps T`
# ------------------------------------------------------------------------------------------
def test_build_quick_start_fixed_t_has_only_the_fixed_histogram_and_runs(tmp_path, capsys):
    from satasim_atsn.cli import main
    from satasim_atsn.workload.format import read_workload

    path = _write(tmp_path, MY_NET.replace("{name: join, type: add, inputs: [blk_b, pool1]}",
                                           "{name: join, type: add, inputs: [blk_b, pool1], shortcut_gain: 5}"))
    out = tmp_path / "my_net.npz"
    argv = ["workload", "build", "--network", str(path), "--rate", "0.15", "--timesteps", "10", "-o", str(out)]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    wl = read_workload(out)
    assert sorted(k for k in wl.arrays if k.startswith("exit_hist/")) == ["exit_hist/fixed"]
    assert wl.timesteps == 10 and wl.num_classes == 10 and wl.layer("join")["shortcut_gain"] == 5
    assert all(np.all(wl.arrays[f"rate/{n}"] == 0.15) for n in ("conv1", "join", "fc1"))
    assert "assumed" in wl.meta["provenance"]["rates"]
    first = out.read_bytes()
    with pytest.raises(SystemExit):
        main(argv)
    assert out.read_bytes() == first  # byte-identical rebuild
    capsys.readouterr()
    arch = ROOT / "archs"
    with pytest.raises(SystemExit) as exc:
        main(["run", str(arch / "conventional16x16.yaml"), str(out), "--images", "2", "--quiet"])
    assert exc.value.code == 0
    with pytest.raises(SystemExit) as exc:
        main(["run", str(arch / "atsn16x16.yaml"), str(out), "--images", "2", "--quiet"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "exit_hist/atsn: missing: this statistical workload is built for fixed only" in err


def test_build_quick_start_with_exit_means_and_dataset(tmp_path, capsys):
    from satasim_atsn.cli import main
    from satasim_atsn.traces.exit_histograms import histogram_mean
    from satasim_atsn.workload.format import read_workload

    out = tmp_path / "v.npz"
    with pytest.raises(SystemExit) as exc:
        main(["workload", "build", "--network", "vgg16", "--dataset", "cifar100", "--rate", "0.2", "--timesteps", "6",
              "--exit-mean", "atsn=2.5", "--num-images", "50", "-o", str(out)])
    assert exc.value.code == 0
    wl = read_workload(out)
    assert wl.num_classes == 100 and wl.num_images == 50 and wl.name == "vgg16-cifar100-statistical"
    assert sorted(k for k in wl.arrays if k.startswith("exit_hist/")) == ["exit_hist/atsn", "exit_hist/fixed"]
    assert abs(histogram_mean(wl.arrays["exit_hist/atsn"]) - 2.5) < 1e-9


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--rate", "0.1"], "--timesteps: missing"),
        ([], "--rates/--rate: give exactly one of them"),
        (["--rate", "1.5", "--timesteps", "4"], "--rate: 1.5 is not a firing rate in [0, 1]"),
        (["--rate", "0.1", "--timesteps", "4", "--exit-mean", "atsn"], "--exit-mean: 'atsn' is not POLICY=MEAN"),
        (["--rate", "0.1", "--timesteps", "4", "--exit-mean", "atsm=2"], "did you mean 'atsn'?"),
        (["--rate", "0.1", "--timesteps", "4", "--exit-mean", "atsn=9"], "--exit-mean.atsn: 9.0 is not in [1, 4]"),
        (["--rates", str(ROOT / "workloads" / "rates" / "vgg16.yaml")], "--dataset: missing"),
        (["--rates", str(ROOT / "workloads" / "rates" / "vgg16.yaml"), "--dataset", "cifar10", "--timesteps", "3"],
         "--timesteps: goes with --rate"),
    ],
)
def test_build_bad_options_exit_2(tmp_path, capsys, args, needle):
    from satasim_atsn.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["workload", "build", "--network", "vgg16", *args, "-o", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and needle in err, err
    assert not (tmp_path / "o.npz").exists()


def test_logit_scale_written_as_yaml_1_1_text_is_a_number(tmp_path):
    """YAML 1.1 reads 1e-3 (no dot) as text; the network file takes it as the number it spells."""
    path = _write(tmp_path, _sub(OUT, "- {name: fc, type: output, logit_scale: 1e-3}"))
    assert load_network(path).layers[-1]["logit_scale"] == 0.001


CURRENT_CASES = [
    # a current shortcut takes no gain (its weights carry the scale); a current read by two adds
    (_sub("  - {name: join, type: add, inputs: [blk_b, pool1]}",
          "  - {name: sc, type: conv, out_channels: 8, kernel: 1, spiking: false, inputs: [pool1]}\n"
          "  - {name: join, type: add, inputs: [blk_b, sc], shortcut_gain: 2}"),
     "layers[4] (join).shortcut_gain: scales a spike shortcut, but 'sc' is a current"),
    (_sub("  - {name: join, type: add, inputs: [blk_b, pool1]}",
          "  - {name: join, type: add, inputs: [blk_b, pool1]}\n"
          "  - {name: join2, type: add, inputs: [blk_b, join]}").replace(
              "{name: flat, type: flatten}", "{name: flat, type: flatten, inputs: [join2]}"),
     "(blk_b): is a current read by 2 layers (join, join2); give each add its own non-spiking conv"),
]


@pytest.mark.parametrize(("text", "needle"), CURRENT_CASES)
def test_currents_are_checked_when_the_workload_is_built(tmp_path, capsys, text, needle):
    """A current shortcut takes no gain (its weights carry the scale); a current read by two adds is two currents
    of one computation, which neither the forward nor the mapping models. Both were accepted."""
    from satasim_atsn.cli import main

    path = _write(tmp_path, text)
    with pytest.raises(SystemExit) as exc:
        main(["workload", "build", "--network", str(path), "--rate", "0.1", "--timesteps", "4",
              "-o", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.npz").exists()


def test_integral_floats_are_integers(tmp_path):
    """`shortcut_gain: 1.0` or `kernel: 3.0` (YAML floats) are the integers they spell, as in architecture files;
    2.5 stays refused."""
    path = _write(tmp_path, _sub(CONV1, "out_channels: 8.0, kernel: 3.0, padding: 1.0}", 1))
    first = load_network(path).layers[0]
    assert (first["out_channels"], first["kernel"], first["padding"]) == (8, 3, 1)
    assert all(type(first[k]) is int for k in ("out_channels", "kernel", "padding"))
    with pytest.raises(WorkloadError, match=r"layers\[0\] \(conv1\).kernel: must be a positive integer, got 2.5"):
        load_network(_write(tmp_path, _sub(CONV1, "out_channels: 8, kernel: 2.5, padding: 1}", 1), "b.yaml"))


@pytest.mark.parametrize(("value", "needle"), [
    # a workload where the network file belongs: "cannot be read (UnicodeDecodeError); check the path"
    ("WORKLOAD", "is a workload (.npz), not a network YAML file; give the network file"),
    # a folder: "cannot be read (IsADirectoryError)"; an empty value was shown as '.'
    ("DIR", "is a directory, not a network YAML file"),
    ("", "--network: is an empty path"),
    # a shipped name in capitals: the list, without the near miss
    ("VGG16", "--network: unknown network 'VGG16'; did you mean 'vgg16'?"),
    # Latin-1 bytes: "cannot be read (UnicodeDecodeError); check the path", where the path was fine
    ("LATIN1", "cannot be read as text (invalid continuation byte at byte 3); save it as a UTF-8 YAML file"),
])
def test_a_network_option_that_names_no_network_file_says_what_it_names(tmp_path, capsys, value, needle):
    from satasim_atsn.cli import main

    if value == "WORKLOAD":
        value = str(ROOT / "workloads" / "vgg_small_fmnist_atsn.npz")
    elif value == "DIR":
        value = str(tmp_path)
    elif value == "LATIN1":
        value = str(tmp_path / "latin1.yaml")
        Path(value).write_bytes("# r\u00e9seau\ninput_shape: [1, 4, 4]\n".encode("latin-1"))
    with pytest.raises(SystemExit) as exc:
        main(["workload", "build", "--network", value, "--rate", "0.1", "--timesteps", "2",
              "-o", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.npz").exists()


@pytest.mark.parametrize("name", ["vgg16", "resnet19"])
def test_network_layers_names_each_paper_network_and_refuses_others(name):
    from satasim_atsn.workload import networks

    assert _same(networks.network_layers(name, 100), getattr(networks, name)(100))
    with pytest.raises(WorkloadError, match="unknown network 'vgg19'; use one of vgg16, resnet19"):
        networks.network_layers("vgg19", 10)
