"""`satasim evaluate W --dataset imagefolder --image-size S` on a workload whose images are not square."""

from __future__ import annotations

import numpy as np
import pytest

from satasim_atsn.cli import main

nir = pytest.importorskip("nir")
Image = pytest.importorskip("PIL.Image")

from satasim_atsn.interchange.nir_io import write_nir  # noqa: E402

DT = 1e-4


def _wide_workload(tmp_path, height: int = 5, width: int = 13):
    """An imported [3, height, width] network (conv -> LIF -> linear -> LI) with its inputs."""
    rng = np.random.default_rng(0)
    tau = DT / 0.5
    shape = (4, height, width)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([3, height, width])}),
        "conv1": nir.Conv2d(input_shape=(height, width), weight=rng.normal(0, 0.6, (4, 3, 3, 3)), stride=1,
                            padding=1, dilation=1, groups=1, bias=rng.normal(0.1, 0.1, 4)),
        "lif1": nir.LIF(tau=np.full(shape, tau), r=np.full(shape, tau / DT), v_leak=np.zeros(shape),
                        v_threshold=np.full(shape, 1.0), v_reset=np.zeros(shape)),
        "flat": nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1),
        "fc": nir.Linear(weight=rng.normal(0, 0.5, (2, int(np.prod(shape))))),
        "li": nir.LI(tau=np.full(2, 2 * DT), r=np.full(2, 2.0), v_leak=np.zeros(2)),
        "output": nir.Output(output_type={"output": np.array([2])}),
    }
    edges = [("input", "conv1"), ("conv1", "lif1"), ("lif1", "flat"), ("flat", "fc"), ("fc", "li"),
             ("li", "output")]
    write_nir(tmp_path / "m.nir", nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    np.savez(tmp_path / "x.npz", x=rng.integers(0, 256, (4, 3, height, width)).astype(np.uint8),
             y=np.array([0, 1, 0, 1]))
    with pytest.raises(SystemExit) as exc:
        main(["workload", "import", str(tmp_path / "m.nir"), "--inputs", str(tmp_path / "x.npz"), "--timesteps", "2",
              "--dataset", "imagefolder", "-o", str(tmp_path / "w.npz")])
    assert exc.value.code == 0
    return tmp_path / "w.npz"


def _folder(root, width: int, height: int):
    rng = np.random.default_rng(1)
    for cls in ("a", "b"):
        (root / "test" / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB").save(
                root / "test" / cls / f"{i}.png")
    return root


@pytest.mark.parametrize("size", ["5", "13"])
def test_a_square_resize_of_a_wide_workload_names_the_option_and_the_size(tmp_path, capsys, size):
    """It said 'pick the dataset the workload was trained on (its classes, and its colour mode: 3 channels)'."""
    workload = _wide_workload(tmp_path)
    data = _folder(tmp_path / "data", 5, 5)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(workload), "--dataset", "imagefolder", "--data-dir", str(data), "--image-size", size])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1, err
    assert f"--image-size: {size} resizes every image to {size} x {size}" in err, err
    assert "the workload reads 13 x 5 images (width x height; input [3, 5, 13])" in err, err
    assert "drop --image-size and give an image folder of 13 x 5 images" in err, err


def test_a_wide_workload_is_evaluated_on_a_folder_of_its_size(tmp_path, capsys):
    workload = _wide_workload(tmp_path)
    data = _folder(tmp_path / "data", 13, 5)
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(workload), "--dataset", "imagefolder", "--data-dir", str(data), "--quiet"])
    assert exc.value.code == 0 and "4 images, T = 2" in capsys.readouterr().out


def test_rates_of_a_one_layer_network_says_one_rated_layer(tmp_path, capsys):
    """`workload rates` printed 'wrote r.yaml: 1 rated layers'."""
    workload = _wide_workload(tmp_path)
    net = tmp_path / "net.yaml"
    net.write_text("name: wide\ninput_shape: [3, 5, 13]\nnum_classes: 2\nlayers:\n"
                   "  - {name: conv1, type: conv, out_channels: 4, kernel: 3, padding: 1}\n"
                   "  - {name: flat, type: flatten}\n  - {name: fc, type: output}\n")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["workload", "rates", str(workload), "--network", str(net), "--dataset", "mine",
              "-o", str(tmp_path / "r.yaml")])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and f"wrote {tmp_path / 'r.yaml'}: 1 rated layer, " in out, out
