"""workload/network_file.py at the bounds docs/networks.md gives: a value at the bound is taken, one step past it is
refused in one line naming the file and the field (and `satasim workload build` exits with 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import one_line_error

from satasim_atsn.errors import WorkloadError
from satasim_atsn.workload.network_file import load_network

NETWORK = """\
name: tiny
input_shape: [1, 8, 8]
num_classes: 3
layers:
  - {{name: c1, type: conv, kernel: 3, stride: 1, padding: {padding}, out_channels: 4}}
  - {{name: f, type: flatten}}
  - {{name: out, type: output, logit_scale: {scale}}}
"""


def _network(tmp_path: Path, padding=0, scale=1.0, name: str = "net.yaml") -> Path:
    path = tmp_path / name
    path.write_text(NETWORK.format(padding=padding, scale=scale), encoding="utf-8")
    return path


@pytest.mark.parametrize("field,good,bad", [
    ("layers[0] (c1).padding", {"padding": 0}, {"padding": -1}),
    ("layers[2] (out).logit_scale", {"scale": 1e-9}, {"scale": 0}),
])
def test_a_layer_field_at_its_bound_is_taken_and_past_it_refused(tmp_path, field, good, bad):
    assert load_network(_network(tmp_path, **good, name="good.yaml")).build()
    path = _network(tmp_path, **bad, name="bad.yaml")
    with pytest.raises(WorkloadError) as info:
        load_network(path)
    assert str(info.value).startswith(f"{path}: {field}: must be a "), str(info.value)


def test_a_negative_padding_is_one_line_with_exit_code_2(tmp_path, capsys):
    path = _network(tmp_path, padding=-1)
    line = one_line_error(["workload", "build", "--network", str(path), "--rate", "0.1", "--timesteps", "2",
                           "-o", str(tmp_path / "w.npz")], capsys)
    assert f"{path}: layers[0] (c1).padding: must be a non-negative integer, got -1" in line, line
    assert not (tmp_path / "w.npz").exists()


def test_a_build_for_one_class_is_refused_and_two_classes_are_built(tmp_path):
    spec = load_network(_network(tmp_path))
    assert spec.build(num_classes=2)[-1]["out_shape"] == [2]
    with pytest.raises(WorkloadError) as info:
        spec.build(num_classes=1)
    assert str(info.value).startswith(f"{spec.source}: num_classes: 1 is not an integer >= 2;"), str(info.value)


def test_a_network_file_of_two_classes_loads_and_one_class_is_refused(tmp_path):
    two = tmp_path / "two.yaml"
    two.write_text(NETWORK.format(padding=0, scale=1.0).replace("num_classes: 3", "num_classes: 2"), encoding="utf-8")
    assert load_network(two).build()[-1]["out_shape"] == [2]
    one = tmp_path / "one.yaml"
    one.write_text(NETWORK.format(padding=0, scale=1.0).replace("num_classes: 3", "num_classes: 1"), encoding="utf-8")
    with pytest.raises(WorkloadError) as info:
        load_network(one)
    assert str(info.value).startswith(f"{one}: num_classes: 1 is not an integer >= 2;"), str(info.value)


def test_two_output_layers_are_named_as_such(tmp_path):
    path = tmp_path / "two_outputs.yaml"
    path.write_text(NETWORK.format(padding=0, scale=1.0) + "  - {name: out2, type: output, inputs: [f]}\n",
                    encoding="utf-8")
    with pytest.raises(WorkloadError) as info:
        load_network(path)
    assert str(info.value).startswith(f"{path}: layers: 2 output layers (out, out2); give the network one output "
                                      "layer"), str(info.value)


def test_an_output_out_features_other_than_num_classes_is_refused(tmp_path):
    path = tmp_path / "mismatch.yaml"
    path.write_text(NETWORK.format(padding=0, scale=1.0).replace("type: output,", "type: output, out_features: 5,"),
                    encoding="utf-8")
    with pytest.raises(WorkloadError) as info:
        load_network(path)
    assert str(info.value).startswith(f"{path}: layers[2] (out).out_features: is 5 but num_classes is 3;"), \
        str(info.value)


@pytest.mark.parametrize("outputs,refused", [(2**28, False), (2**28 + 1, True)])
def test_a_layer_of_up_to_2_to_the_28_outputs_is_mapped_and_one_more_is_refused(outputs, refused):
    """The per-layer size bound (268,435,456 outputs) at its edge: 4 x the bound passed the suite (mutant F32 of
    session 37), which checked only layers far beyond it."""
    from satasim_atsn.workload.format import check_layer_size

    layer = {"name": "wide", "type": "maxpool", "kernel": 1, "stride": 1}
    if refused:
        with pytest.raises(WorkloadError, match=rf"net: wide: has {outputs:,} outputs \[{outputs}\], more than the "
                           r"268,435,456 this simulator maps per layer; check its kernel and stride"):
            check_layer_size("net", "wide", layer, [outputs], [outputs])
    else:
        check_layer_size("net", "wide", layer, [outputs], [outputs])


@pytest.mark.parametrize("out_features,refused", [(2**23, False), (2**23 + 1, True)])
def test_a_layer_of_up_to_2_gib_of_weights_is_held_and_one_more_output_is_refused(out_features, refused):
    """2^31 int8 weights per layer at most: 256 inputs x 2^23 outputs is exactly the bound."""
    from satasim_atsn.workload.format import check_layer_size

    layer = {"name": "fc1", "type": "linear", "out_features": out_features}
    if refused:
        with pytest.raises(WorkloadError, match=r"more than the 2,147,483,648 this simulator holds per layer"):
            check_layer_size("net", "fc1", layer, [256], [out_features])
    else:
        check_layer_size("net", "fc1", layer, [256], [out_features])
