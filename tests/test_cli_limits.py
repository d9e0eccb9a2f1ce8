"""Inputs beyond what a command models or what the machine holds end in one line and exit code 2: a spike-frame
workload given to `workload rates` (a rate table describes pixels), and running out of memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from satasim_atsn.cli import main
from satasim_atsn.workload.format import write_workload
from satasim_atsn.workload.synthetic import random_workload

ROOT = Path(__file__).resolve().parents[1]


def _run(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert exc.value.code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_rates_refuses_a_spike_frame_workload(tmp_path, capsys):
    """It wrote a table without the encoding, and `build` made a workload reading pixels at assumed densities."""
    path = tmp_path / "frames.npz"
    write_workload(path, random_workload(2, images=3, timesteps=3, encoding="spike_frames"))
    line = _run(["workload", "rates", str(path), "--network", "vgg16", "--dataset", "d", "-o",
                 str(tmp_path / "r.yaml")], capsys)
    assert "meta.input_encoding: is spike_frames: a rate table describes image inputs" in line
    assert "satasim workload stats" in line and not (tmp_path / "r.yaml").exists()


def test_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch):
    import satasim_atsn.hw.commands as commands

    def too_big(*_args, **_kwargs):
        raise MemoryError("Unable to allocate 4.00 TiB")

    monkeypatch.setattr(commands, "read_workload", too_big)
    line = _run(["run", str(ROOT / "archs" / "atsn16x16.yaml"), str(ROOT / "workloads" / "vgg16_cifar10.npz"),
                 "--images", "1"], capsys)
    assert line.startswith("satasim: error: out of memory:") and "--images" in line


@pytest.mark.parametrize(("layers", "needle"), [
    ("  - {name: c, type: conv, out_channels: 4, kernel: 3, padding: 1}\n  - {name: f, type: flatten}\n"
     "  - {name: fc, type: output}\n  - {name: fcb, type: output, inputs: [f]}\n",
     "layers: 2 output layers (fc, fcb); give the network one output layer, the last"),
    ("  - {name: \"c\\nout\", type: conv, out_channels: 4, kernel: 3, padding: 1}\n  - {name: f, type: flatten}\n"
     "  - {name: fc, type: output}\n", "is not a usable name"),
])
def test_network_file_mistakes_are_named(tmp_path, capsys, layers, needle):
    path = tmp_path / "net.yaml"
    path.write_text(f"input_shape: [1, 8, 8]\nnum_classes: 3\nlayers:\n{layers}")
    line = _run(["workload", "build", "--network", str(path), "--rate", "0.1", "--timesteps", "2", "-o",
                 str(tmp_path / "w.npz")], capsys)
    assert needle in line and not (tmp_path / "w.npz").exists()


def test_a_layer_is_named_by_its_index_in_the_file(tmp_path, capsys):
    """The validator numbers layers in execution order (meta.layers[i]); a file listing them in another order
    must be told about its own lines: here the join is the file's first entry, third in execution order."""
    path = tmp_path / "net.yaml"
    path.write_text("input_shape: [3, 8, 8]\nnum_classes: 10\nlayers:\n"
                    "  - {name: add, type: add, inputs: [b, c1]}\n"
                    "  - {name: fc, type: output, inputs: [f]}\n"
                    "  - {name: f, type: flatten, inputs: [add]}\n"
                    "  - {name: c1, type: conv, out_channels: 4, kernel: 3, padding: 1, inputs: [input]}\n"
                    "  - {name: b, type: conv, out_channels: 4, kernel: 3, padding: 1, inputs: [c1]}\n")
    line = _run(["workload", "build", "--network", str(path), "--rate", "0.1", "--timesteps", "2", "-o",
                 str(tmp_path / "w.npz")], capsys)
    assert "net.yaml: layers[0] (add).inputs: the first input 'b' must be a current" in line
    assert "meta.layers" not in line


def test_a_network_of_only_an_output_layer_names_the_design_that_runs_it(tmp_path, capsys):
    net = tmp_path / "only.yaml"
    net.write_text("input_shape: [16]\nnum_classes: 3\nlayers:\n  - {name: fc, type: output}\n")
    wl = tmp_path / "only.npz"
    main_args = ["workload", "build", "--network", str(net), "--rate", "0.1", "--timesteps", "2", "--num-images", "4",
                 "-o", str(wl)]
    with pytest.raises(SystemExit):
        main(main_args)
    capsys.readouterr()
    arch = str(ROOT / "archs" / "conventional16x16.yaml")
    line = _run(["run", arch, str(wl), "--images", "2"], capsys)
    assert "the exit unit cannot read pixels" in line and "--set array.exit_unit_tiles=0" in line
    with pytest.raises(SystemExit) as exc:  # the design the message names runs it
        main(["run", arch, str(wl), "--images", "2", "--quiet", "--set", "array.exit_unit_tiles=0"])
    assert exc.value.code in (0, None)
